#if canImport(Glibc)
import Glibc
#endif

/// Per-output-channel uniform quantizer of BitsFusion (arXiv 2406.04333) Eq. 1: one scale per row, integer levels
/// q on the balanced grid -2^(b-1)...2^(b-1) (2^b + 1 levels) or the plain grid -2^(b-1)...2^(b-1)-1 (2^b levels),
/// codes c = q + 2^(b-1), decoded as spec/bfq.md section 3.2 says: w' = f32(f32(s x q) + 0).
///
/// Per row, for each start scale s = f32(f32(max|w| / 2^(b-1)) x factor) (factors in `startFactors`, in order):
/// 1. q = clip(round(f32(w / s))), rounding half to even (as numpy's rint and torch.round);
/// 2. the (importance-weighted) least-squares scale s' = f32(<w, q>_h / <q, q>_h), sums in f64;
/// 3. requantize with s'; keep (s', q') when its error is strictly lower, else stop; at most `maxIterations` times.
/// The start with the strictly lowest error wins (ties go to the earlier start). A row whose starts are all unusable
/// (max|w| = 0, or a scale that is 0 or not finite) gets s = 0 and q = 0.
///
/// Errors are measured on the decoded f32 values: d = f64(w) - f64(w'), summed element by element in order in f64
/// (objective: sum of h x (d x d); reported error: sum of d x d). `tools/testdata/quantizer_cases.py` repeats this
/// arithmetic in numpy, and the tests require identical codes and scales.
///
/// Rows run in parallel over `Parallel`'s threads; each row's result depends only on that row, so the output is
/// the same for any thread count.
public struct GridQuantizer: Sendable {
    public enum Grid: String, Sendable, CaseIterable {
        /// 2^b + 1 levels, q in -2^(b-1)...2^(b-1) (BitsFusion's balance integer).
        case balanced
        /// 2^b levels, q in -2^(b-1)...2^(b-1)-1.
        case plain
    }

    public let bits: Int
    public let grid: Grid
    /// Least-squares rescale + requantize rounds per start (the paper's 10); 0 keeps each start's scale.
    public let maxIterations: Int
    /// Multipliers of the abs-max scale tried as starts; [1] is the paper's single abs-max start.
    public let startFactors: [Float]
    /// False runs every row on the caller's thread (tests compare with the parallel path).
    var parallel = true

    public static let defaultStartFactors: [Float] = [1, 0.9, 0.8, 0.7, 0.6, 0.5]

    public init(bits: Int, grid: Grid = .balanced, maxIterations: Int = 10,
                startFactors: [Float] = GridQuantizer.defaultStartFactors) throws {
        guard (1 ... 8).contains(bits) else { throw GridQuantizerError.bitsOutOfRange(bits) }
        // Codes are UInt8: the balanced 8-bit grid (257 levels, codes up to 256) does not fit.
        guard !(bits == 8 && grid == .balanced) else { throw GridQuantizerError.codesDoNotFitUInt8(levels: 257) }
        guard maxIterations >= 0 else { throw GridQuantizerError.invalidIterations(maxIterations) }
        guard !startFactors.isEmpty, startFactors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw GridQuantizerError.invalidStartFactors(startFactors)
        }
        (self.bits, self.grid, self.maxIterations, self.startFactors) = (bits, grid, maxIterations, startFactors)
    }

    /// 2^b + 1 (balanced) or 2^b (plain).
    public var levels: Int { grid == .balanced ? (1 << bits) + 1 : 1 << bits }
    /// 2^(b-1): the code of q = 0.
    public var half: Int { 1 << (bits - 1) }

    /// Quantizes `rows` x `columns` f32 weights (row-major, rows = output channels). `importance`, when given, holds
    /// one non-negative weight per column (for example the input channel's second moment) that weights each element's
    /// squared error in the scale search.
    public func quantize(_ weights: [Float], rows: Int, columns: Int, importance: [Float]? = nil) throws -> GridQuantization {
        try weights.withUnsafeBufferPointer { try quantize($0, rows: rows, columns: columns, importance: importance) }
    }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                         importance: [Float]? = nil) throws -> GridQuantization {
        guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (rows * columns, false),
              weights.count == rows * columns else {
            throw GridQuantizerError.shapeMismatch(rows: rows, columns: columns, count: weights.count)
        }
        if let importance {
            guard importance.count == columns else {
                throw GridQuantizerError.importanceCountMismatch(expected: columns, found: importance.count)
            }
            if let bad = importance.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw GridQuantizerError.invalidImportance(column: bad)
            }
        }
        if let bad = weights.firstIndex(where: { !$0.isFinite }) {
            throw GridQuantizerError.nonFinite(row: bad / columns, column: bad % columns)
        }
        let count = rows * columns
        let codes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: count)
        let scales = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows)
        let errors = UnsafeMutableBufferPointer<Double>.allocate(capacity: rows)
        let objectives = UnsafeMutableBufferPointer<Double>.allocate(capacity: rows)
        let signals = UnsafeMutableBufferPointer<Double>.allocate(capacity: rows)
        defer { codes.deallocate(); scales.deallocate(); [errors, objectives, signals].forEach { $0.deallocate() } }
        let body = { (row: Int) in
            let w = UnsafeBufferPointer(rebasing: weights[row * columns ..< (row + 1) * columns])
            let out = UnsafeMutableBufferPointer(rebasing: codes[row * columns ..< (row + 1) * columns])
            let result: RowResult
            if let importance {
                result = importance.withUnsafeBufferPointer { quantizeRow(w, $0, out) }
            } else {
                result = quantizeRow(w, nil, out)
            }
            scales[row] = result.scale
            errors[row] = result.error
            objectives[row] = result.objective
            signals[row] = result.signal
        }
        if parallel { Parallel.forEach(rows, body) } else { (0 ..< rows).forEach(body) }
        return GridQuantization(bits: bits, grid: grid, rows: rows, columns: columns, codes: Array(codes),
                                scales: Array(scales), rowErrors: Array(errors),
                                rowObjectives: importance == nil ? nil : Array(objectives), rowSignals: Array(signals))
    }

    struct RowResult { var scale: Float, error: Double, objective: Double, signal: Double }

    /// One row: every start, alternating optimisation, the best kept; codes written to `out`.
    func quantizeRow(_ w: UnsafeBufferPointer<Float>, _ h: UnsafeBufferPointer<Float>?,
                     _ out: UnsafeMutableBufferPointer<UInt8>) -> RowResult {
        let n = w.count
        let qMin = Float(-half), qMax = Float(grid == .balanced ? half : half - 1)
        var signal = 0.0
        var absMax: Float = 0
        for x in w {
            signal += Double(x) * Double(x)
            absMax = Swift.max(absMax, x.magnitude)
        }
        var current = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        var trial = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        let best = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        defer { current.deallocate(); trial.deallocate(); best.deallocate() }
        best.initialize(repeating: 0)

        func requantize(_ s: Float, _ q: UnsafeMutableBufferPointer<Float>) {
            for i in 0 ..< n {
                let r = (w[i] / s).rounded(.toNearestOrEven)
                q[i] = Swift.min(Swift.max(r, qMin), qMax)
            }
        }
        /// Sum of h x (d x d) (h = 1 when absent) over the decoded values, d = f64(w) - f64(f32(s x q) + 0).
        func objective(_ s: Float, _ q: UnsafeMutableBufferPointer<Float>, weighted: Bool) -> Double {
            var sum = 0.0
            if weighted, let h {
                for i in 0 ..< n {
                    let d = Double(w[i]) - Double(s * q[i] + 0)
                    sum += Double(h[i]) * (d * d)
                }
            } else {
                for i in 0 ..< n {
                    let d = Double(w[i]) - Double(s * q[i] + 0)
                    sum += d * d
                }
            }
            return sum
        }
        /// f32(<w, q>_h / <q, q>_h), or nil when <q, q>_h = 0 or the result is 0 or not finite.
        func leastSquaresScale(_ q: UnsafeMutableBufferPointer<Float>) -> Float? {
            var num = 0.0, den = 0.0
            if let h {
                for i in 0 ..< n {
                    let hq = Double(q[i])
                    num += (Double(h[i]) * Double(w[i])) * hq
                    den += Double(h[i]) * (hq * hq)
                }
            } else {
                for i in 0 ..< n {
                    let hq = Double(q[i])
                    num += Double(w[i]) * hq
                    den += hq * hq
                }
            }
            guard den > 0 else { return nil }
            let s = Float(num / den)
            return s.isFinite && s > 0 ? s : nil
        }

        var bestScale: Float = 0
        var bestObjective: Double? = nil
        let absMaxScale = absMax / Float(half)
        for factor in startFactors {
            var s = absMaxScale * factor
            guard s.isFinite, s > 0 else { continue }
            requantize(s, current)
            var value = objective(s, current, weighted: true)
            var iteration = 0
            while iteration < maxIterations {
                iteration += 1
                guard let next = leastSquaresScale(current) else { break }
                requantize(next, trial)
                let nextValue = objective(next, trial, weighted: true)
                guard nextValue < value else { break }
                (s, value) = (next, nextValue)
                swap(&current, &trial)
            }
            if bestObjective.map({ value < $0 }) ?? true {
                bestObjective = value
                bestScale = s
                _ = best.update(fromContentsOf: current)
            }
        }
        for i in 0 ..< n { out[i] = UInt8(Int(best[i]) + half) }
        let error = objective(bestScale, best, weighted: false)
        return RowResult(scale: bestScale, error: error, objective: h == nil ? error : objective(bestScale, best, weighted: true),
                         signal: signal)
    }
}

/// A quantized tensor: codes and one scale per row, with the errors of its decoded values.
public struct GridQuantization: Sendable, Equatable {
    public let bits: Int
    public let grid: GridQuantizer.Grid
    public let rows: Int
    public let columns: Int
    /// rows x columns codes, row-major, c = q + 2^(b-1).
    public let codes: [UInt8]
    /// One scale per row (0 for a row quantized to all zeros).
    public let scales: [Float]
    /// Per row: sum of (w - w')^2 in f64, w' the f32 value spec section 3.2 decodes.
    public let rowErrors: [Double]
    /// Per row: the importance-weighted error the search minimised; nil without importance weights.
    public let rowObjectives: [Double]?
    /// Per row: sum of w^2 in f64.
    public let rowSignals: [Double]

    public var levels: Int { grid == .balanced ? (1 << bits) + 1 : 1 << bits }
    /// Sum of the row errors, in row order.
    public var error: Double { rowErrors.reduce(0, +) }
    /// Sum of the row signals, in row order.
    public var signal: Double { rowSignals.reduce(0, +) }
    /// 10 log10(signal / error) in dB; +infinity when the error is 0.
    public var sqnr: Double {
        let error = error
        return error == 0 ? .infinity : 10 * log10(signal / error)
    }
    /// How these codes become weights, for `Dequantizer` and the container.
    public var values: QuantizedValues { .grid(scales: scales) }
}

public enum GridQuantizerError: Error, Equatable, CustomStringConvertible {
    case bitsOutOfRange(Int)
    case codesDoNotFitUInt8(levels: Int)
    case invalidIterations(Int)
    case invalidStartFactors([Float])
    case shapeMismatch(rows: Int, columns: Int, count: Int)
    case importanceCountMismatch(expected: Int, found: Int)
    case invalidImportance(column: Int)
    case nonFinite(row: Int, column: Int)

    public var description: String {
        switch self {
        case let .bitsOutOfRange(bits): return "quantizer bits must be 1 to 8, not \(bits)"
        case let .codesDoNotFitUInt8(levels): return "\(levels) levels do not fit 8-bit codes"
        case let .invalidIterations(n): return "iteration count must be at least 0, not \(n)"
        case let .invalidStartFactors(f): return "start factors must be positive and finite, and at least one: \(f)"
        case let .shapeMismatch(rows, columns, count):
            return "\(count) weights do not make \(rows) rows of \(columns) columns"
        case let .importanceCountMismatch(expected, found):
            return "importance needs one weight per column (\(expected)), found \(found)"
        case let .invalidImportance(column): return "importance weight of column \(column) is negative or not finite"
        case let .nonFinite(row, column): return "weight at row \(row), column \(column) is NaN or infinite"
        }
    }
}
