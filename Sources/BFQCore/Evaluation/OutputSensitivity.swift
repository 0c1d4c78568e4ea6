import CBFQShims

/// Output-space sensitivity (BitsFusion section 3.2): how far the noise prediction moves when one layer's weights are
/// replaced, on a small seeded calibration set. One reference pass per calibration batch saves the state before every
/// stage, so a changed layer reruns only the stages from the one that reads it. The same pass records each layer's
/// per-input-channel second moments (mean of x^2 over every position and image), the importance weights for
/// weighted quantization.
public final class OutputSensitivity {
    struct Baseline {
        let context: UNetContext
        /// The state before each stage.
        let states: [UNetState]
        let output: [Float]
    }

    public let model: UNetModel
    public let weights: UNetWeightSource
    /// Recorded second moments by diffusers layer name.
    public let importance: LayerImportance
    /// Sum of the squared reference predictions over the calibration set (the signal of an output SQNR).
    public let signal: Double
    let baselines: [Baseline]

    /// Runs the reference passes of `unet` on `calibration`'s seeded inputs (conditional states only; samples, size,
    /// timesteps, seed and tokens as given).
    public init(_ unet: LoadedUNet, calibration: EvaluationOptions) throws {
        // Saved states grow with the calibration batch: 8192 positions (2 samples of 64x64) at most.
        try calibration.validate(imagesPerSample: 16, option: "--calibration-size")
        let (weights, unetConfig) = (unet.weights, unet.model.config)
        model = unet.model
        self.weights = weights
        var generator = SeededGenerator(seed: calibration.seed)
        let conditioning = try EvaluationConditioning(calibration, width: unetConfig.crossAttentionDim,
                                                      channels: unetConfig.inChannels, generator: &generator)
        var sums: [String: [Double]] = [:], counts: [String: Int] = [:]
        let record = { (module: String, x: FeatureMap) in
            x.values.withUnsafeBufferPointer { values in
                var channelSums = sums[module] ?? [Double](repeating: 0, count: x.channels)
                for c in 0 ..< x.channels {
                    var sum = 0.0
                    for v in values[c * x.columns ..< (c + 1) * x.columns] { sum += Double(v) * Double(v) }
                    channelSums[c] += sum
                }
                sums[module] = channelSums
                counts[module, default: 0] += x.columns
            }
        }
        var baselines: [Baseline] = []
        for timestep in try NoiseEvaluation.timesteps(calibration.timesteps, caches: [weights], option: "--calibration-timesteps") {
            let batch = conditioning.input(timestep: timestep, channels: unetConfig.inChannels, height: calibration.height,
                                           width: calibration.width)
            let samples = conditioning.samples
            // Conditional half only: the batch holds unconditional then conditional states.
            let input = UNetInput(sample: Array(batch.sample.prefix(batch.sample.count / 2)), batch: samples,
                                  channels: batch.channels, height: batch.height, width: batch.width,
                                  timesteps: Array(batch.timesteps.prefix(samples)),
                                  encoder: Array(batch.encoder.suffix(batch.encoder.count / 2)), tokens: batch.tokens,
                                  encoderWidth: batch.encoderWidth, source: "calibration input")
            let context = try model.context(input, weights: weights, observer: record)
            var state = model.initialState(input)
            var states: [UNetState] = []
            for index in model.stages.indices {
                states.append(state)
                try model.run(&state, stages: index ..< index + 1, context)
            }
            try UNetModel.checkFinite(state.hidden.values, path: weights.path)
            let plain = UNetContext(weights: weights, encoder: context.encoder, timesteps: context.timesteps)
            baselines.append(Baseline(context: plain, states: states, output: state.hidden.values))
        }
        self.baselines = baselines
        if let unread = weights.unreadTensors().first { throw UNetError.unreadTensor(path: weights.path, name: unread) }
        signal = baselines.reduce(0.0) { total, baseline in baseline.output.reduce(total) { $0 + Double($1) * Double($1) } }
        var moments: [String: [Float]] = [:]
        for (module, channelSums) in sums { moments[module] = channelSums.map { Float($0 / Double(max(counts[module]!, 1))) } }
        importance = LayerImportance(moments: moments, origin: "the calibration pass")
    }

    /// Sum over the calibration set of the squared change of the noise prediction when `layer`'s weight (diffusers
    /// module name) is replaced by `values`.
    public func distortion(layer: String, values: [Float]) throws -> Double {
        guard let first = model.stageIndex(reading: layer) else {
            throw UNetError.invalidEvaluation("output sensitivity: the UNet does not read a layer named \(layer)")
        }
        let replaced = ReplacedWeight(base: weights, name: layer + ".weight", values: values)
        var total = 0.0
        for baseline in baselines {
            let context = UNetContext(weights: replaced, encoder: baseline.context.encoder, timesteps: baseline.context.timesteps)
            var state = baseline.states[first]
            try model.run(&state, stages: first ..< model.stages.count, context)
            for (a, b) in zip(state.hidden.values, baseline.output) { total += Double(a - b) * Double(a - b) }
        }
        return total
    }

    /// `values` rounded to f16 and back: what a raw f16 layer decodes to.
    public static func halfRounded(_ values: [Float]) -> [Float] {
        let halves = LayerQuantizer.halves(values)
        return [Float](unsafeUninitializedCapacity: values.count) { out, initialized in
            if !values.isEmpty { bfq_f16_to_f32(halves, out.baseAddress!, values.count) }
            initialized = values.count
        }
    }
}

/// A weight source with one tensor replaced.
final class ReplacedWeight: UNetWeightSource {
    let base: UNetWeightSource
    let name: String
    let values: [Float]

    init(base: UNetWeightSource, name: String, values: [Float]) {
        self.base = base
        self.name = name
        self.values = values
    }

    var path: String { base.path }
    func unreadTensors() -> [String] { base.unreadTensors() }
    var shapes: [String: [Int]] { base.shapes }
    var timeFeatures: TimeFeatureTable? { base.timeFeatures }

    func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard name == self.name else { return try base.floats(name, shape: shape) }
        precondition(values.count == shape.reduce(1, *), "\(name): replacement of the wrong size")
        return values
    }
}
