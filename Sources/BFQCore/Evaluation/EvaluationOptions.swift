/// What `NoiseEvaluation` runs: seeded latents and encoder states, timesteps, and the guidance scale.
public struct EvaluationOptions: Sendable {
    /// Latent/prompt pairs per timestep (nil: 2, or the rows of `encoderStates`).
    public var samples: Int?
    public var height = 32
    public var width = 32
    /// Timesteps to evaluate (nil: `defaultTimesteps`, or a spread of the models' cached timesteps).
    public var timesteps: [Int]?
    public var seed: UInt64 = 0
    /// Tokens of the random encoder states.
    public var tokens = 77
    /// Classifier-free guidance scale w: guided = eps_uncond + w (eps_cond - eps_uncond).
    public var guidanceScale: Float = 7.5
    /// A file with `encoder_hidden_states` [N,T,D] and optionally `uncond_hidden_states` [1 or N,T,D]; nil: random.
    public var encoderStates: String?

    /// A spread over SD's 50-step schedule (1, 21, ..., 981), from the most noisy to the least.
    public static let defaultTimesteps = [981, 741, 501, 261, 21]

    public init() {}

    /// Checks the latent size (at least 1x1, at most `UNetInput.maximumImagePositions`) and the guidance scale.
    func validate() throws {
        guard height > 0, width > 0, height * width <= UNetInput.maximumImagePositions else {
            throw UNetError.invalidEvaluation("latent size must be at least 1x1 and at most 16384 positions (128x128), "
                + "found \(height)x\(width)")
        }
        guard guidanceScale.isFinite else { throw UNetError.invalidEvaluation("the guidance scale must be finite") }
    }
}
