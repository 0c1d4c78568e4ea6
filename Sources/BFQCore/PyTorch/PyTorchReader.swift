/// Reads `torch.save` checkpoints without executing anything: the zip format (torch >= 1.6) and the legacy
/// pre-1.6 format, told apart by content. Tensor bytes stay in the mapping; entries point into it.
///
/// See `PickleFlattener` for how the unpickled object becomes names and metadata.
public enum PyTorchReader {
    /// The legacy format's first pickle: this number, as LONG1 little-endian bytes.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let legacyProtocolVersion = 1001

    /// Reads a torch.save file, zip or legacy format, detected from content.
    public static func read(_ file: MappedFile) throws -> Checkpoint {
        let bytes = file.bytes
        if bytes.count >= 4, bytes.loadUnaligned(as: UInt32.self) == UInt32(littleEndian: ZipArchive.localSignature) {
            return try readZip(file)
        }
        if startsWithLegacyMagic(bytes) { return try readLegacy(file) }
        throw PyTorchError.notPyTorch(path: file.path, reason: "neither a zip archive nor a legacy torch.save file")
    }

    /// True when the bytes look like a PyTorch checkpoint (zip local header magic "PK\x03\x04" with a data.pkl entry,
    /// or the legacy magic pickle). `bytes` may be the whole file or only its start.
    public static func looksLikePyTorch(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if startsWithLegacyMagic(bytes) { return true }
        guard bytes.count >= 30, bytes.loadUnaligned(as: UInt32.self) == UInt32(littleEndian: ZipArchive.localSignature) else { return false }
        // torch writes data.pkl first; otherwise look through the central directory when the bytes reach it.
        let nameLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
        if bytes.count >= 30 + nameLength, isDataPickle(String(decoding: bytes[30 ..< 30 + nameLength], as: UTF8.self)) {
            return true
        }
        guard let archive = try? ZipArchive(path: "", bytes: bytes) else { return false }
        return archive.entries.contains { isDataPickle($0.name) }
    }

    private static func isDataPickle(_ name: String) -> Bool {
        guard name.hasSuffix("/data.pkl") else { return false }
        return name.dropLast("/data.pkl".count).firstIndex(of: "/") == nil
    }

    static func startsWithLegacyMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // PROTO n, optional FRAME, LONG1 10 <magic>; or protocol 0/1 text "L<decimal>L\n".
        var position = 0
        if bytes.count >= 2, bytes[0] == 0x80 {
            position = 2
            if bytes.count >= 11, bytes[2] == 0x95 { position = 11 }
        }
        if bytes.count - position >= 12, bytes[position] == 0x8A, bytes[position + 1] == 10 {
            return Array(bytes[position + 2 ..< position + 12]) == legacyMagic
        }
        let text = Array("L119547037146038801333356L\n".utf8)
        return bytes.count >= text.count && Array(bytes[0 ..< text.count]) == text
    }

    // MARK: - Zip

    private static func readZip(_ file: MappedFile) throws -> Checkpoint {
        let archive = try ZipArchive(path: file.path, bytes: file.bytes)
        guard let pickle = archive.entries.first(where: { isDataPickle($0.name) }) else {
            throw PyTorchError.notPyTorch(path: file.path, reason: "zip archive has no <folder>/data.pkl entry")
        }
        let root = try archive.rootFolder()  // every entry lies in it, so the pickle is <root>/data.pkl
        if let order = archive.entry(named: root + "/byteorder") {
            let text = String(decoding: file.bytes(in: try archive.dataRange(of: order)), as: UTF8.self)
            guard text == "little" else {
                throw PyTorchError.zip(path: file.path, entry: order.name, offset: order.localHeaderOffset,
                                       rule: "byte order '\(text.prefix(20))' is not supported (only little)")
            }
        }
        let range = try archive.dataRange(of: pickle)
        var machine = PickleMachine(path: file.path, part: "data.pkl", bytes: file.bytes, reportBase: range.lowerBound,
                                    storages: .zip(archive, root: root))
        let (value, _) = try machine.run(from: range.lowerBound, to: range.upperBound)
        var flattener = PickleFlattener(path: file.path, fileSize: file.count, arena: machine.arena)
        try flattener.flatten(value)
        return Checkpoint(file: file, format: .pytorchZip, metadata: flattener.metadata, tensors: flattener.tensors,
                          warnings: machine.warnings + flattener.warnings)
    }
}
