/// Why a GGUF file was refused or could not be written. Every description is one line naming the file, the field
/// (with its byte offset where it has one) and the rule broken.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    /// A header or metadata field at `offset` breaks `rule`.
    case malformed(path: String, offset: Int, field: String, rule: String)
    /// A tensor's declaration breaks `rule`.
    case badTensor(path: String, tensor: String, rule: String)
    /// A tensor of a ggml type bfq does not decode.
    case unsupportedType(path: String, tensor: String, type: String)
    /// Two metadata keys or two tensors with the same name.
    case duplicate(path: String, what: String, name: String)
    /// An output rule or type that cannot apply (writer).
    case cannotWrite(path: String, tensor: String, rule: String)
    /// An input the writer cannot express as GGUF at all.
    case cannotConvert(path: String, reason: String)
    /// A bad `--type` or `--tensor-type` option.
    case badOption(String)

    public var description: String {
        switch self {
        case let .malformed(path, offset, field, rule):
            return "\(path): GGUF \(field) at byte \(offset): \(rule)"
        case let .badTensor(path, tensor, rule):
            return "\(path): GGUF tensor \(tensor): \(rule)"
        case let .unsupportedType(path, tensor, type):
            return "\(path): GGUF tensor \(tensor): type \(type) is not supported (bfq decodes F32, F16, BF16, F64, I8-I64, "
                + "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K, TQ1_0, TQ2_0)"
        case let .duplicate(path, what, name):
            return "\(path): GGUF file declares two \(what) named \(name)"
        case let .cannotWrite(path, tensor, rule):
            return "\(path): tensor \(tensor): \(rule)"
        case let .cannotConvert(path, reason):
            return "\(path): \(reason)"
        case let .badOption(text):
            return text
        }
    }
}
