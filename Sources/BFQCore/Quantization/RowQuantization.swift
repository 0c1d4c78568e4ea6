import CBFQShims

/// What both quantizers share: the input checks, and rows quantized in parallel by a C kernel into one result.
/// Each row's output depends only on that row, so the result is the same for any thread count.
struct RowQuantization {
    static let maxIterations = 1000

    let rows: Int
    let columns: Int
    /// Scales or palette entries each row produces.
    let parametersPerRow: Int

    /// Checks the shape, the importance weights (one per column, finite, >= 0) and that every weight is finite.
    static func check(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, importance: [Float]?,
                      finite: Bool = false) throws {
        guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (rows * columns, false),
              weights.count == rows * columns else {
            throw QuantizerError.shapeMismatch(rows: rows, columns: columns, count: weights.count)
        }
        if let importance {
            guard importance.count == columns else {
                throw QuantizerError.importanceCountMismatch(expected: columns, found: importance.count)
            }
            if let bad = importance.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw QuantizerError.invalidImportance(column: bad)
            }
        }
        if !finite, let bad = firstNonFinite(weights) {
            throw QuantizerError.nonFinite(row: bad / columns, column: bad % columns)
        }
    }

    /// The index of the first NaN or infinity, found by a vectorisable scan of the exponent bits.
    static func firstNonFinite(_ weights: UnsafeBufferPointer<Float>) -> Int? {
        let exponent: UInt32 = 0x7F80_0000
        let highest = UnsafeRawBufferPointer(weights).withMemoryRebound(to: UInt32.self) { bits in
            bits.reduce(0 as UInt32) { Swift.max($0, $1 & exponent) }
        }
        return highest == exponent ? weights.firstIndex { !$0.isFinite } : nil
    }

    /// Runs `kernel(row, weights, importance, codes, parameters, errors)` for every row (in parallel when asked) and
    /// gathers codes, parameters and errors into a result.
    func run(_ weights: UnsafeBufferPointer<Float>, importance: [Float]?, parallel: Bool, levels: Int,
             parameterType: DType, values: ([Float]) -> QuantizedValues,
             kernel: (Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<UInt16>,
                      UnsafeMutablePointer<Float>, UnsafeMutablePointer<bfq_row_error>) -> Void) -> QuantizationResult {
        let (rows, columns) = (self.rows, self.columns)
        var errors = [bfq_row_error](repeating: bfq_row_error(), count: rows)
        var parameters = [Float](repeating: 0, count: rows * parametersPerRow)
        var codes = [UInt16](repeating: 0, count: rows * columns)
        // Rows of no columns have no codes, no error and no signal; their parameters stay 0.
        if rows > 0, columns > 0 {
            importance.withUnsafeBufferPointerIfPresent { h in
                codes.withUnsafeMutableBufferPointer { codes in
                    parameters.withUnsafeMutableBufferPointer { parameters in
                        errors.withUnsafeMutableBufferPointer { errors in
                            let body = { (row: Int) in
                                kernel(row, weights.baseAddress! + row * columns, h?.baseAddress,
                                       codes.baseAddress! + row * columns, parameters.baseAddress! + row * parametersPerRow,
                                       errors.baseAddress! + row)
                            }
                            if parallel { Parallel.forEach(rows, body) } else { (0 ..< rows).forEach(body) }
                        }
                    }
                }
            }
        }
        return QuantizationResult(levels: levels, rows: rows, columns: columns, codes: codes,
                                  values: values(parameters), parameterType: parameterType,
                                  rowErrors: errors.map(\.error),
                                  rowWeightedErrors: importance == nil ? nil : errors.map(\.weighted_error),
                                  rowSignals: errors.map(\.signal))
    }
}

extension Optional {
    /// `body` on the array's buffer, or on nil.
    func withUnsafeBufferPointerIfPresent<Element, R>(_ body: (UnsafeBufferPointer<Element>?) -> R) -> R where Wrapped == [Element] {
        guard let self else { return body(nil) }
        return self.withUnsafeBufferPointer { body($0) }
    }
}
