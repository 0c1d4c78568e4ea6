/// The seeded latents and the encoder states (conditional and unconditional) of an evaluation.
struct EvaluationConditioning {
    let samples: Int
    let tokens: Int
    let width: Int
    /// [sample][channels][height][width]
    let latents: [Float]
    /// [sample][token][width]
    let conditional: [Float]
    let unconditional: [Float]

    init(_ options: EvaluationOptions, width: Int, channels: Int, generator: inout SeededGenerator) throws {
        self.width = width
        if let path = options.encoderStates {
            let states = try Self.read(path, width: width)
            if let samples = options.samples, samples != states.samples {
                throw UNetError.invalidEvaluation("--samples \(samples) differs from the \(states.samples) rows of \(path)")
            }
            samples = states.samples
            tokens = states.tokens
            latents = generator.gaussians(samples * channels * options.height * options.width)
            conditional = states.conditional
            unconditional = states.unconditional ?? generator.gaussians(samples * tokens * width)
        } else {
            samples = options.samples ?? 2
            tokens = options.tokens
            guard (1 ... 64).contains(samples), (1 ... 4096).contains(tokens) else {
                throw UNetError.invalidEvaluation("--samples must be 1...64 and --tokens 1...4096")
            }
            latents = generator.gaussians(samples * channels * options.height * options.width)
            conditional = generator.gaussians(samples * tokens * width)
            unconditional = generator.gaussians(samples * tokens * width)
        }
    }

    /// One batch: every sample's latents with the unconditional states, then with the conditional ones.
    func input(timestep: Int, channels: Int, height: Int, width imageWidth: Int) -> UNetInput {
        UNetInput(sample: latents + latents, batch: 2 * samples, channels: channels, height: height, width: imageWidth,
                  timesteps: Array(repeating: Float(timestep), count: 2 * samples), encoder: unconditional + conditional,
                  tokens: tokens, encoderWidth: width, source: "evaluation input")
    }

    /// `encoder_hidden_states` [N,T,D] and optional `uncond_hidden_states` [1 or N,T,D] from a checkpoint file.
    private static func read(_ path: String, width: Int) throws
        -> (samples: Int, tokens: Int, conditional: [Float], unconditional: [Float]?) {
        let checkpoint = try CheckpointFile.open(path)
        func states(_ name: String) throws -> (TensorEntry, [Float])? {
            guard let entry = checkpoint.tensors.first(where: { $0.name == name }) else { return nil }
            guard entry.shape.count == 3, entry.shape[2] == width, (1 ... 64).contains(entry.shape[0]),
                  (1 ... UNetInput.maximumTokens).contains(entry.shape[1]), entry.dtype.isFloatingPoint else {
                throw UNetError.inputMismatch(path: path, tensor: name, expected: "floating-point [1 to 64 samples, "
                                              + "1 to \(UNetInput.maximumTokens) tokens, \(width)]",
                                              found: "\(entry.dtype.rawValue) \(entry.shape)")
            }
            let values = try checkpoint.floats(of: entry)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw UNetError.nonFiniteInput(path: path, tensor: name, index: bad) }
            return (entry, values)
        }
        guard let (entry, conditional) = try states("encoder_hidden_states") else {
            throw UNetError.inputMismatch(path: path, tensor: "encoder_hidden_states", expected: "a tensor", found: "none")
        }
        let (samples, tokens) = (entry.shape[0], entry.shape[1])
        guard let (uncondEntry, uncond) = try states("uncond_hidden_states") else { return (samples, tokens, conditional, nil) }
        guard uncondEntry.shape[1] == tokens, [1, samples].contains(uncondEntry.shape[0]) else {
            throw UNetError.inputMismatch(path: path, tensor: "uncond_hidden_states", expected: "[1 or \(samples), \(tokens), \(width)]",
                                          found: "\(uncondEntry.shape)")
        }
        let unconditional = uncondEntry.shape[0] == samples ? uncond : Array((0 ..< samples).map { _ in uncond }.joined())
        return (samples, tokens, conditional, unconditional)
    }
}
