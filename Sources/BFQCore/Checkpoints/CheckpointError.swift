/// Failures that concern a checkpoint as a whole rather than one format's bytes.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(path: String)
    case unsupportedOutputExtension(path: String, extensions: [String])
    case noTensorsMatch(path: String, prefix: String)
    case duplicateOutputName(path: String, tensor: String)
    case noUNetToRename(path: String)

    public var description: String {
        switch self {
        case let .unknownFormat(path):
            return "\(path): not a safetensors, PyTorch, GGUF or .bfq file (format not recognised from its first bytes)"
        case let .unsupportedOutputExtension(path, extensions):
            return "\(path): output extension must be " + extensions.dropLast().joined(separator: ", ") + " or " + (extensions.last ?? "")
        case let .noTensorsMatch(path, prefix):
            return "\(path): no tensor name starts with \"\(prefix)\""
        case let .duplicateOutputName(path, tensor):
            return "\(path): two tensors would both be written as \(tensor)"
        case let .noUNetToRename(path):
            return "\(path): --names given but no tensor has an SD UNet name (ldm or diffusers) to rename"
        }
    }
}
