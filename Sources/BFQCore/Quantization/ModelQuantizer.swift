import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Quantizes an SD UNet checkpoint into a .bfq: plans the bits of every conv and linear weight (measured allocation,
/// a built-in recipe or a plan file), optionally caches the time features, and writes the container tensor by
/// tensor, keeping memory bounded by the largest layer.
public final class ModelQuantizer {
    /// Reports progress: a phase name and weights done out of a total.
    public typealias Progress = (_ phase: String, _ done: Int, _ total: Int) -> Void

    public let checkpoint: Checkpoint
    public let layout: QuantizationLayout
    public let options: QuantizationOptions
    /// The plan named by `options.plan`, if any.
    private let givenPlan: QuantizationPlan?
    /// Timesteps to cache: the options', else the plan file's.
    public let cacheTimesteps: [Int]?
    /// Importance weights: the file's, else (with output sensitivity) those the calibration pass recorded.
    var importance: LayerImportance?
    /// The measurements file named by `options.measurements`, checked against this UNet.
    private let loadedMeasurements: MeasurementsFile?
    /// What `makePlan` measured (or loaded), for `measurementsFile()` and `curve`.
    public private(set) var measurements: [LayerMeasurement]?
    /// The output signal of the calibration set when the measurements are in output space.
    private(set) var outputSignal: Double?
    /// Things the user should know that do not stop the work, one line each.
    public private(set) var warnings: [String] = []
    /// The second moments the calibration pass of output sensitivity recorded, once `makePlan` ran it.
    public private(set) var recordedImportance: LayerImportance?

    public init(_ checkpoint: Checkpoint, options: QuantizationOptions) throws {
        guard options.bits.isFinite, options.bits > 0 else { throw QuantizationError.budgetOutOfRange(options.bits) }
        // Beyond a few, N^-eta underflows for SD's layer sizes and every layer would weigh nothing.
        if let eta = options.eta, !(0 ... 4).contains(eta) { throw QuantizationError.invalidOption("--eta must be 0 to 4, not \(eta)") }
        let checkpoint = try options.only.map { try CheckpointSurgery(only: $0).apply(to: checkpoint).checkpoint } ?? checkpoint
        self.checkpoint = checkpoint
        self.options = options
        layout = try QuantizationLayout(checkpoint, names: options.names)
        let layers = layout.tensors.filter { $0.role == .allocated || ($0.role == .time && $0.isMatrix) }.compactMap(\.layer)
        givenPlan = try options.plan.map { try QuantizationPlan.builtIn($0, layers: layers) ?? QuantizationPlan.load($0) }
        cacheTimesteps = options.cacheTimesteps ?? givenPlan?.cacheTimesteps
        if cacheTimesteps != nil { try TimeFeatureCache.refuseAddedConditioning(checkpoint.tensors.map(\.name)) }
        // The cache computes SD's time embedding (flip_sin_to_cos, shift 0); a config saying otherwise cannot be cached.
        if cacheTimesteps != nil, let path = LoadedUNet.configPath(for: checkpoint, given: options.unetConfig) {
            let config = try UNetConfig.load(path)
            guard config.flipSinToCos, config.frequencyShift == 0 else {
                throw QuantizationError.invalidOption("\(path): the time-feature cache computes SD's timestep embedding "
                    + "(flip_sin_to_cos true, freq_shift 0); this UNet's differs, so its time features cannot be cached")
            }
        }
        importance = try options.importance.map { try LayerImportance(path: $0) }
        loadedMeasurements = try options.measurements.map { try MeasurementsFile.load($0) }
        if let loadedMeasurements {
            guard options.importance == nil else {
                throw QuantizationError.invalidOption("--importance and --measurements exclude each other: the measurements "
                    + "carry the importance weights they were measured with")
            }
            importance = loadedMeasurements.importance
        }
        if let path = options.importance, let importance, !layout.tensors.contains(where: importance.covers) {
            throw QuantizationError.importanceMatchesNoLayer(path: path)
        }
        if let givenPlan, givenPlan.sensitivity.flatMap(QuantizationOptions.Sensitivity.init(rawValue:))?.isOutput == true,
           importance == nil, !options.sensitivity.isOutput {
            warnings.append("\(givenPlan.origin) was allocated with output sensitivity, whose recorded moments weighed its "
                + "quantization; to reproduce it, pass --importance with the file --save-importance wrote")
        }
    }

    /// True when a tensor is left out of the output because the time-feature cache replaces it.
    func isCached(_ tensor: QuantizationLayout.Tensor) -> Bool { cacheTimesteps != nil && tensor.role == .time }

    /// The tensors whose choice the plan makes: allocated weights, and time weights when not cached.
    var planned: [QuantizationLayout.Tensor] {
        layout.tensors.filter { $0.role == .allocated || ($0.role == .time && $0.isMatrix && cacheTimesteps == nil) }
    }

    /// Values the time-feature cache stores: timesteps x the summed widths of the time_emb_proj outputs.
    var cachedFeatureCount: Int {
        guard let cacheTimesteps else { return 0 }
        let widths = layout.tensors.filter { $0.isMatrix && $0.layer!.hasSuffix(".time_emb_proj") }.reduce(0) { $0 + $1.rows }
        return cacheTimesteps.count * widths
    }

    /// Accounted bits outside the plan: fixed layers and cached time features.
    var fixedBits: Double {
        let fixed = layout.tensors.compactMap { tensor -> (String, Double)? in
            guard case let .fixed(choice) = tensor.role else { return nil }
            return (tensor.layer!, (givenPlan?.choices[tensor.layer!] ?? choice).accountedBits(rows: tensor.rows, columns: tensor.columns))
        }.sorted { $0.0 < $1.0 }.reduce(0.0) { $0 + $1.1 }
        return fixed + 16 * Double(cachedFeatureCount)
    }

    /// The plan: the given one checked against this UNet, or one allocated from measured distortions.
    /// With output sensitivity, the calibration pass runs first; its moments weigh the quantization unless an
    /// importance file was given.
    public func makePlan(progress: Progress? = nil) throws -> QuantizationPlan {
        var sensitivity: OutputSensitivity?
        if let loadedMeasurements {
            measurements = try check(loadedMeasurements)
            outputSignal = loadedMeasurements.signal
        } else if options.sensitivity.isOutput {
            progress?("calibrating", 0, 1)
            // Decoded weights stay resident when they are small (reruns then skip decoding); SD's 3.4 GB in f32 do not.
            let f32Bytes = layout.tensors.reduce(0) { $0 + 4 * $1.entry.elementCount }
            let unet = try LoadedUNet.open(checkpoint, config: options.unetConfig, resident: f32Bytes <= 1 << 30)
            sensitivity = try OutputSensitivity(unet, calibration: options.calibration)
            recordedImportance = sensitivity!.importance
            importance = importance ?? sensitivity!.importance
            outputSignal = sensitivity!.signal
        }
        if let givenPlan { return try check(givenPlan) }
        let weights = Double(layout.weightCount)
        let budget = options.bits * weights - fixedBits
        let minimum = planned.reduce(0.0) { total, tensor in
            total + (options.candidates.map { $0.accountedBits(rows: tensor.rows, columns: tensor.columns) }.min() ?? 0)
        }
        guard minimum <= budget else {
            throw QuantizationError.budgetTooSmall(requested: options.bits, smallest: (fixedBits + minimum) / weights)
        }
        let measurements = try self.measurements ?? measure(progress: progress, sensitivity: sensitivity)
        self.measurements = measurements
        let picks = try options.allocator.allocate(measurements, budget: budget, eta: eta)
        var choices: [String: LayerChoice] = [:]
        for (layer, pick) in zip(measurements, picks) { choices[layer.layer] = layer.candidates[pick].choice }
        var settings = [JSONMember("allocator", .string(options.allocator.rawValue)), JSONMember("sensitivity", .string(measuredSensitivity.rawValue)),
                        JSONMember("eta", .double(eta)), JSONMember("target_bits", .double(options.bits))]
            + (options.importance.map { [JSONMember("importance", .string($0))] } ?? [])
        if let calibration = loadedMeasurements != nil ? loadedMeasurements!.calibration : (options.sensitivity.isOutput ? options.calibration : nil) {
            settings.append(JSONMember("calibration", MeasurementsFile.json(calibration)))
        }
        return QuantizationPlan(choices: choices, origin: "allocated", cacheTimesteps: cacheTimesteps,
                                measurements: Dictionary(uniqueKeysWithValues: measurements.map { ($0.layer, $0) }),
                                settings: settings)
    }

    /// The size exponent the allocator uses: the options', else the default for the measurements' sensitivity.
    public var eta: Double {
        options.eta ?? QuantizationOptions.defaultEta(for: measuredSensitivity, allocator: options.allocator)
    }

    /// How the measurements were made: the loaded file's sensitivity, else the options'.
    public var measuredSensitivity: QuantizationOptions.Sensitivity { loadedMeasurements?.sensitivity ?? options.sensitivity }

    /// Average bits (spec/bfq.md section 7) the plan gives this UNet, summed in layer-name order so files holding
    /// the same UNet in another order or naming give the same figure.
    public func averageBits(of plan: QuantizationPlan) -> Double {
        let terms = planned.compactMap { tensor in
            plan.choices[tensor.layer!].map { (tensor.layer!, $0.accountedBits(rows: tensor.rows, columns: tensor.columns)) }
        }
        return terms.sorted { $0.0 < $1.0 }.reduce(fixedBits) { $0 + $1.1 } / Double(layout.weightCount)
    }

    /// Every planned layer must have a choice and every choice a layer (names of cached time layers are ignored).
    private func check(_ plan: QuantizationPlan) throws -> QuantizationPlan {
        let known = Set(layout.tensors.compactMap(\.layer))
        let cached = Set(layout.tensors.filter(isCached).compactMap(\.layer))
        for name in plan.choices.keys.sorted() where !known.contains(name) {
            throw QuantizationError.unknownPlanLayer(plan: plan.origin, layer: name)
        }
        for tensor in planned where plan.choices[tensor.layer!] == nil {
            let hint = tensor.role == .time ? "time-embedding layers need a plan entry or --cache-timesteps" : ""
            throw QuantizationError.planMissesLayer(plan: plan.origin, layer: tensor.layer!, hint: hint)
        }
        var plan = plan
        plan.choices = plan.choices.filter { !cached.contains($0.key) }
        plan.cacheTimesteps = cacheTimesteps
        return plan
    }

    /// What `plan` stores `tensor` as: nil for kept tensors.
    private func choice(of tensor: QuantizationLayout.Tensor, in plan: QuantizationPlan) -> LayerChoice? {
        switch tensor.role {
        case let .fixed(fixed): return plan.choices[tensor.layer!] ?? fixed
        case .allocated, .time: return tensor.layer.flatMap { plan.choices[$0] }
        case .kept: return nil
        }
    }

    /// Runs `CalibratedQuantization` over the layers of `choices` when the options round with GPTQ or correct biases,
    /// handing each layer to `emit` as soon as it is rounded.
    private func calibratedRounding(_ choices: [String: LayerChoice], progress: Progress?,
                                    emit: @escaping CalibratedQuantization.Emit) throws -> CalibratedQuantization? {
        guard options.calibratesRounding else { return nil }
        guard choices.values.contains(where: { $0.kind != .raw }) else {
            if options.rounding == nil, options.biasCorrection == nil { return nil }
            throw QuantizationError.nothingToRound
        }
        let f32Bytes = layout.tensors.reduce(0) { $0 + 4 * $1.entry.elementCount }
        let unet: LoadedUNet
        do {
            unet = try LoadedUNet.open(checkpoint, config: options.unetConfig, resident: f32Bytes <= 1 << 30)
        } catch let error as UNetError where options.rounding == nil && options.biasCorrection == nil {
            warnings.append("rounded to nearest: GPTQ runs the UNet, and it cannot run: \(error)")
            return nil
        }
        // An importance file weighs the quantizer's parameters as asked; otherwise H's diagonal does.
        var given: [String: [Float]] = [:]
        if options.importance != nil, let importance {
            for tensor in layout.tensors where tensor.layer != nil { given[tensor.layer!] = try importance.weights(for: tensor) }
        }
        let calibrated = CalibratedQuantization(checkpoint, layout: layout, choices: choices, importance: given, options: options)
        try calibrated.run(unet, progress: progress, emit: emit)
        let reasons = Dictionary(grouping: calibrated.fallbacks, by: \.reason)
        for reason in reasons.keys.sorted() {
            let names = reasons[reason]!.map(\.layer)
            warnings.append("rounded to nearest instead of GPTQ (\(reason)): \(names.count) layer\(names.count == 1 ? "" : "s"): "
                + names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", ..." : ""))
        }
        return calibrated
    }

    /// Writes the quantized model to `target` as `plan` says and reports what each tensor became.
    public func write(plan: QuantizationPlan, to target: OutputTarget, progress: Progress? = nil) throws -> QuantizationReport {
        let digest = SourceDigestTask(checkpoint.files, path: checkpoint.path)
        let writer = try ContainerWriter(target: target)
        // Computed first so a model the cache cannot handle fails before any work; stored last (spec section 9).
        let cache = try cacheTimesteps.map { try TimeFeatureCache.compute(from: checkpoint, timesteps: $0) }
        var choices: [String: LayerChoice] = [:]
        for tensor in layout.tensors where !isCached(tensor) {
            if let layer = tensor.layer, let choice = choice(of: tensor, in: plan) { choices[layer] = choice }
        }
        // Calibrated layers are written as they are rounded (in the order the UNet runs them), so their codes are never
        // all in memory at once; the manifest keeps the input's order.
        let byLayer = Dictionary(layout.tensors.compactMap { tensor in tensor.layer.map { ($0, tensor) } }) { first, _ in first }
        var written: [String: (ContainerTensor, QuantizationReport.Row)] = [:]
        let calibrated = try calibratedRounding(choices, progress: progress) { module, layer in
            guard let tensor = byLayer[module] else { return }
            written[tensor.outputName] = try LayerWriter.write(tensor, choice: self.choice(of: tensor, in: plan), importance: nil,
                                                               from: self.checkpoint, keptType: self.options.keptType,
                                                               to: writer, calibrated: layer)
        }
        let total = layout.tensors.reduce(0) { $0 + $1.entry.elementCount }
        var done = 0
        var entries: [ContainerTensor] = []
        var rows: [QuantizationReport.Row] = []
        for tensor in layout.tensors {
            done += tensor.entry.elementCount
            defer { progress?("writing", done, total) }
            if isCached(tensor) { continue }
            if let (entry, row) = written.removeValue(forKey: tensor.outputName) {
                entries.append(entry)
                rows.append(row)
                continue
            }
            let bias = tensor.unetName.flatMap { name in
                name.hasSuffix(".bias") ? calibrated?.biases[String(name.dropLast(".bias".count))] : nil
            }
            let (entry, row) = try LayerWriter.write(tensor, choice: choice(of: tensor, in: plan),
                                                     importance: try importance?.weights(for: tensor),
                                                     from: checkpoint, keptType: options.keptType, to: writer,
                                                     replacement: bias)
            entries.append(entry)
            rows.append(row)
        }
        var timeFeatures: ContainerManifest.TimeFeatures?
        if let cache, let cacheTimesteps {
            let renamed = Dictionary(uniqueKeysWithValues: layout.tensors.map { ($0.entry.name, $0.outputName) })
            let layers = cache.layers.map { layer in
                (name: renamed[layer.name + ".weight"].map { String($0.dropLast(".weight".count)) } ?? layer.name, width: layer.width)
            }
            let features = try LayerQuantizer.halves(cache.values).withUnsafeBytes { try writer.addSection($0) }
            timeFeatures = ContainerManifest.TimeFeatures(timesteps: cacheTimesteps, layers: layers, features: features,
                                                          replacedWeights: cache.replacedWeights)
        }
        var plan = plan
        if calibrated != nil {
            plan.settings.append(JSONMember("rounding", .object([
                JSONMember("method", .string(options.roundingMethod.rawValue)), JSONMember("bias_correction", .bool(options.correctsBiases)),
                JSONMember("damping", .double(options.damping)), JSONMember("column_order", .string(options.columnOrder.rawValue)),
                JSONMember("hessian_block", .int(Int64(options.hessianBlock))),
                JSONMember("hessian_bytes", .int(Int64(QuantizationOptions.hessianBytes))),
                JSONMember("calibration", MeasurementsFile.json(options.calibration)),
            ])))
        }
        let planJSON = plan.json(layout: layout, averageBits: averageBits(of: plan))
        let manifest = ContainerManifest(tensors: entries, metadata: checkpoint.metadata, source: digest.result(),
                                         plan: planJSON, timeFeatures: timeFeatures)
        let finished = try writer.finish(manifest: manifest)
        return QuantizationReport(rows: rows, manifest: finished.manifest, fileSize: finished.fileSize, sourceParameters: total)
    }
}
