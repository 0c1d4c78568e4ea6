import ArgumentParser
import Foundation
import BFQCore

extension BitAllocator: ExpressibleByArgument {}
extension QuantizationOptions.Sensitivity: ExpressibleByArgument {}

/// The options `plan` and `quantize` share: the budget, where the plan comes from, and the time-feature cache.
struct PlanningOptions: ParsableArguments {
    @Option(help: "Target average bits per conv/linear weight (BitsFusion App. H accounting; default 1.99); the plan lands at most 0.01 below it.")
    var bits: Double?

    @Option(help: ArgumentHelp("Use a plan instead of allocating: bitsfusion-sd15 (the paper's 1.99-bit recipe), "
        + "uniform:B (every layer at B bits), or a plan file from `bfq plan`.", valueName: "plan"))
    var plan: String?

    @Option(help: "optimal (least sum of N^-eta x squared error, exact) or bitsfusion (the paper's threshold rule).")
    var allocator: BitAllocator = .optimal

    @Option(help: ArgumentHelp("Where each layer's distortion is measured: weight (D = ||W - Q(W)||^2) or output (the "
        + "squared change of the UNet's noise prediction on a seeded calibration set with only that layer quantized; its "
        + "input moments then weigh the quantization unless --importance is given)."))
    var sensitivity: QuantizationOptions.Sensitivity = .weight

    @Option(help: "Output sensitivity: latent/prompt samples per calibration timestep.")
    var calibrationSamples: Int = 2

    @Option(help: ArgumentHelp("Output sensitivity: calibration latent size.", valueName: "HxW"))
    var calibrationSize: String = "16x16"

    @Option(help: ArgumentHelp("Output sensitivity: calibration timesteps.", valueName: "list"))
    var calibrationTimesteps: String = "981,501,21"

    @Option(help: ArgumentHelp("Output sensitivity: a diffusers UNet config.json (default: beside the input, else from the weights).",
                               valueName: "file"))
    var unetConfig: String?

    @Option(help: ArgumentHelp("Output sensitivity: save the recorded input moments as an importance file (for --importance).",
                               valueName: "file"))
    var saveImportance: String?

    @Option(help: "Size exponent of the sensitivity N^-eta.")
    var eta: Double = 0.3

    @Option(help: ArgumentHelp("Cache the time features for these timesteps and drop the time-embedding weights: N "
        + "(SD-v1.5's N-step schedule), ddim:N, leading:N, trailing:N, linspace:N, or a list such as 1,501,981 (one "
        + "timestep: 500,).",
        valueName: "timesteps"))
    var cacheTimesteps: String?

    @Option(help: ArgumentHelp("Weigh each weight's squared error by its input channel's importance: a checkpoint with, per "
        + "layer, a 1-D tensor named by the diffusers layer name (one value per input channel or per column).", valueName: "file"))
    var importance: String?

    @Flag(help: "Allow only grids with one scale per row (no lookup-table candidates).")
    var noPalettes = false

    @Option(help: ArgumentHelp("Also measure grids with a scale per SIZE weights of a row (32...256) at 1 to 4 bits.",
                               valueName: "size"))
    var groupCandidates: Int?

    @Option(help: ArgumentHelp("Quantize only tensors whose name starts with PREFIX; the others are dropped.", valueName: "prefix"))
    var only: String?

    func options() throws -> QuantizationOptions {
        var options = QuantizationOptions()
        if plan != nil, bits != nil {
            throw QuantizationError.invalidOption("--bits and --plan exclude each other: a plan fixes every layer's bits")
        }
        options.bits = bits ?? options.bits
        options.plan = plan
        options.allocator = allocator
        options.sensitivity = sensitivity
        options.eta = eta
        options.cacheTimesteps = try cacheTimesteps.map(TimestepSchedule.parse)
        if noPalettes { options.candidates.removeAll { $0.kind == .palette } }
        if let size = groupCandidates {
            guard QuantizedValues.groupSizes.contains(size) else {
                throw QuantizationError.invalidOption("--group-candidates must be 32...256, not \(size)")
            }
            options.candidates += (1 ... 4).map { LayerChoice.grid($0, groupSize: size) }
        }
        // Checked whether or not they are used, so a mistyped value never passes silently.
        guard (1 ... 64).contains(calibrationSamples) else { throw ValidationError("--calibration-samples must be 1...64") }
        options.calibration.samples = calibrationSamples
        (options.calibration.height, options.calibration.width) = try ArgumentParsing.size(calibrationSize, option: "--calibration-size")
        options.calibration.timesteps = try ArgumentParsing.integers(calibrationTimesteps, option: "--calibration-timesteps")
        options.unetConfig = unetConfig
        if sensitivity != .output, saveImportance != nil || unetConfig != nil {
            throw ValidationError("--save-importance and --unet-config need --sensitivity output")
        }
        options.only = only
        options.importance = importance
        return options
    }

    /// Files these options read besides the model: importance, UNet config, a plan file.
    var inputFiles: [String] {
        [importance, unetConfig, plan].compactMap { $0 }.filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// Writes the moments the calibration pass recorded to --save-importance (its target in `targets`), when asked.
    func saveImportance(of quantizer: ModelQuantizer, to targets: [String: OutputTarget]) throws {
        guard let path = saveImportance, let recorded = quantizer.recordedImportance, let target = targets[path] else { return }
        try recorded.write(to: target)
    }
}
