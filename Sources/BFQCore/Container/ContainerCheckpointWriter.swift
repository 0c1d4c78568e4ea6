/// Writes any checkpoint losslessly into a .bfq container: every tensor raw, one zstd-compressed section each
/// (stored as is where zstd does not shrink it), with the metadata carried over and the source file's name, size
/// and SHA-256 recorded (of all its files, for a shard index or folder).
public enum ContainerCheckpointWriter: CheckpointWriter {
    public static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String],
                             source: TensorByteSource) throws {
        var names = Set<String>()
        for tensor in tensors where !names.insert(tensor.name).inserted {
            throw CheckpointError.duplicateOutputName(path: target.path, tensor: tensor.name)
        }
        // Hash the source on another thread while the sections are written.
        let digest = SourceDigestTask(target.inputs, path: target.inputPath ?? target.inputs.first?.path ?? "")
        let writer = try ContainerWriter(target: target)
        var entries: [ContainerTensor] = []
        entries.reserveCapacity(tensors.count)
        for (index, tensor) in tensors.enumerated() {
            let sink = MemorySink(reserving: tensor.byteCount)
            try source.emit(index, to: sink)
            precondition(sink.bytes.count == tensor.byteCount, "source wrote the wrong size for \(tensor.name)")
            let reference = try sink.bytes.withUnsafeBytes { try writer.addSection($0) }
            entries.append(ContainerTensor(name: tensor.name, shape: tensor.shape, sourceType: tensor.sourceType,
                                           encoding: .raw(dtype: tensor.dtype), sections: ["data": reference]))
        }
        try writer.finish(manifest: ContainerManifest(tensors: entries, metadata: metadata, source: digest.result()))
    }
}
