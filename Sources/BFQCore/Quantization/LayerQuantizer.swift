import CBFQShims

/// The one place a layer meets the quantizers: loads weights as f32, runs the grid or palette quantizer a choice
/// names, and puts tensor names into their errors.
enum LayerQuantizer {
    /// What the allocator weighs: the importance-weighted squared error when importance was given, else the plain one.
    static func distortion(of result: QuantizationResult) -> Double {
        result.rowWeightedErrors.map { $0.reduce(0, +) } ?? result.error
    }

    /// Sum of (w - w')^2 with w' = w rounded to f16: chunks on all threads, their sums added in chunk order.
    static func rawDistortion(_ weights: [Float]) -> Double {
        let chunk = 1 << 16
        var sums = [Double](repeating: 0, count: (weights.count + chunk - 1) / chunk)
        weights.withUnsafeBufferPointer { w in
            sums.withUnsafeMutableBufferPointer { sums in
                let base = sums.baseAddress!
                Parallel.forEach(sums.count) { index in
                    let part = UnsafeBufferPointer(rebasing: w[index * chunk ..< min(w.count, (index + 1) * chunk)])
                    var halves = [UInt16](repeating: 0, count: part.count)
                    var rounded = [Float](repeating: 0, count: part.count)
                    bfq_f32_to_f16(part.baseAddress!, &halves, part.count)
                    bfq_f16_to_f32(halves, &rounded, part.count)
                    var sum = 0.0
                    for i in part.indices {
                        let d = Double(part[i]) - Double(rounded[i])
                        sum += d * d
                    }
                    base[index] = sum
                }
            }
        }
        return sums.reduce(0, +)
    }

    /// f32 values rounded to f16 (nearest even).
    static func halves(_ values: [Float]) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        bfq_f32_to_f16(values, &out, values.count)
        return out
    }

    /// The tensor's elements widened to f32, its file pages released afterwards; a non-floating type, NaN, infinity or
    /// a magnitude beyond f16's 65504 (scales and tables are f16) is an error naming the tensor (and row and column).
    static func weights(of tensor: QuantizationLayout.Tensor, in checkpoint: Checkpoint) throws -> [Float] {
        let entry = tensor.entry
        guard entry.dtype.isFloatingPoint else { throw QuantizationError.notFloatingPoint(tensor: tensor.outputName, dtype: entry.dtype) }
        let floats = try checkpoint.floats(of: entry)
        // One vectorisable pass over the bits: |w| <= 65504 (f16's largest) for every weight, NaN and infinity included.
        let largest = floats.withUnsafeBytes { bytes in
            bytes.bindMemory(to: UInt32.self).reduce(0 as UInt32) { Swift.max($0, $1 & 0x7FFF_FFFF) }
        }
        if largest > Float(65504).bitPattern, let bad = floats.firstIndex(where: { !($0.magnitude <= 65504) }) {
            let (row, column) = (bad / tensor.columns, bad % tensor.columns)
            guard floats[bad].isFinite else { throw QuantizationError.nonFinite(tensor: tensor.outputName, row: row, column: column) }
            throw QuantizationError.beyondHalfRange(tensor: tensor.outputName, row: row, column: column, value: floats[bad])
        }
        return floats
    }

    /// Quantizes `weights` (finite, from `weights(of:in:)`) as `choice` says, each column's squared error weighted by
    /// `importance` when given, grids from the scale starts given (nil: the quantizer's defaults); a
    /// palette starts from `start` (the grid result at the same bits with one scale per row) when given, else from its
    /// own grid run.
    static func quantize(_ weights: [Float], tensor: QuantizationLayout.Tensor, choice: LayerChoice,
                         importance: [Float]? = nil, startFactors: [Float]? = nil,
                         start: QuantizationResult? = nil) throws -> QuantizationResult {
        switch choice.kind {
        case .grid:
            var grid = try GridQuantizer(bits: choice.bits, startFactors: startFactors, groupSize: choice.groupSize)
            grid.weightsAreFinite = true
            return try grid.quantize(weights, rows: tensor.rows, columns: tensor.columns, importance: importance)
        case .palette:
            var grid = try GridQuantizer(bits: choice.bits, startFactors: startFactors)
            grid.weightsAreFinite = true
            let start = try start ?? grid.quantize(weights, rows: tensor.rows, columns: tensor.columns, importance: importance)
            var palette = try PaletteQuantizer(bits: choice.bits)
            palette.weightsAreFinite = true
            return try palette.quantize(weights, rows: tensor.rows, columns: tensor.columns, importance: importance, start: start)
        case .raw:
            preconditionFailure("raw tensors are not quantized")
        }
    }
}
