/// Per-layer importance weights for the quantizers (as llama.cpp's importance matrix): a checkpoint (any format bfq
/// reads) holding, for a layer, a 1-D tensor named by its diffusers layer name with the second moment of each input
/// channel (one value per column of the weight; for a convolution, one per input channel, repeated over the kernel).
/// Each weight's squared error counts times its column's value. Layers without an entry are unweighted.
public struct ImportanceFile {
    private let checkpoint: Checkpoint
    private let entries: [String: TensorEntry]

    public init(path: String) throws {
        checkpoint = try CheckpointFile.open(path)
        entries = Dictionary(checkpoint.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// True when the file has weights for `tensor`'s layer.
    func covers(_ tensor: QuantizationLayout.Tensor) -> Bool { tensor.layer.map { entries[$0] != nil } ?? false }

    /// The weights for `tensor`'s columns, or nil when the file has none for its layer.
    func weights(for tensor: QuantizationLayout.Tensor) throws -> [Float]? {
        guard let layer = tensor.layer, let entry = entries[layer] else { return nil }
        func invalid(_ reason: String) -> QuantizationError {
            .invalidImportance(path: checkpoint.file.path, layer: layer, reason: reason)
        }
        let inputs = tensor.entry.shape.count > 1 ? tensor.entry.shape[1] : 1
        let kernel = inputs == 0 ? 0 : tensor.columns / inputs
        guard entry.shape.count == 1, entry.dtype.isFloatingPoint, entry.elementCount == inputs || entry.elementCount == tensor.columns else {
            throw invalid("needs a 1-D floating-point tensor of \(inputs) input channels or \(tensor.columns) columns, "
                + "found \(entry.dtype.rawValue) \(entry.shape)")
        }
        var values = [Float](repeating: 0, count: entry.elementCount)
        if !values.isEmpty {
            try checkpoint.withContiguousBytes(of: entry) { bytes in
                values.withUnsafeMutableBytes {
                    ElementConverter.convert(bytes.baseAddress!, entry.dtype, to: $0.baseAddress!, .f32, count: entry.elementCount)
                }
            }
        }
        if let bad = values.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
            throw invalid("value \(bad) is negative or not finite")
        }
        // Columns of a conv weight run over input channels, then the kernel positions.
        return values.count == tensor.columns ? values : values.flatMap { repeatElement($0, count: kernel) }
    }
}
