import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Per-output-channel uniform quantizer of BitsFusion (arXiv 2406.04333) Eq. 1: one scale per row (or per group of
/// `groupSize` columns), integer levels q on the balanced grid -2^(b-1)...2^(b-1) (2^b + 1 levels) or the plain grid
/// -2^(b-1)...2^(b-1)-1 (2^b levels), codes c = q + 2^(b-1), decoded as spec/bfq.md section 3.2 says:
/// w' = f32(f32(s x q) + 0).
///
/// Per row or group, for each start scale s = f32(f32(max|w| / 2^(b-1)) x factor) (`startFactors`, in order), and
/// then, with `rmsStart`, s = f32(f32(f32(rms) x c_b) / 2^(b-1)) (rms = sqrt(sum w^2 / n); c_b the clipping point, in
/// standard deviations, of the uniform quantizer with 2^b + 1 levels that is optimal for a Gaussian: `rmsClip`), one
/// pass over the weights gives q = clip(rint(f32(w / s))) (half to even), the closed-form objective
/// E(s) = sum h w^2 - 2 s sum h w q + s^2 sum h q^2 and the least-squares scale s' = f32(<w, q>_h / <q, q>_h) (h = 1
/// without importance weights); s' replaces s while E strictly falls, at most `maxIterations` times. The start with the
/// strictly lowest E wins (ties to the earlier). The winning scale is stored as `scaleType` says (f16: rounded to
/// nearest even, at most 65504) and one last pass derives the codes and the errors from the stored scale. A group
/// whose starts are all unusable (max|w| = 0, or a scale that is 0 or not finite) gets s = 0 and q = 0.
///
/// f64 sums keep 8 lanes (element i of the group in lane i mod 8) combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) +
/// (l6 + l7)); a row's error and signal are its groups' in group order. The C kernel (CBFQShims Quantize.c; AVX2 or
/// scalar, same bits) does the work; `tools/testdata/quantizer_cases.py` repeats its arithmetic in numpy and the tests
/// require identical codes, scales and errors. Rows run in parallel; the output is the same for any thread count.
///
/// Why the RMS start: on heavy-tailed rows the abs-max scale sits far out in the tail, and the alternating
/// optimisation from it stops in a local optimum that codes nearly every weight as 0 (a Gaussian with 1% of its
/// weights x10, 4096 x 4096, at b = 1: 2.3 dB from abs-max starts); a start placed by the spread of the row
/// escapes it (see the README's quality tables for the gains).
///
/// Default starts (`defaultStartFactors(bits:)`): the abs-max scale, and 0.8 of it from b = 4 on, then the RMS start.
/// Measured with `bfq-bench-quantize` on every conv and linear weight of the SD-v1.5-shaped benchmark (282 tensors,
/// 859M weights, f16 scales), total SQNR in dB for abs-max only / abs-max and RMS / [1, 0.8] and RMS / six abs-max
/// starts and RMS: b1 4.48 / 5.08 / 5.08 / 5.08; b3 10.20 / 10.33 / 10.33 / 10.34; b4 13.25 / 13.42 / 13.48 / 13.58;
/// b6 21.93 / 21.93 / 22.15 / 22.29, at about 3.8 / 6.3 / 9.2 / 19.5 ns of CPU per weight. Below 4 bits the RMS start
/// makes the 0.8 start useless; from 4 bits it still adds 0.05 to 0.25 dB.
public struct GridQuantizer: Sendable {
    public enum Grid: String, Sendable, CaseIterable {
        /// 2^b + 1 levels, q in -2^(b-1)...2^(b-1) (BitsFusion's balance integer).
        case balanced
        /// 2^b levels, q in -2^(b-1)...2^(b-1)-1.
        case plain
    }

    /// How scales are stored; the codes and errors are those of the stored scale.
    public enum ScaleType: String, Sendable, CaseIterable {
        case f16 = "F16"
        case f32 = "F32"

        public var dtype: DType { self == .f16 ? .f16 : .f32 }
    }

    public let bits: Int
    public let grid: Grid
    /// Least-squares rescale + requantize rounds per start (the paper's 10); 0 keeps each start's scale.
    public let maxIterations: Int
    /// Multipliers of the abs-max scale tried as starts; [1] is the paper's single abs-max start; empty (with the RMS
    /// start) tries the RMS start alone.
    public let startFactors: [Float]
    /// Whether a start placed by the row's RMS follows the abs-max ones.
    public let rmsStart: Bool
    /// Columns per scale (`QuantizedValues.groupSizes`), or nil for one scale per row.
    public let groupSize: Int?
    public let scaleType: ScaleType
    /// False runs every row on the caller's thread (tests compare with the parallel path).
    var parallel = true
    /// True when the caller has already checked that every weight is finite (skips the scan).
    var weightsAreFinite = false
    /// False runs the portable scalar kernels; true (unless `BFQ_SCALAR` is set) uses AVX2 when the CPU has it.
    var vectorized = getenv("BFQ_SCALAR") == nil

    /// The abs-max starts used when none are given: [1] below 4 bits, [1, 0.8] from 4 bits on (see above).
    public static func defaultStartFactors(bits: Int) -> [Float] { bits < 4 ? [1] : [1, 0.8] }

    /// c_b for b = 1...8: the clipping point (in standard deviations) of the MSE-optimal uniform quantizer with
    /// 2^b + 1 levels for a Gaussian (numerical minimisation; 1.224 for 3 levels, as Max 1960 tabulates).
    public static let rmsClip: [Float] = [1.224, 1.686, 2.135, 2.551, 2.933, 3.286, 3.615, 3.924]

    /// `startFactors` nil means `defaultStartFactors(bits:)`.
    public init(bits: Int, grid: Grid = .balanced, maxIterations: Int = 10, startFactors: [Float]? = nil,
                rmsStart: Bool = true, groupSize: Int? = nil, scaleType: ScaleType = .f16) throws {
        guard (1 ... 8).contains(bits) else { throw QuantizerError.bitsOutOfRange(bits) }
        guard (0 ... RowQuantization.maxIterations).contains(maxIterations) else {
            throw QuantizerError.invalidIterations(maxIterations)
        }
        let startFactors = startFactors ?? Self.defaultStartFactors(bits: bits)
        guard !startFactors.isEmpty || rmsStart, startFactors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw QuantizerError.invalidStartFactors(startFactors)
        }
        if let groupSize, !QuantizedValues.groupSizes.contains(groupSize) {
            throw QuantizerError.groupSizeOutOfRange(groupSize)
        }
        (self.bits, self.grid, self.maxIterations) = (bits, grid, maxIterations)
        (self.startFactors, self.rmsStart, self.groupSize, self.scaleType) = (startFactors, rmsStart, groupSize, scaleType)
    }

    /// 2^b + 1 (balanced) or 2^b (plain).
    public var levels: Int { grid == .balanced ? (1 << bits) + 1 : 1 << bits }
    /// 2^(b-1): the code of q = 0.
    public var half: Int { 1 << (bits - 1) }

    /// Quantizes `rows` x `columns` f32 weights (row-major, rows = output channels). `importance`, when given, holds
    /// one non-negative weight per column (for example the input channel's second moment) that weights each element's
    /// squared error in the scale search.
    public func quantize(_ weights: [Float], rows: Int, columns: Int, importance: [Float]? = nil) throws -> QuantizationResult {
        try weights.withUnsafeBufferPointer { try quantize($0, rows: rows, columns: columns, importance: importance) }
    }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                         importance: [Float]? = nil) throws -> QuantizationResult {
        try RowQuantization.check(weights, rows: rows, columns: columns, importance: importance, finite: weightsAreFinite)
        let group = groupSize ?? Swift.max(columns, 1)
        // One scale per row without groups (spec/bfq.md 3.1), also for a row of no columns.
        let run = RowQuantization(rows: rows, columns: columns, parametersPerRow: groupSize == nil ? 1 : (columns + group - 1) / group)
        return startFactors.withUnsafeBufferPointer { factors in
            var params = bfq_grid_params(half: Int32(half), qmax: Int32(grid == .balanced ? half : half - 1),
                                         max_iterations: UInt32(maxIterations), factors: factors.baseAddress,
                                         factor_count: factors.count, rms_clip: rmsStart ? Self.rmsClip[bits - 1] : 0,
                                         group_size: group,
                                         f16_scales: scaleType == .f16 ? 1 : 0, vectorized: vectorized ? 1 : 0)
            return run.run(weights, importance: importance, parallel: parallel, levels: levels,
                           parameterType: scaleType.dtype,
                           values: { .grid(scales: $0, groupSize: groupSize) }) { _, w, h, codes, scales, error in
                bfq_grid_quantize_row(&params, w, h, columns, codes, scales, error)
            }
        }
    }
}
