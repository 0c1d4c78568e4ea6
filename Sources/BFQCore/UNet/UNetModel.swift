/// diffusers' `UNet2DConditionModel` for SD 1.x/2.x, run on the CPU in f32 as a list of stages, so a forward pass can
/// resume from any stage's saved state (output-space sensitivity reruns only what follows a changed layer).
public struct UNetModel: Sendable {
    /// Sees every linear layer's and convolution's input before the layer reads its weights: the module name, the
    /// input and the stride (1 for linear layers).
    public typealias Observer = (_ module: String, _ input: FeatureMap, _ stride: Int) throws -> Void

    public let config: UNetConfig
    /// The stages in execution order.
    let stages: [UNetStage]

    public init(config: UNetConfig) {
        self.config = config
        stages = UNetStageBuilder(config).build()
    }

    /// The stage that reads `module`'s weights, by module name (diffusers).
    func stageIndex(reading module: String) -> Int? {
        stages.firstIndex { $0.modules.contains(module) }
    }

    /// Every linear and convolution module the model reads, in execution order.
    public var modules: [String] { stages.flatMap(\.modules) }

    /// The noise prediction [batch][out][H][W] for `input`.
    public func predict(_ input: UNetInput, weights: UNetWeightSource,
                        observer: Observer? = nil) throws -> [Float] {
        let context = try self.context(input, weights: weights, observer: observer)
        var state = initialState(input)
        try run(&state, stages: stages.indices, context)
        let output = state.hidden.batchMajor()
        try Self.checkFinite(output, path: weights.path)
        if let unread = weights.unreadTensors().first { throw UNetError.unreadTensor(path: weights.path, name: unread) }
        return output
    }

    /// Throws naming the first NaN or infinite value of a prediction.
    static func checkFinite(_ values: [Float], path: String) throws {
        let largest = values.withUnsafeBytes { $0.bindMemory(to: UInt32.self).reduce(0 as UInt32) { Swift.max($0, $1 & 0x7FFF_FFFF) } }
        if largest >= Float.infinity.bitPattern, let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw UNetError.nonFiniteOutput(path: path, index: bad)
        }
    }

    /// Runs `range` of the stages on `state`.
    func run(_ state: inout UNetState, stages range: Range<Int>, _ context: UNetContext) throws {
        for stage in stages[range] { try stage.run(&state, context) }
    }

    /// The state before the first stage.
    func initialState(_ input: UNetInput) -> UNetState {
        let sample = input.sample.withUnsafeBufferPointer {
            FeatureMap(batchMajor: $0, batch: input.batch, channels: input.channels, height: input.height, width: input.width)
        }
        return UNetState(hidden: sample, skips: [], time: nil)
    }

    /// Checks `input` against the configuration and prepares what every stage reads.
    func context(_ input: UNetInput, weights: UNetWeightSource,
                 observer: Observer?) throws -> UNetContext {
        try input.check(config)
        let encoder = input.encoder.withUnsafeBufferPointer { values in
            // [batch][tokens][width] -> [width][batch][tokens]
            FeatureMap(channels: input.encoderWidth, batch: input.batch, height: 1, width: input.tokens) { out in
                for b in 0 ..< input.batch {
                    for t in 0 ..< input.tokens {
                        let row = values.baseAddress! + (b * input.tokens + t) * input.encoderWidth
                        for c in 0 ..< input.encoderWidth { out[(c * input.batch + b) * input.tokens + t] = row[c] }
                    }
                }
            }
        }
        let added = config.textTime.map { input.addedConditioning($0, flipSinToCos: config.flipSinToCos, shift: config.frequencyShift) }
        return UNetContext(weights: weights, encoder: encoder, timesteps: input.timesteps, addedConditioning: added,
                           observer: observer)
    }
}

/// What passes from one stage to the next.
struct UNetState {
    var hidden: FeatureMap
    /// Down-block outputs waiting for their up block.
    var skips: [FeatureMap]
    /// SiLU(temb) [time width][batch]; nil before the time stage or when time features are cached.
    var time: FeatureMap?
}

/// One step of the forward pass and the modules whose weights it reads.
struct UNetStage: Sendable {
    let modules: [String]
    let run: @Sendable (inout UNetState, UNetContext) throws -> Void
}
