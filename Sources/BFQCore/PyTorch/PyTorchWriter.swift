/// Writes torch >= 1.6 zip checkpoints that `torch.load(path, weights_only=True)` opens.
///
/// Layout, as torch.save writes it: the root folder is the output file's name without its last extension
/// (`model.ckpt` → `model/`); records `data.pkl` (a protocol 2 dict: tensors in the given order, then the metadata
/// keys, sorted, as str values), `.format_version`, `.storage_alignment`, `byteorder`, one `data/<i>` per tensor
/// (64-byte aligned), `version` ("3\n") and `.data/serialization_id`. The serialization id is derived from the
/// content (names, shapes, CRC-32s), not random, so equal inputs give equal bytes. Tensors stream one at a time
/// from the source; ZIP64 is used when sizes or offsets need it.
public enum PyTorchWriter: CheckpointWriter {
    public static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String],
                             source: TensorByteSource) throws {
        try write(to: target, tensors: tensors, metadata: metadata, source: source, zip64Threshold: 0xFFFF_FFFF)
    }

    static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String], source: TensorByteSource,
                      zip64Threshold: Int) throws {
        let path = target.path
        var names: Set<String> = []
        for name in tensors.map(\.name) + metadata.keys.sorted() where !names.insert(name).inserted {
            throw PyTorchError.cannotWrite(path: path, tensor: name, rule: "name used twice (tensor or metadata key)")
        }
        let root = archiveName(path)
        let sortedMetadata = metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let out = try target.open()
        let zip = ZipStreamWriter(out: out, zip64Threshold: zip64Threshold)
        try zip.add("\(root)/data.pkl", PickleEncoder.stateDict(tensors: tensors, metadata: sortedMetadata))
        try zip.add("\(root)/.format_version", Array("1".utf8))
        try zip.add("\(root)/.storage_alignment", Array(String(ZipStreamWriter.alignment).utf8))
        try zip.add("\(root)/byteorder", Array("little".utf8))
        for (index, tensor) in tensors.enumerated() {
            try zip.begin("\(root)/data/\(index)", size: tensor.byteCount)
            try source.emit(index, to: out)
            try zip.end()
        }
        try zip.add("\(root)/version", Array("3\n".utf8))
        try zip.add("\(root)/.data/serialization_id", serializationID(tensors: tensors, metadata: sortedMetadata, crcs: zip.crcs))
        try zip.finish()
        try out.commit()
    }

    /// The archive's root folder: the file name without directories and without its last extension.
    static func archiveName(_ path: String) -> String {
        let base = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        let stem = base.lastIndex(of: ".").map { String(base[..<$0]) } ?? base
        return stem.isEmpty ? "archive" : stem
    }

    /// 40 decimal digits (torch's format) from two FNV-1a hashes of the content.
    static func serializationID(tensors: [OutputTensor], metadata: [(String, String)], crcs: [UInt32]) -> [UInt8] {
        var first: UInt64 = 0xcbf2_9ce4_8422_2325, second: UInt64 = 0x6c62_272e_07bb_0142
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                first = (first ^ UInt64(byte)) &* 0x100_0000_01b3
                second = (second ^ UInt64(byte)) &* 0x100_0000_01b3 ^ (second >> 29)
            }
        }
        for tensor in tensors { mix("\(tensor.name)\0\(tensor.dtype.rawValue)\0\(tensor.shape)\0".utf8) }
        for (key, value) in metadata { mix("\(key)\0\(value)\0".utf8) }
        for crc in crcs { mix(withUnsafeBytes(of: crc.littleEndian, Array.init)) }
        func digits(_ v: UInt64) -> String {
            let text = String(v)
            return String(repeating: "0", count: 20 - text.count) + text
        }
        return Array((digits(first) + digits(second)).utf8)
    }
}
