import CBFQShims
import Dispatch

/// Output-space sensitivity (BitsFusion section 3.2): how far the noise prediction moves when layers' weights are
/// replaced, on a small seeded calibration set run as one batch (every sample at every calibration timestep,
/// conditional states). One reference pass saves the state before every stage, so a changed layer reruns only the
/// stages from the one that reads it. The same pass records each layer's per-input-channel second moments (mean of
/// x^2 over every position and image), the importance weights for weighted quantization, and how long each stage
/// took (for progress estimates).
public final class OutputSensitivity {
    public let model: UNetModel
    public let weights: UNetWeightSource
    /// Recorded second moments by diffusers layer name.
    public let importance: LayerImportance
    /// Sum of the squared reference predictions over the calibration set (the signal of an output SQNR).
    public let signal: Double
    /// Seconds each stage took in the reference pass.
    public let stageSeconds: [Double]
    /// Calibration samples per timestep: image t x samples + s of the batch is sample s at timestep t.
    let samples: Int
    /// What every stage reads besides the activations, for the calibration batch.
    let context: UNetContext
    /// The state before each stage, then the state after the last one.
    let states: [UNetState]

    /// Latent positions per image.
    var latentPositions: Int { states[0].hidden.plane }

    /// Runs the reference pass of `unet` on `calibration`'s seeded inputs (conditional states only; samples, size,
    /// timesteps, seed and tokens as given).
    public init(_ unet: LoadedUNet, calibration: EvaluationOptions) throws {
        let weights = unet.weights
        model = unet.model
        self.weights = weights
        let batch = try CalibrationBatch(calibration, unet: unet)
        samples = batch.samples
        let input = batch.input
        var sums: [String: [Double]] = [:], counts: [String: Int] = [:]
        let record = { (module: String, x: FeatureMap, _: Int) in
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
        let observed = try model.context(input, weights: weights, observer: record)
        var state = model.initialState(input)
        var states: [UNetState] = [], seconds: [Double] = []
        for index in model.stages.indices {
            states.append(state)
            let start = DispatchTime.now().uptimeNanoseconds
            try model.run(&state, stages: index ..< index + 1, observed)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        try UNetModel.checkFinite(state.hidden.values, path: weights.path)
        states.append(state)
        if let unread = weights.unreadTensors().first { throw UNetError.unreadTensor(path: weights.path, name: unread) }
        self.states = states
        stageSeconds = seconds
        context = UNetContext(weights: weights, encoder: observed.encoder, timesteps: observed.timesteps,
                              addedConditioning: observed.addedConditioning)
        signal = state.hidden.values.reduce(0.0) { $0 + Double($1) * Double($1) }
        var moments: [String: [Float]] = [:]
        for (module, channelSums) in sums { moments[module] = channelSums.map { Float($0 / Double(max(counts[module]!, 1))) } }
        importance = LayerImportance(moments: moments, origin: "the calibration pass")
    }

    /// The stage that reads `layer` (diffusers module name).
    func stage(reading layer: String) throws -> Int {
        guard let index = model.stageIndex(reading: layer) else {
            throw UNetError.invalidEvaluation("output sensitivity: the UNet does not read a layer named \(layer)")
        }
        return index
    }

    /// Sum over the calibration set of the squared change of the noise prediction when `layer`'s weight (diffusers
    /// module name) is replaced by `values`: every stage from the layer's on is rerun.
    public func distortion(layer: String, values: [Float]) throws -> Double {
        let first = try stage(reading: layer)
        var state = states[first]
        try model.run(&state, stages: first ..< model.stages.count, context(replacing: [layer: values]))
        return state.hidden.squaredDistances(to: states[states.count - 1].hidden).reduce(0, +)
    }

    /// Reruns `stage` alone with the given layers' weights replaced: the state after it, and per image the energy of
    /// its change (the summed squares of the change of the hidden state and of the time features).
    func stageChange(_ stage: Int, replacing layers: [String: [Float]]) throws -> (state: UNetState, energies: [Double]) {
        var state = states[stage]
        try model.run(&state, stages: stage ..< stage + 1, context(replacing: layers))
        let reference = states[stage + 1]
        var energies = state.hidden.squaredDistances(to: reference.hidden)
        if let time = state.time, let referenceTime = reference.time {
            for (image, energy) in time.squaredDistances(to: referenceTime).enumerated() { energies[image] += energy }
        }
        return (state, energies)
    }

    /// Sum of the squared change of the noise prediction when the stages after `stage` run from `state` (the state
    /// after `stage`) with the reference weights.
    func distortion(after stage: Int, from state: UNetState) throws -> Double {
        try distortions(after: stage, from: [(state, Array(0 ..< state.hidden.batch))])[0].reduce(0, +)
    }

    /// Per image, the squared change of the noise prediction when the stages after `stage` run with the reference
    /// weights from states after `stage`, each restricted to its `images`: all of them as one batch.
    func distortions(after stage: Int, from parts: [(state: UNetState, images: [Int])]) throws -> [[Double]] {
        let skips = parts[0].state.skips.indices.map { k in FeatureMap.stacking(parts.map { ($0.state.skips[k], $0.images) }) }
        let time = parts[0].state.time == nil ? nil : FeatureMap.stacking(parts.map { ($0.state.time!, $0.images) })
        var state = UNetState(hidden: .stacking(parts.map { ($0.state.hidden, $0.images) }), skips: skips, time: time)
        let stacked = UNetContext(weights: weights, encoder: .stacking(parts.map { (context.encoder, $0.images) }),
                                  timesteps: parts.flatMap { $0.images.map { context.timesteps[$0] } },
                                  addedConditioning: context.addedConditioning.map { added in .stacking(parts.map { (added, $0.images) }) })
        try model.run(&state, stages: stage + 1 ..< model.stages.count, stacked)
        let reference = FeatureMap.stacking(parts.map { (states[states.count - 1].hidden, $0.images) })
        let distances = state.hidden.squaredDistances(to: reference)
        var offset = 0
        return parts.map { part in
            defer { offset += part.images.count }
            return Array(distances[offset ..< offset + part.images.count])
        }
    }

    private func context(replacing layers: [String: [Float]]) -> UNetContext {
        let replaced = ReplacedWeights(base: weights, values: Dictionary(uniqueKeysWithValues: layers.map { ($0.key + ".weight", $0.value) }))
        return UNetContext(weights: replaced, encoder: context.encoder, timesteps: context.timesteps,
                           addedConditioning: context.addedConditioning)
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

/// A weight source with some tensors replaced. `values` changes only between layers, on the thread that runs the model.
final class ReplacedWeights: UNetWeightSource, @unchecked Sendable {
    let base: UNetWeightSource
    /// Replacement values by tensor name.
    var values: [String: [Float]]

    init(base: UNetWeightSource, values: [String: [Float]]) {
        self.base = base
        self.values = values
    }

    var path: String { base.path }
    func unreadTensors() -> [String] { base.unreadTensors() }
    var shapes: [String: [Int]] { base.shapes }
    var timeFeatures: TimeFeatureTable? { base.timeFeatures }

    func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let replacement = values[name] else { return try base.floats(name, shape: shape) }
        precondition(replacement.count == shape.reduce(1, *), "\(name): replacement of the wrong size")
        return replacement
    }
}
