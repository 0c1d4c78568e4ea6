import ArgumentParser
import BFQCore

struct UNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "Run an SD UNet on the CPU: noise prediction for the latents, timesteps and encoder states given.",
        discussion: """
        MODEL is an SD 1.x/2.x UNet in safetensors, .ckpt or .bfq (ldm or diffusers names, alone or in a full \
        checkpoint); a .bfq's quantized weights are decoded layer by layer through the lookup-table dequantizer and its \
        time-feature cache replaces the time embedding (timesteps must then be cached ones). The configuration comes \
        from --config, else a diffusers config.json of UNet2DConditionModel beside MODEL, else the weights (SD's 32 \
        GroupNorm groups). IN holds sample [B,4,H,W], timestep [B] (or one for all; float or integer) and \
        encoder_hidden_states [B,T,D]; OUT (safetensors or .ckpt, written atomically) holds noise_pred [B,4,H,W] f32.
        """
    )

    @Argument(help: "The UNet weights.")
    var model: String

    @Option(help: "The input file (sample, timestep, encoder_hidden_states).")
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
