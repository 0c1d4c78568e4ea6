/// Why a JSON text was refused. Offsets count bytes from the start of the text.
public enum JSONError: Error, CustomStringConvertible, Equatable {
    case invalidUTF8
    case syntax(offset: Int, reason: String)
    case trailingCharacters(offset: Int)
    case duplicateKey(key: String, offset: Int)
    /// So many small values that the parsed tree would take more than `limit` bytes (see `JSONTreeCost`).
    case tooManyValues(textBytes: Int, estimate: Int, limit: Int)

    public var description: String {
        switch self {
        case .invalidUTF8: return "JSON is not valid UTF-8"
        case let .syntax(offset, reason): return "JSON syntax error at byte \(offset): \(reason)"
        case let .trailingCharacters(offset): return "JSON has trailing characters at byte \(offset)"
        case let .duplicateKey(key, offset): return "JSON key \"\(key)\" appears twice in one object (second at byte \(offset))"
        case let .tooManyValues(textBytes, estimate, limit):
            return "JSON text of \(textBytes) bytes holds so many values that parsing would take about \(estimate) bytes, over the limit of \(limit) (8 per byte of text + 64 MiB)"
        }
    }
}
