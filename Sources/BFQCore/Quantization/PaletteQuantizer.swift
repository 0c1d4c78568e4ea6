import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Per-row lookup-table quantizer: each row gets L = 2^b + 1 entries, found by 1-D k-means (Lloyd-Max), weighted by
/// the importance weights when given, and stored as f16; codes index the row's ascending entries
/// (`QuantizedValues.palette(_, perRow: true)`).
///
/// Per row: the entries start at the balanced grid levels f32(s x (k - 2^(b-1))) + 0 of the row's grid scale s (from
/// `start`, or a `GridQuantizer` run with the same bits and `startFactors`, f32 scales). The Lloyd iterations run on
/// a histogram of the row (`BFQ_PALETTE_BINS` equal bins between its min and max; per bin the importance, or count,
/// and the importance-weighted sum, as prefix sums): every entry moves to the weighted mean of the bins whose centres
/// lie nearer to it than to its neighbours, an entry with no weight stays, at most `maxIterations` rounds or until
/// none moves. The entries are then rounded to f16 (via f32, nearest even, clamped to +-65504), and every weight
/// gets its exactly nearest stored entry (ties to the lower); errors are those of the stored entries.
/// `tools/testdata/quantizer_cases.py` repeats this arithmetic in numpy; rows run in parallel, the output is the
/// same for any thread count.
public struct PaletteQuantizer: Sendable {
    public let bits: Int
    public let maxIterations: Int
    /// Starts of the grid run that gives the initial entries when no start is passed to `quantize`.
    public let startFactors: [Float]
    var parallel = true
    /// True when the caller has already checked that every weight is finite (skips the scan).
    var weightsAreFinite = false
    var vectorized = getenv("BFQ_SCALAR") == nil

    /// `startFactors` nil means `GridQuantizer.defaultStartFactors(bits:)`.
    public init(bits: Int, maxIterations: Int = 10, startFactors: [Float]? = nil) throws {
        guard (1 ... 8).contains(bits) else { throw QuantizerError.bitsOutOfRange(bits) }
        guard (0 ... RowQuantization.maxIterations).contains(maxIterations) else {
            throw QuantizerError.invalidIterations(maxIterations)
        }
        let grid = try GridQuantizer(bits: bits, startFactors: startFactors)
        (self.bits, self.maxIterations, self.startFactors) = (bits, maxIterations, grid.startFactors)
    }

    /// 2^b + 1 entries per row.
    public var levels: Int { (1 << bits) + 1 }

    public func quantize(_ weights: [Float], rows: Int, columns: Int, importance: [Float]? = nil,
                         start: QuantizationResult? = nil) throws -> QuantizationResult {
        try weights.withUnsafeBufferPointer {
            try quantize($0, rows: rows, columns: columns, importance: importance, start: start)
        }
    }

    /// Quantizes `rows` x `columns` f32 weights (row-major). `start`, when given, is this tensor's balanced-grid
    /// result at the same bits with one scale per row (it saves the grid run); `importance` as `GridQuantizer`'s.
    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, importance: [Float]? = nil,
                         start: QuantizationResult? = nil) throws -> QuantizationResult {
        try RowQuantization.check(weights, rows: rows, columns: columns, importance: importance, finite: weightsAreFinite)
        let scales = try startScales(start, weights, rows: rows, columns: columns, importance: importance)
        var params = bfq_palette_params(levels: UInt32(levels), max_iterations: UInt32(maxIterations),
                                        vectorized: vectorized ? 1 : 0)
        return RowQuantization(rows: rows, columns: columns, parametersPerRow: levels)
            .run(weights, importance: importance, parallel: parallel, levels: levels, parameterType: .f16,
                 values: { .palette($0, perRow: true) }) { row, w, h, codes, entries, error in
                bfq_palette_quantize_row(&params, w, h, columns, scales[row], entries, codes, error)
            }
    }

    /// One grid scale per row: `start`'s after checking it fits, or a fresh grid run's.
    private func startScales(_ start: QuantizationResult?, _ weights: UnsafeBufferPointer<Float>, rows: Int,
                             columns: Int, importance: [Float]?) throws -> [Float] {
        guard let start else {
            var grid = try GridQuantizer(bits: bits, startFactors: startFactors, scaleType: .f32)
            (grid.parallel, grid.vectorized) = (parallel, vectorized)
            guard case let .grid(scales, nil, nil) = try grid.quantize(weights, rows: rows, columns: columns,
                                                                        importance: importance).values else {
                preconditionFailure("a grid without groups gives one scale per row")
            }
            return scales
        }
        guard start.levels == levels, start.rows == rows, start.columns == columns else {
            throw QuantizerError.startMismatch("\(start.rows) x \(start.columns) codes of \(start.levels) levels, "
                + "not \(rows) x \(columns) of \(levels)")
        }
        guard case let .grid(scales, nil, nil) = start.values else {
            throw QuantizerError.startMismatch("it needs one grid scale per row")
        }
        return scales
    }
}
