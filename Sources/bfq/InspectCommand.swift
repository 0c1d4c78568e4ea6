import ArgumentParser
import BFQCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a checkpoint's format, tensors, parameters, dtypes, metadata, naming scheme and model."
    )

    @Argument(help: "A safetensors, PyTorch (.ckpt/.pt/.pth/.bin), GGUF or .bfq file; the format is read from the content.")
    var file: String

    @Flag(help: "Print a JSON object (format, metadata, tensors as {name, dtype, shape, bytes}, ...).")
    var json = false

    @Flag(name: .long, help: "Also list every tensor (text output).")
    var tensors = false

    func run() throws {
        try reportingErrors {
            let checkpoint = try CheckpointFile.open(file)
            let summary = CheckpointSummary(checkpoint)
            if json {
                print(JSONWriter.pretty(summary.json))
            } else {
                for warning in summary.warnings { printError("bfq: warning: \(warning)") }
                print(summary.text(listTensors: tensors))
            }
        }
    }
}
