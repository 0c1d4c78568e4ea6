/// Why a UNet could not be configured, loaded or run.
public enum UNetError: Error, Equatable, CustomStringConvertible {
    /// A config.json key whose value bfq does not support or cannot read.
    case unsupportedConfig(path: String, key: String, reason: String)
    /// The weights do not describe an SD UNet bfq can run.
    case notAUNet(path: String, reason: String)
    /// A tensor the configuration needs is absent (diffusers name, and the name it would have in the file).
    case missingTensor(path: String, name: String, fileName: String)
    /// A weight whose shape or element type differs from what the configuration needs.
    case weightMismatch(path: String, name: String, expected: String, found: String)
    /// An input tensor of the wrong shape or type.
    case inputMismatch(path: String, tensor: String, expected: String, found: String)
    /// An input tensor holding NaN or infinity.
    case nonFiniteInput(path: String, tensor: String, index: Int)
    /// A timestep the model's time-feature cache does not hold (a .bfq with the time embedding replaced).
    case timestepNotCached(path: String, timestep: Float, cached: [Int])
    /// Two file tensors that name the same UNet weight.
    case ambiguousTensor(path: String, first: String, second: String)
    /// A UNet tensor the configuration never reads (the weights describe another architecture).
    case unreadTensor(path: String, name: String)
    /// The forward pass produced NaN or infinity.
    case nonFiniteOutput(path: String, index: Int)
    /// Evaluation options that cannot be met.
    case invalidEvaluation(String)

    public var description: String {
        switch self {
        case let .unsupportedConfig(path, key, reason):
            return "\(path): config \"\(key)\": \(reason)"
        case let .notAUNet(path, reason):
            return "\(path): not an SD UNet bfq can run: \(reason)"
        case let .missingTensor(path, name, fileName):
            return fileName == name ? "\(path): tensor \(name) is missing"
                : "\(path): tensor \(fileName) (diffusers \(name)) is missing"
        case let .weightMismatch(path, name, expected, found):
            return "\(path): tensor \(name): expected \(expected), found \(found)"
        case let .inputMismatch(path, tensor, expected, found):
            return "\(path): input \(tensor): expected \(expected), found \(found)"
        case let .nonFiniteInput(path, tensor, index):
            return "\(path): input \(tensor): element \(index) is not finite in f32"
        case let .timestepNotCached(path, timestep, cached):
            let list = cached.count <= 8 ? cached.map(String.init).joined(separator: ", ")
                : "\(cached.count) timesteps \(cached.first!)...\(cached.last!)"
            return "\(path): timestep \(Formatting.general(Double(timestep))) is not in the file's time-feature cache "
                + "(\(list)); the time embedding was replaced by the cache when quantizing"
        case let .ambiguousTensor(path, first, second):
            return "\(path): tensors \(first) and \(second) are the same UNet weight"
        case let .unreadTensor(path, name):
            return "\(path): tensor \(name) is not part of the configured UNet (the weights and the configuration disagree)"
        case let .nonFiniteOutput(path, index):
            return "\(path): noise prediction element \(index) is not finite (the weights or inputs overflow f32)"
        case let .invalidEvaluation(reason):
            return reason
        }
    }
}
