/// Writes a small text file (a plan, a chart) atomically: to a temporary file renamed into place.
public enum TextFile {
    /// Writes `text` to `path`; `inputs` are files it must not overwrite.
    public static func write(_ text: String, to path: String, inputs: [MappedFile] = []) throws {
        let out = try AtomicFileWriter(path: path, inputs: inputs)
        try Array(text.utf8).withUnsafeBytes { try out.write($0) }
        try out.commit()
    }
}
