extension PyTorchReader {
    /// Runs the pickles in `bytes` back to back from offset 0, as a legacy file holds them, through the pickle machine
    /// alone (persistent ids are accepted as storages; no tensor data is read). Throws the first error, naming `path`.
    public static func checkPickles(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        var machine = PickleMachine(path: path, part: "file", bytes: bytes, reportBase: 0, storages: .legacy)
        var position = 0
        while position < bytes.count { position = try machine.run(from: position, to: bytes.count).next }
    }
}
