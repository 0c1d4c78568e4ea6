/// Why a safetensors file was refused. Every description is one line naming the file and the rule broken.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case fileTooSmall(path: String, size: Int)
    case headerTooLarge(path: String, declared: UInt64, limit: Int)
    case headerPastEnd(path: String, declared: UInt64, fileSize: Int)
    case headerNotObject(path: String)
    case headerJSON(path: String, JSONError)
    case reservedName(path: String)
    case metadataNotStrings(path: String, key: String)
    case entryNotObject(path: String, tensor: String)
    case missingField(path: String, tensor: String, field: String)
    case badField(path: String, tensor: String, field: String, rule: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case sizeOverflow(path: String, tensor: String)
    case byteLengthMismatch(path: String, tensor: String, expected: Int, declared: Int)
    case misplacedTensor(path: String, tensor: String, begin: Int, expected: Int)
    case dataSizeMismatch(path: String, tensorsEnd: Int, dataSize: Int)
    case duplicateTensor(path: String, tensor: String)
    case metadataKeysEquivalent(path: String, key: String)

    public var description: String {
        switch self {
        case let .fileTooSmall(path, size):
            return "\(path): \(size) bytes is too small for a safetensors file (needs at least the 8-byte header length)"
        case let .headerTooLarge(path, declared, limit):
            return "\(path): header length \(declared) exceeds the limit of \(limit) bytes"
        case let .headerPastEnd(path, declared, size):
            return "\(path): header length \(declared) runs past the end of the \(size)-byte file"
        case let .headerNotObject(path):
            return "\(path): header does not start with '{' (not a JSON object)"
        case let .headerJSON(path, error):
            return "\(path): header (from byte 8): \(error)"
        case let .reservedName(path):
            return "\(path): a tensor is named __metadata__, which safetensors reserves for metadata"
        case let .metadataNotStrings(path, key):
            return "\(path): __metadata__ value for \"\(key)\" is not a string"
        case let .entryNotObject(path, tensor):
            return "\(path): tensor \(tensor): header entry is not an object"
        case let .missingField(path, tensor, field):
            return "\(path): tensor \(tensor): header entry has no \"\(field)\""
        case let .badField(path, tensor, field, rule):
            return "\(path): tensor \(tensor): \"\(field)\" \(rule)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor \(tensor): unsupported dtype \"\(dtype)\""
        case let .sizeOverflow(path, tensor):
            return "\(path): tensor \(tensor): shape times element size overflows"
        case let .byteLengthMismatch(path, tensor, expected, declared):
            return "\(path): tensor \(tensor): data_offsets span \(declared) bytes but dtype and shape need \(expected)"
        case let .misplacedTensor(path, tensor, begin, expected):
            return "\(path): tensor \(tensor): data starts at offset \(begin) but the previous tensor ends at \(expected) (hole or overlap)"
        case let .dataSizeMismatch(path, end, size):
            return "\(path): tensors end at data offset \(end) but the data buffer holds \(size) bytes"
        case let .metadataKeysEquivalent(path, key):
            return "\(path): two __metadata__ keys \"\(key)\" differ only in Unicode normalisation"
        case let .duplicateTensor(path, tensor):
            return "\(path): two tensors are named \(tensor)"
        }
    }
}
