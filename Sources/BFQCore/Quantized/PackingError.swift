/// Why codes could not be packed, unpacked or dequantized. Every description is one line naming the rule broken.
public enum PackingError: Error, CustomStringConvertible, Equatable {
    case levelsOutOfRange(Int)
    case notAGrid(levels: Int)
    case shapeInvalid(rows: Int, columns: Int)
    case codeCountMismatch(expected: Int, found: Int)
    case codeOutOfRange(row: Int, column: Int, code: Int, levels: Int)
    case packedSizeMismatch(expected: Int, found: Int)
    case invalidGroup(row: Int, group: Int, value: Int, limit: Int)
    case nonzeroPadding(row: Int)
    case groupSizeOutOfRange(Int)
    case scaleCountMismatch(expected: Int, found: Int)
    case offsetCountMismatch(expected: Int, found: Int)
    case paletteCountMismatch(expected: Int, found: Int)
    case outputSizeMismatch(expected: Int, found: Int)
    case unsupportedOutput(DType)

    public var description: String {
        switch self {
        case let .levelsOutOfRange(levels):
            return "level count \(levels) is outside \(CodeLayout.levelRange.lowerBound)...\(CodeLayout.levelRange.upperBound)"
        case let .notAGrid(levels):
            return "level count \(levels) is not a grid's (2^b + 1 balanced or 2^b plain, b = 1...8)"
        case let .shapeInvalid(rows, columns):
            return "\(rows) rows of \(columns) codes is negative or overflows"
        case let .codeCountMismatch(expected, found):
            return "\(found) codes given for \(expected) (rows x columns)"
        case let .codeOutOfRange(row, column, code, levels):
            return "row \(row), column \(column): code \(code) is not below the level count \(levels)"
        case let .packedSizeMismatch(expected, found):
            return "packed codes are \(found) bytes but rows x row bytes is \(expected)"
        case let .invalidGroup(row, group, value, limit):
            return "row \(row), group \(group): value \(value) is not below L^G = \(limit)"
        case let .nonzeroPadding(row):
            return "row \(row): padding after the last code is not zero"
        case let .groupSizeOutOfRange(size):
            let sizes = QuantizedValues.groupSizes
            return "group size \(size) is outside \(sizes.lowerBound)...\(sizes.upperBound)"
        case let .scaleCountMismatch(expected, found):
            return "\(found) scales given where the shape and group size need \(expected)"
        case let .offsetCountMismatch(expected, found):
            return "\(found) offsets given for \(expected) rows"
        case let .paletteCountMismatch(expected, found):
            return "\(found) palette values given where \(expected) are needed"
        case let .outputSizeMismatch(expected, found):
            return "output buffer holds \(found) bytes but the decoded tensor needs \(expected)"
        case let .unsupportedOutput(dtype):
            return "cannot decode to \(dtype.rawValue): only F32 and F16"
        }
    }
}
