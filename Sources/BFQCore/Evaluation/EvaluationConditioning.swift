/// The seeded latents and the encoder states (conditional and unconditional) of an evaluation, and for SDXL-family
/// UNets the pooled text embeddings (conditional and unconditional) and the micro-conditioning ids.
struct EvaluationConditioning {
    let samples: Int
    let tokens: Int
    let width: Int
    /// [sample][channels][height][width]
    let latents: [Float]
    /// [sample][token][width]
    let conditional: [Float]
    let unconditional: [Float]
    /// SDXL: `text_embeds` [sample][textWidth], conditional and unconditional, and `time_ids` [sample][timeIdCount].
    var textWidth = 0
    var conditionalText: [Float] = []
    var unconditionalText: [Float] = []
    var timeIdCount = 0
    var timeIds: [Float] = []

    /// - Parameter config: the UNet's configuration (cross-attention width, latent channels, added conditioning).
    init(_ options: EvaluationOptions, config: UNetConfig, generator: inout SeededGenerator) throws {
        let (width, channels) = (config.crossAttentionDim, config.inChannels)
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
        if let textTime = config.textTime { try addTextTime(textTime, config: config, options: options, generator: &generator) }
    }

    /// SDXL's added conditioning: `text_embeds` (and `uncond_text_embeds`) and `time_ids` from the --encoder-states
    /// file when it holds them, else seeded standard-normal text embeddings and SDXL's default ids for 1024x1024
    /// (the refiner's, with aesthetic score 6, for four-level UNets).
    private mutating func addTextTime(_ textTime: TextTimeConditioning, config: UNetConfig, options: EvaluationOptions,
                                      generator: inout SeededGenerator) throws {
        let file = try options.encoderStates.map { try Self.readAdded($0, samples: samples) }
        let ids = file?.timeIds ?? (config.blockCount == 4 ? TextTimeConditioning.defaultRefinerTimeIds(pixels: 1024)
                                                           : TextTimeConditioning.defaultTimeIds(pixels: 1024))
        timeIdCount = file?.timeIdCount ?? ids.count
        // File rows are already one per sample; the default is one row for all.
        timeIds = file?.timeIds != nil ? ids : Array(repeatElement(ids, count: samples).joined())
        guard let textWidth = textTime.textWidth(timeIds: timeIdCount) else {
            throw UNetError.invalidEvaluation("\(timeIdCount) time ids of width \(textTime.timeWidth) leave no room for text_embeds "
                + "in the UNet's \(textTime.inputWidth)-wide added conditioning")
        }
        self.textWidth = textWidth
        if let file, let text = file.text {
            guard file.textWidth == textWidth else {
                throw UNetError.inputMismatch(path: options.encoderStates!, tensor: "text_embeds",
                                              expected: "[\(samples), \(textWidth)] for \(timeIdCount) time ids", found: "[\(samples), \(file.textWidth)]")
            }
            conditionalText = text
            unconditionalText = file.unconditionalText ?? generator.gaussians(samples * textWidth)
        } else {
            conditionalText = generator.gaussians(samples * textWidth)
            unconditionalText = generator.gaussians(samples * textWidth)
        }
    }

    /// `text_embeds` [N,P], `uncond_text_embeds` [1 or N,P] and `time_ids` [1 or N,K], each optional, from a file.
    private static func readAdded(_ path: String, samples: Int) throws
        -> (text: [Float]?, textWidth: Int, unconditionalText: [Float]?, timeIds: [Float]?, timeIdCount: Int) {
        let checkpoint = try CheckpointFile.open(path)
        func rows(_ name: String, all: Bool) throws -> (values: [Float], width: Int)? {
            guard let entry = checkpoint.tensors.first(where: { $0.name == name }) else { return nil }
            let counts = all ? [samples] : [1, samples]
            guard entry.shape.count == 2, counts.contains(entry.shape[0]), (1 ... UNetInput.maximumAddedWidth).contains(entry.shape[1]),
                  entry.dtype.isFloatingPoint else {
                throw UNetError.inputMismatch(path: path, tensor: name, expected: "floating-point [\(all ? "" : "1 or ")\(samples), width]",
                                              found: "\(entry.dtype.rawValue) \(entry.shape)")
            }
            let values = try checkpoint.floats(of: entry)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw UNetError.nonFiniteInput(path: path, tensor: name, index: bad) }
            let width = entry.shape[1]
            return (entry.shape[0] == samples ? values : Array(repeatElement(values, count: samples).joined()), width)
        }
        let text = try rows("text_embeds", all: true), ids = try rows("time_ids", all: false)
        let unconditional = try rows("uncond_text_embeds", all: false)
        if let unconditional, unconditional.width != text?.width {
            throw UNetError.inputMismatch(path: path, tensor: "uncond_text_embeds", expected: "the width of text_embeds",
                                          found: "width \(unconditional.width)")
        }
        return (text?.values, text?.width ?? 0, unconditional?.values, ids?.values, ids?.width ?? 0)
    }

    /// One batch: every sample's latents with the unconditional states, then with the conditional ones.
    func input(timestep: Int, channels: Int, height: Int, width imageWidth: Int) -> UNetInput {
        var input = UNetInput(sample: latents + latents, batch: 2 * samples, channels: channels, height: height, width: imageWidth,
                              timesteps: Array(repeating: Float(timestep), count: 2 * samples), encoder: unconditional + conditional,
                              tokens: tokens, encoderWidth: width, source: "evaluation input")
        if textWidth > 0 {
            input.condition(textEmbeds: unconditionalText + conditionalText, textWidth: textWidth, timeIds: timeIds + timeIds,
                            timeIdCount: timeIdCount)
        }
        return input
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
