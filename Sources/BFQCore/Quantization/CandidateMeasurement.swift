// TEMPORARY stand-in until the sorted-row kernel lands (same results through the exact quantizers).
enum CandidateMeasurement {
    static func measure(_ weights: [Float], rows: Int, columns: Int, importance: [Float]?,
                        candidates: [LayerChoice]) throws -> (distortions: [Double], signal: Double) {
        let tensorLike = (rows, columns)
        var signal = 0.0
        for w in weights { signal += Double(w) * Double(w) }
        let distortions = try candidates.map { choice -> Double in
            if choice.kind == .raw {
                let r = OutputSensitivity.halfRounded(weights)
                var d = 0.0
                for i in weights.indices { let e = Double(weights[i]) - Double(r[i]); d += (importance.map { Double($0[i % columns]) } ?? 1) * e * e }
                return d
            }
            let result: QuantizationResult
            if choice.kind == .grid {
                var grid = try GridQuantizer(bits: choice.bits, groupSize: choice.groupSize)
                grid.weightsAreFinite = true
                result = try grid.quantize(weights, rows: tensorLike.0, columns: tensorLike.1, importance: importance)
            } else {
                var grid = try GridQuantizer(bits: choice.bits)
                grid.weightsAreFinite = true
                let start = try grid.quantize(weights, rows: rows, columns: columns, importance: importance)
                result = try PaletteQuantizer(bits: choice.bits).quantize(weights, rows: rows, columns: columns, importance: importance, start: start)
            }
            return LayerQuantizer.distortion(of: result)
        }
        return (distortions, signal)
    }
}
