#if canImport(Glibc)
import Glibc
#endif

/// A tensor quantized by `GridQuantizer` or `PaletteQuantizer`: its codes, how they decode, and the error of the
/// decoded values, so a caller can compare and store either kind the same way.
public struct QuantizationResult: Sendable, Equatable {
    /// Code values 0..<levels.
    public let levels: Int
    public let rows: Int
    public let columns: Int
    /// rows x columns codes, row-major.
    public let codes: [UInt16]
    /// How the codes become weights (spec/bfq.md section 3.2): grid scales or per-row palettes, each value exact in
    /// `parameterType`.
    public let values: QuantizedValues
    /// The type the scales or palette entries are to be stored as (f16 or f32); they are exact in it.
    public let parameterType: DType
    /// Per row: sum of (w - w')^2 in f64, w' the f32 value the decoder produces from the stored parameters.
    public let rowErrors: [Double]
    /// Per row: sum of h (w - w')^2 with the importance weights h; nil when none were given.
    public let rowWeightedErrors: [Double]?
    /// Per row: sum of w^2 in f64.
    public let rowSignals: [Double]

    /// Sum of the row errors, in row order.
    public var error: Double { rowErrors.reduce(0, +) }
    /// Sum of the row signals, in row order.
    public var signal: Double { rowSignals.reduce(0, +) }
    /// 10 log10(signal / error) in dB; +infinity when the error is 0.
    public var sqnr: Double {
        let error = error
        return error == 0 ? .infinity : 10 * log10(signal / error)
    }
}

public enum QuantizerError: Error, Equatable, CustomStringConvertible {
    case bitsOutOfRange(Int)
    case invalidIterations(Int)
    case invalidStartFactors([Float])
    case groupSizeOutOfRange(Int)
    case shapeMismatch(rows: Int, columns: Int, count: Int)
    case importanceCountMismatch(expected: Int, found: Int)
    case invalidImportance(column: Int)
    case nonFinite(row: Int, column: Int)
    /// The grid result a palette starts from does not match it (levels, shape, or group scales).
    case startMismatch(String)

    public var description: String {
        switch self {
        case let .bitsOutOfRange(bits): return "quantizer bits must be 1 to 8, not \(bits)"
        case let .invalidIterations(n): return "iteration count must be 0 to \(RowQuantization.maxIterations), not \(n)"
        case let .invalidStartFactors(f): return "start factors must be positive and finite, and at least one: \(f)"
        case let .groupSizeOutOfRange(g):
            return "group size must be \(QuantizedValues.groupSizes.lowerBound) to \(QuantizedValues.groupSizes.upperBound), not \(g)"
        case let .shapeMismatch(rows, columns, count):
            return "\(count) weights do not make \(rows) rows of \(columns) columns"
        case let .importanceCountMismatch(expected, found):
            return "importance needs one weight per column (\(expected)), found \(found)"
        case let .invalidImportance(column): return "importance weight of column \(column) is negative or not finite"
        case let .nonFinite(row, column): return "weight at row \(row), column \(column) is NaN or infinite"
        case let .startMismatch(what): return "the palette's starting grid does not fit: \(what)"
        }
    }
}

extension QuantizationResult {
    /// The weights as a reader of the .bfq gets them: the codes packed as the file stores them and decoded to f32 by
    /// the lookup-table `Dequantizer`, the one path by which quantized weights reach anything else.
    public func dequantized() throws -> [Float] {
        let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels)
        let dequantizer = try Dequantizer(rows: rows, columns: columns, levels: levels, values: values)
        return try [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
            try packed.withUnsafeBytes { try dequantizer.decode($0, into: UnsafeMutableRawBufferPointer(out), as: .f32) }
            initialized = rows * columns
        }
    }
}
