/// Why a timestep schedule could not be read, or a UNet's time features could not be computed.
public enum TimeFeatureCacheError: Error, Equatable, CustomStringConvertible {
    /// The schedule text is neither a step count, `spacing:N` nor a comma list.
    case scheduleSyntax(String)
    /// `name:N` with a name other than ddim, leading, trailing, linspace.
    case unknownSpacing(String)
    /// A step count outside 1...1000.
    case stepCountOutOfRange(Int)
    /// An element of a comma list that is not an integer.
    case notATimestep(String)
    /// A timestep outside 0...999; `source` says where it came from (the schedule text).
    case timestepOutOfRange(Int, source: String)
    case duplicateTimestep(Int)
    /// Timesteps handed to the cache that are empty or not strictly increasing (at `index`).
    case timestepsNotIncreasing(index: Int)
    /// No tensor has an SD UNet name (ldm or diffusers).
    case notUNet
    /// UNet tensors under several prefixes (for example `model.diffusion_model.` and bare names).
    case severalUNets(prefixes: [String])
    case missingTensor(String)
    case wrongShape(tensor: String, expected: String, found: [Int])
    case notFloatingPoint(tensor: String, dtype: DType)
    /// A computed feature is NaN or infinite (non-finite weights).
    case nonFiniteFeature(layer: String, timestep: Int)
    /// timesteps x total width exceeds what a features section may hold (spec/bfq.md section 6).
    case tooManyFeatures(timesteps: Int, width: Int)
    /// An SDXL-family UNet (`tensor` is its added-conditioning MLP): its time features depend on each image's
    /// text_embeds and time_ids, not on the timestep alone.
    case addedConditioning(tensor: String)

    public var description: String {
        switch self {
        case let .scheduleSyntax(text):
            return "timesteps '\(text)': expected a step count (50), ddim:N, leading:N, trailing:N, linspace:N "
                + "or a comma list (1,21,981)"
        case let .unknownSpacing(name):
            return "timesteps: unknown schedule '\(name)' (ddim, leading, trailing or linspace)"
        case let .stepCountOutOfRange(count):
            return "timesteps: \(count) steps, must be 1...\(TimestepSchedule.trainingSteps)"
        case let .notATimestep(text):
            return "timesteps: '\(text)' is not an integer timestep"
        case let .timestepOutOfRange(timestep, source):
            return "timesteps '\(source)': timestep \(timestep) is outside 0...\(TimestepSchedule.trainingSteps - 1)"
        case let .duplicateTimestep(timestep):
            return "timesteps: \(timestep) given twice"
        case let .timestepsNotIncreasing(index):
            return "timesteps: must be non-empty and strictly increasing (not at position \(index))"
        case .notUNet:
            return "no SD UNet tensors (ldm or diffusers names) to compute time features from"
        case let .severalUNets(prefixes):
            return "UNet tensors under several prefixes (" + prefixes.map { "'\($0)'" }.joined(separator: ", ") + ")"
        case let .missingTensor(name):
            return "time features need tensor \(name), which is missing"
        case let .wrongShape(tensor, expected, found):
            return "\(tensor): shape \(found), expected \(expected)"
        case let .notFloatingPoint(tensor, dtype):
            return "\(tensor): \(dtype.rawValue) is not a floating-point type"
        case let .nonFiniteFeature(layer, timestep):
            return "\(layer): time feature at timestep \(timestep) is not finite (NaN or Inf weights?)"
        case let .addedConditioning(tensor):
            return "time features cannot be cached for an SDXL-family UNet: \(tensor) adds text_embeds and time_ids to the time "
                + "embedding, so every time_emb_proj input changes with the image, not only with the timestep"
        case let .tooManyFeatures(timesteps, width):
            return "\(timesteps) timesteps x \(width) time features exceed the 4 GiB section limit"
        }
    }
}
