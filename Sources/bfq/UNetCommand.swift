import ArgumentParser
import BFQCore

struct UNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "Run an SD or SDXL UNet on the CPU: noise prediction for the latents, timesteps and encoder states given.",
        discussion: """
        MODEL is an SD 1.x/2.x or SDXL-family UNet (SDXL base, refiner, Turbo, SSD-1B, Vega) in safetensors, .ckpt, \
        GGUF or .bfq (ldm/sgm or diffusers names, alone or in a full checkpoint); a .bfq's quantized weights are \
        decoded layer by layer through the lookup-table dequantizer (a GGUF file's through its block decoders) and a \
        .bfq's time-feature cache replaces the time embedding \
        (timesteps must then be cached ones). The configuration comes from --config, else a diffusers config.json of \
        UNet2DConditionModel beside MODEL, else the weights (32 GroupNorm groups; SD 1.x's 8 heads, or heads of width \
        64 for SD 2.x and SDXL; SDXL's 256-wide time-id sinusoids); every tensor of MODEL must be one the \
        configuration reads. IN holds sample [B,4,H,W], timestep [B] (or one for all; float or integer) and \
        encoder_hidden_states [B,T,D], and for SDXL-family UNets text_embeds [B,P] (the pooled text embedding) and \
        time_ids [B,6] (original size, crop, target size; the refiner's [B,5] ends with the aesthetic score); OUT \
        (safetensors or .ckpt, written atomically) holds noise_pred [B,4,H,W] f32.
        """
    )

    @Argument(help: "The UNet weights.")
    var model: String

    @Option(help: "The input file (sample, timestep, encoder_hidden_states; text_embeds, time_ids for SDXL).")
    var input: String

    @Option(help: "The output file for noise_pred.")
    var output: String

    @Option(help: ArgumentHelp("A diffusers UNet config.json.", valueName: "file"))
    var config: String?

    @Flag(inversion: .prefixedNo,
          help: "Sync the output to disk before renaming it into place (default on).")
    var fsync = true

    func run() throws {
        try reportingErrors {
            _ = try CheckpointFile.writer(for: output)
            try MatrixKernels.require()
            let target = try OutputChecks.targets([output], inputs: [model, input, config], durable: fsync)[output]!
            let unet = try LoadedUNet.open(model, config: config, resident: false)
            let input = try UNetInput.load(input)
            let prediction = try unet.predict(input)
            let shape = [input.batch, unet.model.config.outChannels, input.height, input.width]
            try FloatTensors([("noise_pred", shape, prediction)]).write(to: target)
        }
    }
}
