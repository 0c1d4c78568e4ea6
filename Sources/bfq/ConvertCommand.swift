import ArgumentParser
import BFQCore

extension TargetDType: ExpressibleByArgument {}
extension NamingScheme: ExpressibleByArgument {}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint; the output format comes from OUT's extension.",
        discussion: """
        .safetensors writes safetensors; .ckpt, .pt, .pth and .bin write a PyTorch zip checkpoint that \
        torch.load(weights_only=True) opens. The output is written to a temporary file and renamed into place \
        when complete; the input is never overwritten. Integer and boolean tensors keep their type whatever --dtype says.
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Argument(help: "Output path (.safetensors, .ckpt, .pt, .pth, .bin).")
    var output: String

    @Option(help: "Element type of floating-point tensors: keep, f32, f16 or bf16.")
    var dtype: TargetDType = .keep

    @Option(help: "Rename the SD UNet's tensors to this scheme: ldm or diffusers.")
    var names: NamingScheme?

    @Option(help: ArgumentHelp("Keep only tensors whose name starts with PREFIX (e.g. model.diffusion_model.).",
                               valueName: "prefix"))
    var only: String?

    @Flag(inversion: .prefixedNo,
          help: "Sync the output to disk before renaming it into place, so it survives power loss too (default on).")
    var fsync = true

    func run() throws {
        try reportingErrors {
            let checkpoint = try CheckpointFile.open(input)
            for warning in checkpoint.warnings { printError("bfq: warning: \(warning)") }
            let plan = try ConversionPlan(checkpoint, options: ConversionOptions(dtype: dtype, names: names, only: only),
                                          outputPath: output)
            try plan.write(to: output, durable: fsync)
        }
    }
}
