/// Opens a checkpoint of any supported format, detected from its content rather than its name; or one made of several
/// files: a shard index or a diffusers folder.
public enum CheckpointFile {
    /// Opens `path`: a diffusers pipeline or component folder, a pipeline's model_index.json, a shard index
    /// (`*.json`), or one checkpoint file.
    public static func open(_ path: String) throws -> Checkpoint {
        if DiffusersFolder.isFolder(path) { return try DiffusersFolder.open(path) }
        if CheckpointAssembly.lastComponent(path) == "model_index.json" {
            return try DiffusersFolder.open(path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : ".")
        }
        if path.lowercased().hasSuffix(".json") { return try ShardIndex.open(path) }
        return try openFile(path)
    }

    /// Maps the one file `path` and reads its header or pickle.
    public static func openFile(_ path: String) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        switch detect(file.bytes) {
        case .safetensors: return try SafeTensorsReader.read(file)
        case .pytorchZip, .pytorchLegacy: return try PyTorchReader.read(file)
        case .bfq: return try ContainerTensorDecoder.checkpoint(file)
        case .gguf: return try GGUFReader.read(file)
        case nil:
            // Damaged files still get the precise complaint of the reader their first bytes or name point to.
            let bytes = file.bytes
            if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) || bytes.first == 0x80 { return try PyTorchReader.read(file) }
            if path.lowercased().hasSuffix(".safetensors") { return try SafeTensorsReader.read(file) }
            if path.lowercased().hasSuffix(".bfq") { return try ContainerTensorDecoder.checkpoint(file) }
            if path.lowercased().hasSuffix(".gguf") { return try GGUFReader.read(file) }
            throw CheckpointError.unknownFormat(path: path)
        }
    }

    /// The format the bytes look like, or nil. A safetensors file starts with a plausible header length and `{`.
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> CheckpointFormat? {
        if bytes.starts(with: ContainerHeader.magic) { return .bfq }
        if bytes.starts(with: GGUFReader.magic) { return .gguf }
        if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") {
            let length = bytes.loadUnaligned(as: UInt64.self).littleEndian
            if length <= UInt64(bytes.count - 8) { return .safetensors }
        }
        guard PyTorchReader.looksLikePyTorch(bytes) else { return nil }
        return bytes.starts(with: [0x50, 0x4B]) ? .pytorchZip : .pytorchLegacy
    }

    /// The extensions `writer(for:)` knows (GGUF, written with per-tensor types, has its own `GGUFConversion`).
    public static let outputExtensions = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".bfq"]

    /// The writer for an output path, chosen by its extension.
    public static func writer(for path: String) throws -> CheckpointWriter.Type {
        let lower = path.lowercased()
        if lower.hasSuffix(".safetensors") { return SafeTensorsWriter.self }
        if [".ckpt", ".pt", ".pth", ".bin"].contains(where: { lower.hasSuffix($0) }) { return PyTorchWriter.self }
        if lower.hasSuffix(".bfq") { return ContainerCheckpointWriter.self }
        throw CheckpointError.unsupportedOutputExtension(path: path, extensions: outputExtensions)
    }
}
