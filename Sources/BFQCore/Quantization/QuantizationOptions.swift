/// What `bfq plan` and `bfq quantize` were asked for.
public struct QuantizationOptions: Sendable {
    /// Target average bits (spec/bfq.md section 7); the plan lands at most 0.01 below it, never above.
    public var bits: Double = 1.99
    /// A built-in plan name or a plan file; nil allocates.
    public var plan: String?
    public var allocator: BitAllocator = .optimal
    /// Where a layer's distortion D is measured.
    public var sensitivity: Sensitivity = .weight
    /// Exponent of the size penalty in S_i = N_i^-eta (the paper's 0.3).
    /// nil: `defaultEta(for:allocator:)`.
    public var eta: Double?
    /// What each allocated layer may become.
    public var candidates: [LayerChoice] = QuantizationOptions.defaultCandidates
    /// Timesteps whose time features are cached (and the time-embedding weights dropped); nil caches nothing.
    public var cacheTimesteps: [Int]?
    /// Keep only this component (unet, vae, ...) or the tensors whose name starts with this (`CheckpointSurgery.only`).
    public var only: String?
    /// Rename the UNet's tensors in the output.
    public var names: NamingScheme?
    /// A file of per-layer importance weights (see `LayerImportance`); nil weighs every weight's error alike.
    public var importance: String?
    /// Element type of kept floating-point tensors (biases, norms, non-UNet parts).
    public var keptType: TargetDType = .f16

    public init() {}

    /// The paper's 0.3 in weight space and for its threshold rule; 0 for the optimal allocator in output space,
    /// where the measured distortion is itself what the plan should minimise (on the tiny UNet it gives 0.2 to 0.7 dB
    /// more noise-prediction SQNR than 0.3; README).
    public static func defaultEta(for sensitivity: Sensitivity, allocator: BitAllocator) -> Double {
        sensitivity.isOutput && allocator == .optimal ? 0 : 0.3
    }

    /// A measurements file (`MeasurementsFile`) to allocate from instead of measuring.
    public var measurements: String?

    /// Where distortion is measured: in weight space, D = ||W - Q(W)||^2, or in output space, the squared change of
    /// the UNet's noise prediction on a seeded calibration set with only that layer quantized (`OutputSensitivity`):
    /// predicted from each layer's weighted weight error and gains that a few reruns measure (`output`,
    /// `StageGainMeasurement`), or rerun for every candidate of every layer (`output-exhaustive`).
    public enum Sensitivity: String, Sendable, CaseIterable {
        case weight
        case output
        case outputExhaustive = "output-exhaustive"

        /// True for the output-space kinds, which run the UNet.
        public var isOutput: Bool { self != .weight }
    }

    /// The calibration set of output sensitivity: 2 samples of 16x16 latents, 77 tokens, timesteps 981, 501, 21, seed 1
    /// (`bfq eval` defaults to seed 0, so its default inputs are not the calibration set).
    public var calibration: EvaluationOptions = {
        var options = EvaluationOptions()
        options.samples = 2
        (options.height, options.width) = (16, 16)
        options.timesteps = [981, 501, 21]
        options.seed = 1
        return options
    }()
    /// How each weight meets its level once the plan and the quantizer's parameters are set (nil: `gptq`, skipped
    /// without complaint when the plan quantizes no layer).
    public var rounding: Rounding?
    /// Whether each quantized layer's bias absorbs the mean of its output error on the calibration set (nil: with
    /// `gptq` rounding, not with `nearest`).
    public var biasCorrection: Bool?
    /// GPTQ: the damping added to H's diagonal, as a fraction of its mean.
    public var damping = 0.01
    /// GPTQ: the order in which each block's columns are rounded.
    public var columnOrder: ColumnOrder = .diagonal
    /// GPTQ: H is kept as diagonal blocks of at most this many columns (whole input channels).
    public var hessianBlock = 4608
    /// GPTQ: the blocks of one layer's H hold at most this many bytes of f32 (narrower blocks for wider layers, at
    /// least one input channel each), so H and its factor stay bounded whatever the model.
    public static let hessianBytes = 96 << 20

    /// GPTQ: the most columns per diagonal block of H for a layer of `columns` columns, `kernelArea` per input channel.
    public func hessianBlock(columns: Int, kernelArea: Int) -> Int {
        min(hessianBlock, max(kernelArea, Self.hessianBytes / (4 * max(columns, 1))))
    }

    /// How weights are rounded.
    public enum Rounding: String, Sendable, CaseIterable {
        /// Each weight to its nearest level.
        case nearest
        /// Error-compensating rounding with the layer's input second moments on the calibration set, layers in the
        /// order the UNet runs them (`CalibratedQuantization`).
        case gptq
    }

    /// In which order GPTQ rounds the columns of each block of H.
    public enum ColumnOrder: String, Sendable, CaseIterable {
        /// The weight's own column order.
        case natural
        /// Descending diagonal of H (GPTQ's act-order): the columns with the most input energy first.
        case diagonal
    }

    /// True when quantizing runs the calibration set through the UNet: GPTQ rounding or bias correction.
    public var calibratesRounding: Bool { roundingMethod == .gptq || biasCorrection == true }
    /// Whether biases are corrected: as asked, else with GPTQ rounding.
    public var correctsBiases: Bool { biasCorrection ?? (roundingMethod == .gptq) }
    /// The rounding used: the one asked for, else `gptq`.
    public var roundingMethod: Rounding { rounding ?? .gptq }

    /// A diffusers config.json for the UNet that output sensitivity runs (nil: beside the file, else from the weights).
    public var unetConfig: String?

    /// Balanced grids of 1 to 8 bits with one scale per row, per-row lookup tables of 1 to 3 bits, and f16.
    public static let defaultCandidates: [LayerChoice] = (1 ... 8).map { .grid($0) } + (1 ... 3).map { .palette($0) } + [.raw16]
}
