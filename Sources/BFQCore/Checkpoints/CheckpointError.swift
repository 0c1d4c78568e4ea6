/// Failures that concern a checkpoint as a whole rather than one format's bytes.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(path: String)
    case unsupportedOutputExtension(path: String, extensions: [String])
    case noTensorsMatch(path: String, prefix: String)
    case duplicateOutputName(path: String, tensor: String)
    case noUNetToRename(path: String)
    case noComponent(path: String, component: String, found: [String])
    case nothingToKeep(path: String)
    case noEMA(path: String)
    case emaMissing(path: String, tensor: String, ema: String)
    case emaMismatch(path: String, tensor: String, ema: String, found: String, expected: String)

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
        case let .noComponent(path, component, found):
            return "\(path): no \(component) tensors; components found: "
                + (found.isEmpty ? "none" : found.joined(separator: ", "))
        case let .nothingToKeep(path):
            return "\(path): no tensor belongs to a UNet, VAE or text encoder; --prune would keep nothing"
        case let .noEMA(path):
            return "\(path): --ema given but the checkpoint has no EMA weights (model_ema.* beside a model.diffusion_model. UNet)"
        case let .emaMissing(path, tensor, ema):
            return "\(path): UNet tensor \(tensor) has no EMA copy \(ema)"
        case let .emaMismatch(path, tensor, ema, found, expected):
            return "\(path): EMA copy \(ema) is \(found), but \(tensor) is \(expected)"
        }
    }
}
