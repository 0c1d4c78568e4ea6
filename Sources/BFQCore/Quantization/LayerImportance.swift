/// Per-layer importance weights for the quantizers (as llama.cpp's importance matrix): for a layer, named by its
/// diffusers module name, the second moment of each input channel (one value per column of the weight; for a
/// convolution, one per input channel, repeated over the kernel). Each weight's squared error counts times its
/// column's value; layers without an entry are unweighted. Read from a checkpoint of 1-D tensors (any format bfq
/// reads), or recorded by the reference UNet (`OutputSensitivity`), which can save them in that form.
public struct LayerImportance: Sendable {
    /// The file, or what recorded the moments, for messages.
    public let origin: String
    /// Values by layer: per input channel or per column.
    public let moments: [String: [Float]]

    public init(moments: [String: [Float]], origin: String) {
        self.moments = moments
        self.origin = origin
    }

    /// Reads every 1-D floating-point tensor of the file at `path` as a layer's moments.
    public init(path: String) throws {
        let checkpoint = try CheckpointFile.open(path)
        var moments: [String: [Float]] = [:]
        for entry in checkpoint.tensors where moments[entry.name] == nil {
            guard entry.shape.count == 1, entry.dtype.isFloatingPoint else {
                throw QuantizationError.invalidImportance(path: path, layer: entry.name,
                                                          reason: "needs a 1-D floating-point tensor, found \(entry.dtype.rawValue) \(entry.shape)")
            }
            let values = try checkpoint.floats(of: entry)
            if let bad = values.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw QuantizationError.invalidImportance(path: path, layer: entry.name, reason: "value \(bad) is negative or not finite")
            }
            moments[entry.name] = values
        }
        self.init(moments: moments, origin: path)
    }

    /// True when there are weights for `tensor`'s layer.
    func covers(_ tensor: QuantizationLayout.Tensor) -> Bool { tensor.layer.map { moments[$0] != nil } ?? false }

    /// The weights for `tensor`'s columns, or nil when there are none for its layer.
    func weights(for tensor: QuantizationLayout.Tensor) throws -> [Float]? {
        guard let layer = tensor.layer, let values = moments[layer] else { return nil }
        let inputs = tensor.entry.shape.count > 1 ? tensor.entry.shape[1] : 1
        let kernel = inputs == 0 ? 0 : tensor.columns / inputs
        guard values.count == inputs || values.count == tensor.columns else {
            throw QuantizationError.invalidImportance(path: origin, layer: layer,
                                                      reason: "needs \(inputs) input channels or \(tensor.columns) columns, found \(values.count) values")
        }
        // Columns of a conv weight run over input channels, then the kernel positions.
        return values.count == tensor.columns ? values : values.flatMap { repeatElement($0, count: kernel) }
    }

    /// Writes the moments as a checkpoint of f32 1-D tensors (sorted by name) that `init(path:)` reads back.
    public func write(to target: OutputTarget) throws {
        try FloatTensors(moments.keys.sorted().map { ($0, [moments[$0]!.count], moments[$0]!) }).write(to: target)
    }
}
