/// Joins single-file checkpoints into one: their files in order, their tensors under `prefix + name`, metadata merged
/// (the first file's value wins) and warnings kept. Only plain files (safetensors, PyTorch) join: .bfq and GGUF
/// tensors need their own decoders.
struct CheckpointParts {
    private var files: [MappedFile] = []
    private var tensors: [TensorEntry] = []
    private var metadata: [String: String] = [:]
    private var warnings: [String] = []
    private var formats: [CheckpointFormat] = []
    /// The file each output name came from, to name both files of a duplicate.
    private var owner: [String: String] = [:]

    /// Adds `part`'s tensors under `prefix`.
    /// - Throws: `AssemblyError.tensorInTwoFiles` when a name is already taken.
    mutating func add(_ part: Checkpoint, prefix: String = "") throws {
        let base = files.count
        for entry in part.tensors {
            var entry = entry
            entry.name = prefix + entry.name
            entry.file += base
            if let first = owner.updateValue(part.files[0].path, forKey: entry.name) {
                throw AssemblyError.tensorInTwoFiles(tensor: entry.name, first: first, second: part.files[0].path)
            }
            tensors.append(entry)
        }
        files += part.files
        formats.append(part.format)
        metadata.merge(part.metadata) { first, _ in first }
        warnings += part.warnings
    }

    /// Adds a warning about the whole.
    mutating func warn(_ line: String) { warnings.append(line) }

    /// The checkpoint opened from `path`.
    func checkpoint(path: String, assembly: CheckpointAssembly, unetConfigPath: String? = nil) -> Checkpoint {
        var checkpoint = Checkpoint(path: path, files: files, format: formats.first ?? .safetensors, assembly: assembly,
                                    metadata: metadata, tensors: tensors, warnings: warnings)
        checkpoint.unetConfigPath = unetConfigPath
        return checkpoint
    }

    /// Opens one file that is to be part of a larger checkpoint, refusing formats that cannot join.
    static func openPlain(_ path: String, listedBy index: String) throws -> Checkpoint {
        let part = try CheckpointFile.openFile(path)
        guard part.decoder == nil else {
            throw AssemblyError.shardNotPlain(index: index, shard: path, format: part.format == .bfq ? ".bfq" : "GGUF")
        }
        return part
    }
}
