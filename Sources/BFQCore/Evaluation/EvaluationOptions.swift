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

    /// Checks the latent size (at least 1x1, at most `UNetInput.maximumImagePositions`, and with each batch of
    /// `images` per sample within `UNetInput.maximumPositions`) and the guidance scale.
    func validate(imagesPerSample: Int = 2, option: String = "--size") throws {
        let limit = UNetInput.maximumImagePositions
        guard (1 ... limit).contains(height), (1 ... limit).contains(width), height * width <= limit else {
            throw UNetError.invalidEvaluation("\(option) must be at least 1x1 and at most \(limit) positions (128x128), "
                + "found \(height)x\(width)")
        }
        let samples = self.samples ?? 2
        guard (1 ... 64).contains(samples), imagesPerSample * samples * height * width <= UNetInput.maximumPositions else {
            throw UNetError.invalidEvaluation("\(samples) samples of \(height)x\(width) latents exceed "
                + "\(UNetInput.maximumPositions) latent positions per batch (\(imagesPerSample) images per sample)")
        }
        guard guidanceScale.isFinite else { throw UNetError.invalidEvaluation("the guidance scale must be finite") }
    }
}
