import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Quantizes a plan's layers in the order the UNet runs them on the calibration set (the options' calibration, as
/// output sensitivity runs it: one batch, conditional states), each one when its input arrives, so that its input
/// comes from the layers already quantized before it (GPTQ's sequential calibration).
///
/// Per layer: its input moments (`LayerInputMoments`; 1 position in `LayerInputMoments.heldOutEvery` held out); the
/// nearest rounding with the quantizer's parameters fitted under H's diagonal as importance weights; with `gptq`,
/// error-compensating codes on those parameters (`ErrorCompensation`); and, when biases are corrected, the bias shift
/// (W - W') E[x] that makes the layer's mean output on the calibration inputs that of its original weights. On the
/// held-out positions the layer's output error of each option is measured and the smallest kept, so no layer ends
/// worse there than nearest rounding; a layer without held-out positions is rounded to nearest, uncorrected.
/// The time-embedding layers see the timestep alone, and the calibration set has only a few: their moments come from
/// every timestep of SD's schedule (0 to 999) run through the time MLP as it is quantized, the same input for every
/// ResNet's time projection. In an SDXL-family UNet the projections read SiLU(temb + add_embedding(conditioning)):
/// their input pairs every timestep's quantized temb with each calibration sample's quantized added embedding.
/// A value projection's mean error (no bias of its own) is folded into the attention's output projection bias: the
/// attention weights of a query sum to 1, so a constant shift of the values shifts its output by the same vector;
/// a key projection's is a constant shift of every logit of a query, which softmax ignores; a query projection's is
/// not a constant and no bias can take it.
final class CalibratedQuantization {
    /// A quantized layer as the writer stores it.
    struct Layer {
        let codes: EncodedCodes
        let values: QuantizedValues
        let levels: Int
        /// Weight SQNR of the stored values, dB.
        let sqnr: Double
        let outcome: RoundingOutcome
    }

    let checkpoint: Checkpoint
    let options: QuantizationOptions
    /// Choices of the layers to quantize, by diffusers module name.
    let choices: [String: LayerChoice]
    private let importance: [String: [Float]]
    /// Layout tensors of those layers.
    private let tensors: [String: QuantizationLayout.Tensor]
    /// Receives each quantized layer as soon as it is rounded (module name, layer), so its codes need not be kept.
    typealias Emit = (String, Layer) throws -> Void
    /// Modules quantized so far.
    private(set) var finished: Set<String> = []
    private var emit: Emit?
    /// Corrected biases by module name.
    private(set) var biases: [String: [Float]] = [:]
    /// Layers rounded to nearest although GPTQ was asked for, with the reason, in UNet order.
    private(set) var fallbacks: [(layer: String, reason: String)] = []
    /// Mean value errors of value projections waiting for their attention's output projection.
    private var pendingShifts: [String: [Double]] = [:]
    /// Inputs of the time layers over every timestep of the schedule, by module name (`timeProjection` for the
    /// ResNets' projections), each set once the layer before it is done.
    private var timeInputs: [String: FeatureMap] = [:]
    private static let timeProjection = "time_emb_proj"
    /// SDXL: temb (before SiLU) over every timestep, waiting for the added embedding of the calibration samples.
    private var pendingTimeEmbedding: FeatureMap?
    /// Calibration samples per timestep (the batch's first images carry every sample's conditioning).
    private var samples = 0
    private var source: ReplacedWeights?
    private var done = 0

    /// `importance`: per layer, weights for the quantizer's parameter search instead of H's diagonal.
    init(_ checkpoint: Checkpoint, layout: QuantizationLayout, choices: [String: LayerChoice], importance: [String: [Float]],
         options: QuantizationOptions) {
        self.checkpoint = checkpoint
        self.importance = importance
        self.options = options
        self.choices = choices
        var tensors: [String: QuantizationLayout.Tensor] = [:]
        for tensor in layout.tensors where tensor.layer.map({ choices[$0].map { $0.kind != .raw } ?? false }) == true {
            tensors[tensor.layer!] = tensor
        }
        self.tensors = tensors
    }

    /// Runs the calibration set through the UNet in `unet`, quantizing the layers as they come and handing each to `emit`.
    func run(_ unet: LoadedUNet, progress: ModelQuantizer.Progress?, emit: @escaping Emit) throws {
        self.emit = emit
        defer { self.emit = nil }
        let batch = try CalibrationBatch(options.calibration, unet: unet)
        samples = batch.samples
        let config = unet.model.config, width = config.blockChannels[0], timesteps = (0 ..< 1000).map(Float.init)
        let rows = TimeFeatureCache.sinusoids(timesteps, width: width, flipSinToCos: config.flipSinToCos, shift: config.frequencyShift)
        timeInputs["time_embedding.linear_1"] = FeatureMap(channels: width, batch: timesteps.count, height: 1, width: 1) { out in
            for b in timesteps.indices { for k in 0 ..< width { out[k * timesteps.count + b] = rows[b * width + k] } }
        }
        let source = ReplacedWeights(base: unet.weights, values: [:])
        self.source = source
        defer { self.source = nil }
        let total = tensors.values.reduce(0) { $0 + $1.entry.elementCount }
        progress?("calibrating", 0, total)
        let context = try unet.model.context(batch.input, weights: source) { [unowned self] module, x, stride in
            try calibrate(module, x, stride: stride, source: source)
            progress?("calibrating", done, total)
        }
        var state = unet.model.initialState(batch.input)
        try unet.model.run(&state, stages: unet.model.stages.indices, context)
        // A layer the model does not run (a zero-column weight, say) is quantized by the writer as without calibration.
        for missed in tensors.keys.sorted(by: UNetOrder.precedes) where !finished.contains(missed) && options.roundingMethod == .gptq {
            fallbacks.append((missed, "the UNet does not run it"))
        }
    }

    private func calibrate(_ module: String, _ batchInput: FeatureMap, stride: Int, source: ReplacedWeights) throws {
        // Every layer reads its weights once, right after this call: the previous layer's replacements are spent.
        source.values.removeAll()
        let x = timeInputs[module.hasSuffix("." + Self.timeProjection) ? Self.timeProjection : module] ?? batchInput
        let shift = pendingShifts.removeValue(forKey: module)
        guard let shape = source.shapes[module + ".weight"], choices[module] != nil || shift != nil else { return }
        let (rows, columns) = (shape[0], shape.dropFirst().reduce(1, *))
        let bias = source.shapes[module + ".bias"] == nil ? nil : try source.base.floats(module + ".bias", shape: [rows])
        guard let choice = choices[module], choice.kind != .raw, let tensor = tensors[module] else {
            let weights = try source.base.floats(module + ".weight", shape: shape)
            if choices[module] != nil { source.values[module + ".weight"] = OutputSensitivity.halfRounded(weights) }
            if let shift, let bias { correctBias(module, bias, folding: shift, through: weights, columns: columns, source: source) }
            advanceTime(module, x, weights: source.values[module + ".weight"] ?? weights, bias: biases[module] ?? bias)
            return
        }
        let kernel = shape.count == 4 ? shape[3] : 1
        var moments = LayerInputMoments(columns: columns, kernelArea: kernel * kernel,
                                        maximumBlock: options.hessianBlock(columns: columns, kernelArea: kernel * kernel))
        moments.add(x, kernel: kernel, stride: stride)
        let weights = try LayerQuantizer.weights(of: tensor, in: checkpoint)
        let nearest = try LayerQuantizer.quantize(weights, tensor: tensor, choice: choice,
                                                  importance: importance[module] ?? (moments.trainingPositions > 0 ? moments.meanSquares : nil))
        var candidates: [(result: QuantizationResult, rounding: QuantizationOptions.Rounding)] = [(nearest, .nearest)]
        var outcome = RoundingOutcome(rounding: .nearest, biasCorrected: false)
        if options.roundingMethod == .gptq {
            if moments.heldOutPositions == 0 {
                outcome.note = "\(moments.trainingPositions) calibration positions, none held out to check it"
            } else if let (results, damping) = ErrorCompensation(damping: options.damping, order: options.columnOrder)
                .results(for: weights, start: nearest, moments: moments) {
                for result in results {
                    candidates.append((try Self.result(result.codes, values: result.values, like: nearest, weights: weights), .gptq))
                }
                outcome.damping = damping
            } else {
                outcome.note = "H is not positive definite with damping up to "
                    + "\(options.damping * pow(10, Double(ErrorCompensation.dampingRetries))), or the sweep was not finite"
            }
        }
        moments.releaseHessians()
        let mean = moments.mean
        // The best candidate so far by index: its dequantized values are recomputed at the end rather than kept
        // beside the next candidate's (a large layer's f32 copy is over 100 MB).
        var best: (index: Int, corrected: Bool, error: Double, shift: [Double])?
        var latest: (index: Int, values: [Float])?
        var heldOut: (signal: Double, nearest: Double)?
        var withAddedBias: [Double] = []
        for (index, candidate) in candidates.enumerated() {
            latest = nil
            let values = try candidate.result.dequantized()
            latest = (index, values)
            let meanError = Self.meanError(weights, values, mean: mean, rows: rows, columns: columns)
            guard moments.heldOutPositions > 0 else {
                best = (index, false, 0, meanError)
                break
            }
            let errors = Self.heldOutErrors(weights, values, shift: meanError, moments: moments, rows: rows)
            if index == 0 { heldOut = (Self.heldOutSignal(weights, bias: bias, moments: moments, rows: rows), errors.plain) }
            withAddedBias.append(errors.corrected)
            for (corrected, error) in [(false, errors.plain)] + (options.correctsBiases && bias != nil ? [(true, errors.corrected)] : [])
                where best == nil || error < best!.error {
                best = (index, corrected, error, meanError)
            }
        }
        let chosen = best!
        let chosenValues = latest?.index == chosen.index ? latest!.values : try candidates[chosen.index].result.dequantized()
        latest = nil
        outcome.rounding = candidates[chosen.index].rounding
        if outcome.rounding == .nearest, options.roundingMethod == .gptq, outcome.note == nil, candidates.count > 1 {
            outcome.note = "nearest rounding had the smaller held-out output error"
        }
        if let heldOut {
            let sqnr = { (error: Double) in error == 0 ? Double.infinity : 10 * log10(heldOut.signal / error) }
            outcome.heldOutSQNR = (sqnr(heldOut.nearest), sqnr(chosen.error))
            if bias == nil { outcome.heldOutSQNRWithAddedBias = sqnr(withAddedBias[chosen.index]) }
        }
        if let note = outcome.note, options.roundingMethod == .gptq, candidates.count == 1 { fallbacks.append((module, note)) }
        source.values[module + ".weight"] = chosenValues
        if let bias, chosen.corrected || shift != nil {
            var corrected = bias
            if chosen.corrected { for row in 0 ..< rows { corrected[row] = Float(Double(bias[row]) + chosen.shift[row]) } }
            correctBias(module, corrected, folding: shift, through: weights, columns: columns, source: source)
            outcome.biasCorrected = true
        }
        if options.correctsBiases, module.hasSuffix(".to_v"), moments.heldOutPositions > 0 {
            pendingShifts[String(module.dropLast("to_v".count)) + "to_out.0"] = chosen.shift
        }
        advanceTime(module, x, weights: chosenValues, bias: biases[module] ?? bias)
        let result = candidates[chosen.index].result
        try emit?(module, Layer(codes: try EncodedCodes(result.codes, rows: rows, columns: columns, levels: result.levels),
                                values: result.values, levels: result.levels, sqnr: result.sqnr, outcome: outcome))
        finished.insert(module)
        done += rows * columns
    }

    /// After a layer of the time MLP: the next one's input over every timestep, SiLU(W' x + b'); with SDXL's added
    /// conditioning, the projections' input once add_embedding.linear_2 has run too.
    private func advanceTime(_ module: String, _ x: FeatureMap, weights: [Float], bias: [Float]?) {
        if module == "add_embedding.linear_2", let temb = pendingTimeEmbedding {
            pendingTimeEmbedding = nil
            let added = MatrixProduct.linear(x, weight: weights, bias: bias, outChannels: weights.count / max(x.channels, 1))
            let (width, steps, count) = (temb.channels, temb.batch, min(samples, added.batch))
            guard added.channels == width, count > 0 else { return }
            var h = FeatureMap(channels: width, batch: steps * count, height: 1, width: 1) { out in
                for c in 0 ..< width {
                    for s in 0 ..< count {
                        let shift = added.values[c * added.batch + s]
                        for t in 0 ..< steps { out[(c * count + s) * steps + t] = temb.values[c * steps + t] + shift }
                    }
                }
            }
            bfq_silu(&h.values, h.values.count, ElementwiseKernels.vectorized)
            timeInputs[Self.timeProjection] = h
            return
        }
        let next = ["time_embedding.linear_1": "time_embedding.linear_2", "time_embedding.linear_2": Self.timeProjection][module]
        guard let next, timeInputs[module] != nil else { return }
        var h = MatrixProduct.linear(x, weight: weights, bias: bias, outChannels: weights.count / max(x.channels, 1))
        if next == Self.timeProjection, choices["add_embedding.linear_2"] != nil {
            pendingTimeEmbedding = h
            return
        }
        bfq_silu(&h.values, h.values.count, ElementwiseKernels.vectorized)
        timeInputs[next] = h
    }

    /// Stores `bias` plus W `shift` (an input shift the layer's inputs lost upstream) as the layer's bias.
    private func correctBias(_ module: String, _ bias: [Float], folding shift: [Double]?, through weights: [Float],
                             columns: Int, source: ReplacedWeights) {
        var corrected = bias
        if let shift {
            for row in corrected.indices {
                var sum = 0.0
                for column in 0 ..< columns { sum += Double(weights[row * columns + column]) * shift[column] }
                corrected[row] = Float(Double(corrected[row]) + sum)
            }
        }
        biases[module] = corrected
        source.values[module + ".bias"] = corrected
    }

    /// Per row, (W - W') mean: the mean output error a bias can absorb.
    private static func meanError(_ weights: [Float], _ values: [Float], mean: [Float], rows: Int, columns: Int) -> [Double] {
        (0 ..< rows).map { row in
            var sum = 0.0
            for column in 0 ..< columns {
                let index = row * columns + column
                sum += (Double(weights[index]) - Double(values[index])) * Double(mean[column])
            }
            return sum
        }
    }

    /// `matrix` (rows x `moments.columns`) applied to the held-out inputs: rows x held-out positions.
    private static func heldOutProduct(_ matrix: [Float], moments: LayerInputMoments, rows: Int) -> [Float] {
        let (columns, positions) = (moments.columns, moments.heldOutPositions)
        return [Float](unsafeUninitializedCapacity: rows * positions) { c, initialized in
            matrix.withUnsafeBufferPointer { a in
                moments.heldOut.withUnsafeBufferPointer { x in
                    MatrixProduct.multiply(m: rows, n: positions, k: columns, a: a.baseAddress!, lda: columns,
                                           b: x.baseAddress!, ldb: columns, transposeB: true, beta: 0,
                                           c: c.baseAddress!, ldc: positions)
                }
            }
            initialized = rows * positions
        }
    }

    /// On the held-out positions, the energy of the layer's original output, bias included.
    private static func heldOutSignal(_ weights: [Float], bias: [Float]?, moments: LayerInputMoments, rows: Int) -> Double {
        let output = heldOutProduct(weights, moments: moments, rows: rows), positions = moments.heldOutPositions
        var signal = 0.0
        for row in 0 ..< rows {
            let b = Double(bias?[row] ?? 0)
            for position in 0 ..< positions {
                let y = Double(output[row * positions + position]) + b
                signal += y * y
            }
        }
        return signal
    }

    /// On the held-out positions, the energy of the output error of `values` with the original bias (plain) and with
    /// the bias shifted by `shift` (corrected).
    private static func heldOutErrors(_ weights: [Float], _ values: [Float], shift: [Double], moments: LayerInputMoments,
                                      rows: Int) -> (plain: Double, corrected: Double) {
        let error = heldOutProduct(zip(weights, values).map { $0 - $1 }, moments: moments, rows: rows)
        let positions = moments.heldOutPositions
        var (plain, corrected) = (0.0, 0.0)
        for row in 0 ..< rows {
            for position in 0 ..< positions {
                let e = Double(error[row * positions + position])
                plain += e * e
                corrected += (e - shift[row]) * (e - shift[row])
            }
        }
        return (plain, corrected)
    }

    /// A result with `codes` and `values` in `start`'s shape and encoding, its errors those of the decoded values.
    private static func result(_ codes: [UInt16], values: QuantizedValues, like start: QuantizationResult,
                               weights: [Float]) throws -> QuantizationResult {
        let partial = QuantizationResult(levels: start.levels, rows: start.rows, columns: start.columns, codes: codes,
                                         values: values, parameterType: start.parameterType, rowErrors: start.rowErrors,
                                         rowWeightedErrors: nil, rowSignals: start.rowSignals)
        let decoded = try partial.dequantized()
        let errors = (0 ..< start.rows).map { row in
            var sum = 0.0
            for index in row * start.columns ..< (row + 1) * start.columns {
                let d = Double(weights[index]) - Double(decoded[index])
                sum += d * d
            }
            return sum
        }
        return QuantizationResult(levels: start.levels, rows: start.rows, columns: start.columns, codes: codes,
                                  values: values, parameterType: start.parameterType, rowErrors: errors,
                                  rowWeightedErrors: nil, rowSignals: start.rowSignals)
    }
}
