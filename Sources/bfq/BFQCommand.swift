import ArgumentParser
import BFQCore

@main
struct BFQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bfq",
        abstract: "Read, convert, inspect and quantize Stable Diffusion checkpoints (safetensors, PyTorch .ckpt, .bfq).",
        discussion: "Errors print one line naming the file and the rule broken and exit with status 2.",
        version: BFQVersion.string,
        subcommands: [InspectCommand.self, ConvertCommand.self, StatsCommand.self, DiffCommand.self, VerifyCommand.self,
                      PlanCommand.self, QuantizeCommand.self]
    )
}
