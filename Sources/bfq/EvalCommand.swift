import ArgumentParser
import BFQCore

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure how far a candidate UNet's noise predictions are from a reference's.",
        discussion: """
        Both models (safetensors, .ckpt, GGUF or .bfq; see `bfq unet`) run on the same seeded inputs: standard-normal \
        latents, and encoder states that are standard normal or read from --encoder-states (encoder_hidden_states \
        [N,T,D], optionally uncond_hidden_states [1 or N,T,D]). SDXL-family UNets also get seeded standard-normal \
        pooled text embeddings and SDXL's default time_ids (1024, 1024, 0, 0, 1024, 1024; the refiner's 1024, 1024, \
        0, 0, 6), or text_embeds [N,P], uncond_text_embeds [1 or N,P] and time_ids [1 or N,K] from the \
        --encoder-states file. Each timestep runs the unconditional and conditional \
        states of every sample. Reported per timestep and overall, without guidance (the conditional prediction) and \
        with it (eps_u + w (eps_c - eps_u)): MSE, SQNR in dB, cosine similarity, and BitsFusion's latent-space error \
        (1 - abar_t) / abar_t x ||eps_ref - eps_cand||^2 per sample (SD's scaled-linear schedule). Default timesteps \
        are 981, 741, 501, 261, 21, or a spread of the timesteps a .bfq's time-feature cache holds. A model against \
        itself gives exactly zero error (SQNR inf; null in JSON).
        """
    )

    @Argument(help: "The reference UNet (e.g. the fp16 or fp32 original).")
    var reference: String

    @Argument(help: "The candidate UNet (e.g. a quantized .bfq).")
    var candidate: String

    @Option(help: "Latent/prompt samples per timestep (default 2, or the rows of --encoder-states).")
    var samples: Int?

    @Option(help: ArgumentHelp("Latent size.", valueName: "HxW"))
    var size: String = "32x32"

    @Option(help: ArgumentHelp("Comma-separated timesteps in 0...999.", valueName: "list"))
    var timesteps: String?

    @Option(help: "Seed of the latents and random encoder states.")
    var seed: UInt64 = 0

    @Option(help: "Tokens of the random encoder states.")
    var tokens: Int = 77

    @Option(help: "Classifier-free guidance scale.")
    var guidance: Float = 7.5

    @Option(help: ArgumentHelp("encoder_hidden_states (and uncond_hidden_states) to use instead of random ones.",
                               valueName: "file"))
    var encoderStates: String?

    @Option(help: ArgumentHelp("A diffusers UNet config.json for both models.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("A config.json for the reference only (overrides --config).", valueName: "file"))
    var referenceConfig: String?

    @Option(help: ArgumentHelp("A config.json for the candidate only (overrides --config).", valueName: "file"))
    var candidateConfig: String?

    @Flag(help: "Output JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            var options = EvaluationOptions()
            options.samples = samples
            (options.height, options.width) = try ArgumentParsing.size(size, option: "--size")
            options.timesteps = try timesteps.map { try ArgumentParsing.integers($0, option: "--timesteps") }
            options.seed = seed
            options.tokens = tokens
            guard guidance.isFinite else { throw ValidationError("--guidance must be a finite number") }
            options.guidanceScale = guidance
            options.encoderStates = encoderStates
            try MatrixKernels.require()
            let report = try NoiseEvaluation.run(reference: try LoadedUNet.open(reference, config: referenceConfig ?? config),
                                                 candidate: try LoadedUNet.open(candidate, config: candidateConfig ?? config),
                                                 options: options)
            print(json ? JSONWriter.pretty(report.json) : report.text)
        }
    }
}
