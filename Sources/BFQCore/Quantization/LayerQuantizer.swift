import CBFQShims

/// A weight quantized by one `LayerChoice`: codes (rows x columns), how they decode, and the squared error of the
/// decoded values.
struct QuantizedLayer {
    var levels: Int
    var codes: [UInt16]
    var values: QuantizedValues
    var distortion: Double
    var signal: Double
}

/// The one place a layer meets the quantizers: loads weights as f32, runs the grid or palette quantizer a choice
/// names, and puts tensor names into their errors.
enum LayerQuantizer {
    /// The tensor's elements widened to f32, its file pages released afterwards.
    /// Sum of (w - w')^2 for `choice`; for raw, w' is w rounded to f16.
    static func distortion(_ weights: [Float], tensor: QuantizationLayout.Tensor, choice: LayerChoice) throws -> Double {
        guard choice.kind == .raw else { return try quantize(weights, tensor: tensor, choice: choice).distortion }
        let halves = halves(weights)
        var rounded = [Float](repeating: 0, count: weights.count)
        bfq_f16_to_f32(halves, &rounded, weights.count)
        return zip(weights, rounded).reduce(0.0) { total, pair in
            let d = Double(pair.0) - Double(pair.1)
            return total + d * d
        }
    }

    /// Sum of w^2 in f64, in order.
    static func signal(_ weights: [Float]) -> Double { weights.reduce(0.0) { $0 + Double($1) * Double($1) } }

    /// f32 values rounded to f16 (nearest even).
    static func halves(_ values: [Float]) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        bfq_f32_to_f16(values, &out, values.count)
        return out
    }

    static func weights(of tensor: QuantizationLayout.Tensor, in checkpoint: Checkpoint) throws -> [Float] {
        let entry = tensor.entry
        var floats = [Float](repeating: 0, count: entry.elementCount)
        try checkpoint.withContiguousBytes(of: entry) { bytes in
            floats.withUnsafeMutableBytes { out in
                let perTask = 1 << 18
                Parallel.forEach((entry.elementCount + perTask - 1) / perTask) { task in
                    let start = task * perTask
                    ElementConverter.convert(bytes.baseAddress! + start * entry.dtype.byteSize, entry.dtype,
                                             to: out.baseAddress! + start * 4, .f32,
                                             count: min(perTask, entry.elementCount - start))
                }
            }
        }
        checkpoint.file.release(entry.storage)
        return floats
    }

    static func quantize(_ weights: [Float], tensor: QuantizationLayout.Tensor, choice: LayerChoice) throws -> QuantizedLayer {
        do {
            switch choice.kind {
            case .grid:
                let result = try GridQuantizer(bits: choice.bits).quantize(weights, rows: tensor.rows, columns: tensor.columns,
                                                                           importance: nil)
                return QuantizedLayer(levels: result.levels, codes: result.codes.map(UInt16.init), values: result.values,
                                      distortion: result.error, signal: result.signal)
            case .palette, .raw:
                preconditionFailure("\(choice) is not quantized here")
            }
        } catch let GridQuantizerError.nonFinite(row, column) {
            throw QuantizationError.nonFinite(tensor: tensor.outputName, row: row, column: column)
        }
    }
}
