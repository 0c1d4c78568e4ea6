import ArgumentParser
import BFQCore

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize an SD or SDXL UNet (safetensors, .ckpt, GGUF, full checkpoints, either naming) into a .bfq.",
        discussion: """
        Every conv and linear weight of the UNet goes on a balanced per-channel grid (or a per-row lookup table) at \
        the bits the plan gives it; conv_in and conv_out at 8 bits; 1-D tensors and non-UNet parts are kept. Without \
        --plan, every layer is quantized at every candidate and the bits are allocated to meet --bits exactly. Each \
        layer is then rounded by GPTQ with its inputs on the calibration set, layers in the order the UNet runs them \
        (--rounding nearest skips the UNet run). \
        Prints a per-tensor report (or --json). The output is written to a temporary file and renamed into place.
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Argument(help: "Output .bfq file.")
    var output: String

    @OptionGroup var planning: PlanningOptions

    @OptionGroup var roundingOptions: RoundingOptions

    @Option(help: "Rename the UNet's tensors in the output: ldm or diffusers.")
    var names: NamingScheme?

    @Option(help: "Element type of kept floating-point tensors: keep, f32, f16 or bf16.")
    var keptDtype: TargetDType = .f16

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(inversion: .prefixedNo, help: "Sync the output to disk before renaming it into place (default on).")
    var fsync = true

    func run() throws {
        try reportingErrors {
            guard output.hasSuffix(".bfq") else { throw QuantizationError.invalidOption("\(output): the output of quantize must be a .bfq file") }
            var options = roundingOptions.apply(to: try planning.options(calibratesRounding: roundingOptions.calibrates))
            options.names = names
            options.keptType = keptDtype
            let targets = try OutputChecks.targets([output] + planning.outputFiles, inputs: [input] + planning.inputFiles,
                                                   durable: fsync)
            if options.sensitivity.isOutput || options.calibratesRounding { try MatrixKernels.require() }
            let checkpoint = try CheckpointFile.open(input)
            for warning in checkpoint.warnings { printError("bfq: warning: \(warning)") }
            let quantizer = try ModelQuantizer(checkpoint, options: options)
            for warning in quantizer.warnings { printError("bfq: warning: \(warning)") }
            let progress = ProgressBar()
            let plan = try quantizer.makePlan(progress: progress.update)
            try planning.saveImportance(of: quantizer, to: targets)
            try planning.saveMeasurements(of: quantizer, to: targets)
            let warned = quantizer.warnings.count
            let report: QuantizationReport
            do {
                report = try quantizer.write(plan: plan, to: targets[output]!, progress: progress.update)
            } catch QuantizationError.nothingToRound {
                throw UsageError(QuantizationError.nothingToRound.description)
            }
            progress.finish()
            for warning in quantizer.warnings.dropFirst(warned) { printError("bfq: warning: \(warning)") }
            print(json ? JSONWriter.pretty(report.json) : report.text)
        }
    }
}
