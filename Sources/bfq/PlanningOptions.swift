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

    @Option(help: ArgumentHelp("Where each layer's distortion is measured: weight (default; D = ||W - Q(W)||^2), output "
        + "(the squared change of the UNet's noise prediction on a seeded calibration set with only that layer quantized, "
        + "predicted from a few reruns per layer; its input moments then weigh the quantization unless --importance is "
        + "given), or output-exhaustive (the UNet rerun for every candidate of every layer: slow, for checking)."))
    var sensitivity: QuantizationOptions.Sensitivity?

    @Option(help: "Output sensitivity and calibrated rounding: latent/prompt samples per calibration timestep (default 2).")
    var calibrationSamples: Int?

    @Option(help: ArgumentHelp("Output sensitivity and calibrated rounding: calibration latent size (default 16x16).", valueName: "HxW"))
    var calibrationSize: String?

    @Option(help: ArgumentHelp("Output sensitivity and calibrated rounding: calibration timesteps (default 981,501,21).", valueName: "list"))
    var calibrationTimesteps: String?

    @Option(help: ArgumentHelp("Allocate from a file of measurements (--save-measurements) instead of measuring: any "
        + "--bits, --eta or --allocator, in seconds.", valueName: "file"))
    var measurements: String?

    @Option(help: ArgumentHelp("Save what was measured (every layer's distortion per candidate, the calibration settings "
        + "and importance weights) for --measurements.", valueName: "file"))
    var saveMeasurements: String?

    @Option(help: ArgumentHelp("Output sensitivity and calibrated rounding: a diffusers UNet config.json (default: beside the input, else from the weights).",
                               valueName: "file"))
    var unetConfig: String?

    @Option(help: ArgumentHelp("Output sensitivity: save the recorded input moments as an importance file (for --importance).",
                               valueName: "file"))
    var saveImportance: String?

    @Option(help: "Size exponent of the sensitivity N^-eta (default 0.3 as the paper; 0 with output sensitivity and the optimal allocator).")
    var eta: Double?

    @Option(help: ArgumentHelp("Cache the time features for these timesteps and drop the time-embedding weights: N "
        + "(SD-v1.5's N-step schedule), ddim:N, leading:N, trailing:N, linspace:N, or a list such as 1,501,981 (one "
        + "timestep: 500,). SD 1.x/2.x only: an SDXL-family UNet's time features depend on text_embeds and time_ids.",
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

    @Option(help: ArgumentHelp("Keep only one component (unet, vae, text_encoder, text_encoder_2, or a diffusers pipeline's "
                               + "component) or the tensors whose name starts with PREFIX; the others are dropped.",
                               valueName: "component|prefix"))
    var only: String?

    /// The options; `calibratesRounding` when quantizing runs the calibration set through the UNet (GPTQ rounding or
    /// bias correction), which makes the calibration options and --unet-config meaningful without output sensitivity.
    func options(calibratesRounding: Bool = false) throws -> QuantizationOptions {
        var options = QuantizationOptions()
        if plan != nil, saveMeasurements != nil {
            throw ValidationError("--plan and --save-measurements exclude each other: a plan measures nothing")
        }
        if plan != nil, bits != nil {
            throw QuantizationError.invalidOption("--bits and --plan exclude each other: a plan fixes every layer's bits")
        }
        options.bits = bits ?? options.bits
        options.plan = plan
        options.allocator = allocator
        options.sensitivity = sensitivity ?? .weight
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
        var calibration = options.calibration
        if let calibrationSamples {
            guard (1 ... 64).contains(calibrationSamples) else { throw ValidationError("--calibration-samples must be 1...64") }
            calibration.samples = calibrationSamples
        }
        if let calibrationSize {
            (calibration.height, calibration.width) = try ArgumentParsing.size(calibrationSize, option: "--calibration-size")
        }
        if let calibrationTimesteps {
            calibration.timesteps = try ArgumentParsing.integers(calibrationTimesteps, option: "--calibration-timesteps")
        }
        options.calibration = calibration
        options.unetConfig = unetConfig
        options.measurements = measurements
        if let measurements {
            let file = try MeasurementsFile.load(measurements)
            try agree(with: file, path: measurements, calibration: calibration, calibratesRounding: calibratesRounding)
            options.sensitivity = file.sensitivity
            options.calibration = file.calibration ?? options.calibration
        }
        if !options.sensitivity.isOutput, saveImportance != nil {
            throw ValidationError("--save-importance needs --sensitivity output or output-exhaustive")
        }
        if !options.sensitivity.isOutput, !calibratesRounding, unetConfig != nil {
            throw ValidationError("--unet-config needs --sensitivity output or output-exhaustive, or a calibrated rounding")
        }
        options.only = only
        options.importance = importance
        return options
    }

    /// With --measurements, options that say how to measure must say what the file says (they are usage errors
    /// otherwise): --sensitivity, the calibration options, --unet-config and --importance.
    private func agree(with file: MeasurementsFile, path: String, calibration: EvaluationOptions, calibratesRounding: Bool) throws {
        if let sensitivity, sensitivity != file.sensitivity {
            throw UsageError("--sensitivity \(sensitivity.rawValue) disagrees with \(path), measured with --sensitivity \(file.sensitivity.rawValue)")
        }
        let given = [(calibrationSamples != nil, "--calibration-samples"), (calibrationSize != nil, "--calibration-size"),
                     (calibrationTimesteps != nil, "--calibration-timesteps")].filter(\.0).map(\.1)
        if let option = given.first {
            guard let measured = file.calibration else {
                if calibratesRounding { return try agreeOnInputs(path) }
                throw UsageError("\(option) disagrees with \(path), measured in weight space (no calibration)")
            }
            let same = (measured.samples ?? 2, measured.height, measured.width, measured.timesteps ?? [])
                == (calibration.samples ?? 2, calibration.height, calibration.width, calibration.timesteps ?? [])
            guard same else {
                throw UsageError("calibration options disagree with \(path), measured on \(measured.samples ?? 2) samples of "
                    + "\(measured.height)x\(measured.width) at timesteps \((measured.timesteps ?? []).map(String.init).joined(separator: ","))")
            }
        }
        try agreeOnInputs(path)
        if unetConfig != nil, !calibratesRounding {
            throw UsageError("--unet-config and --measurements exclude each other: allocating from measurements runs no UNet")
        }
    }

    /// --importance and --plan say what a measurements file already says.
    private func agreeOnInputs(_ path: String) throws {
        if importance != nil { throw UsageError("--importance and --measurements exclude each other: \(path) carries the importance weights it was measured with") }
        if plan != nil { throw UsageError("--plan and --measurements exclude each other: a plan fixes every layer's bits") }
    }

    /// Files these options read besides the model: importance, UNet config, a plan file, measurements.
    var inputFiles: [String] {
        [importance, unetConfig, plan, measurements].compactMap { $0 }.filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// Outputs these options write besides the command's own.
    var outputFiles: [String?] { [saveImportance, saveMeasurements] }

    /// Writes the measurements to --save-measurements (its target in `targets`), when asked.
    func saveMeasurements(of quantizer: ModelQuantizer, to targets: [String: OutputTarget]) throws {
        guard let path = saveMeasurements, let target = targets[path] else { return }
        let text = try quantizer.measurementsFile().text()
        let out = try target.open()
        try Array(text.utf8).withUnsafeBytes { try out.write($0) }
        try out.commit()
    }

    /// Writes the moments the calibration pass recorded to --save-importance (its target in `targets`), when asked.
    func saveImportance(of quantizer: ModelQuantizer, to targets: [String: OutputTarget]) throws {
        guard let path = saveImportance, let recorded = quantizer.recordedImportance, let target = targets[path] else { return }
        try recorded.write(to: target)
    }
}
