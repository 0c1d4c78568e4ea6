extension ModelQuantizer {
    /// Measures every planned layer at every candidate: bits and distortion, in weight space, or with `sensitivity`
    /// in output space (predicted from stage gains, or rerun for every candidate with `output-exhaustive`).
    /// Progress is reported in estimated microseconds of work, so a bar's ETA holds across layers of any kind.
    func measure(progress: Progress?, sensitivity: OutputSensitivity? = nil) throws -> [LayerMeasurement] {
        let candidates = options.candidates
        let tensors = planned
        guard let sensitivity else {
            let total = tensors.reduce(0) { $0 + $1.entry.elementCount }
            var done = 0
            return try tensors.map { tensor in
                let weights = try LayerQuantizer.weights(of: tensor, in: checkpoint)
                let measured = try weightDistortions(weights, tensor: tensor, importance: try importance?.weights(for: tensor))
                done += weights.count
                progress?("measuring", done, total)
                return measurement(tensor, signal: measured.signal, distortions: measured.distortions,
                                   weightDistortions: measured.distortions)
            }
        }
        let stages = try tensors.map { try sensitivity.stage(reading: $0.layer!) }
        let seconds = sensitivity.stageSeconds
        let rest = (0 ..< seconds.count).map { seconds[($0 + 1)...].reduce(0, +) }
        // Estimated seconds per layer: quantizing it (about 10 ns per weight on two cores) and its reruns.
        let exhaustive = options.sensitivity == .outputExhaustive
        var estimates = tensors.indices.map { i -> Double in
            let reruns = exhaustive ? Double(candidates.count) * (seconds[stages[i]] + rest[stages[i]]) : 2 * seconds[stages[i]]
            return 10e-9 * Double(tensors[i].entry.elementCount) + reruns
        }
        for stage in Set(stages) where !exhaustive {
            estimates[stages.lastIndex(of: stage)!] += seconds[stage] + rest[stage]
        }
        let units = estimates.map { Int(($0 * 1e6).rounded(.up)) }
        let total = units.reduce(0, +)
        var done = 0
        var results = [LayerMeasurement?](repeating: nil, count: tensors.count)
        if exhaustive {
            for (i, tensor) in tensors.enumerated() {
                let weights = try LayerQuantizer.weights(of: tensor, in: checkpoint)
                let importance = try self.importance?.weights(for: tensor)
                let measured = try weightDistortions(weights, tensor: tensor, importance: importance)
                let distortions = try candidates.map { choice in
                    try sensitivity.distortion(layer: tensor.layer!, values: decoded(weights, tensor: tensor, choice: choice,
                                                                                     importance: importance))
                }
                results[i] = measurement(tensor, signal: sensitivity.signal, distortions: distortions,
                                         weightDistortions: measured.distortions)
                done += units[i]
                progress?("measuring", done, total)
            }
            return results.map { $0! }
        }
        let predictor = StageGainMeasurement(sensitivity: sensitivity)
        for stage in Set(stages).sorted() {
            let members = tensors.indices.filter { stages[$0] == stage }
            var layers: [StageGainMeasurement.Layer] = []
            for i in members {
                let tensor = tensors[i]
                let weights = try LayerQuantizer.weights(of: tensor, in: checkpoint)
                let importance = try self.importance?.weights(for: tensor)
                let measured = try weightDistortions(weights, tensor: tensor, importance: importance)
                let probes = StageGainMeasurement.probes(candidates, weightDistortions: measured.distortions)
                let values = try probes.map { try decoded(weights, tensor: tensor, choice: candidates[$0], importance: importance) }
                layers.append(StageGainMeasurement.Layer(name: tensor.layer!, weightDistortions: measured.distortions,
                                                         probes: probes, probeValues: values))
            }
            let predicted = try predictor.predict(stage: stage, layers: layers)
            for (k, i) in members.enumerated() {
                results[i] = measurement(tensors[i], signal: sensitivity.signal, distortions: predicted[k],
                                         weightDistortions: layers[k].weightDistortions)
                done += units[i]
                progress?("measuring", done, total)
            }
        }
        return results.map { $0! }
    }

    /// The importance-weighted squared error of every candidate (plain without importance weights) and the sum of
    /// w^2: one sorted pass per row for the grids with one scale per row, the palettes and f16; grids with group
    /// scales through their quantizer. In weight space grids are searched from the RMS start alone (palettes start
    /// from that grid), at most 2 rounds from 5 bits on (where each round moves the scale by a few percent): a bound
    /// on the error of the writer's search, which also tries that start for 10 rounds, at well under half its cost.
    /// In output space, as the writer searches: the probes' output changes are then those of the measured errors.
    func weightDistortions(_ weights: [Float], tensor: QuantizationLayout.Tensor,
                           importance: [Float]?) throws -> (distortions: [Double], signal: Double) {
        let candidates = options.candidates
        let sorted = candidates.indices.filter { candidates[$0].groupSize == nil }
        let writerSearch = measuredSensitivity.isOutput
        let measured = try CandidateMeasurement.measure(weights, rows: tensor.rows, columns: tensor.columns,
                                                        importance: importance, candidates: sorted.map { candidates[$0] },
                                                        startFactors: writerSearch ? nil : [],
                                                        rounds: writerSearch ? nil : { $0 > 4 ? 2 : 10 })
        var distortions = [Double](repeating: 0, count: candidates.count)
        for (index, distortion) in zip(sorted, measured.distortions) { distortions[index] = distortion }
        for index in candidates.indices where candidates[index].groupSize != nil {
            let result = try LayerQuantizer.quantize(weights, tensor: tensor, choice: candidates[index], importance: importance,
                                                     startFactors: writerSearch ? nil : [])
            distortions[index] = LayerQuantizer.distortion(of: result)
        }
        return (distortions, measured.signal)
    }

    /// The weights as `choice` decodes them: quantized as `write` quantizes them, or rounded to f16.
    private func decoded(_ weights: [Float], tensor: QuantizationLayout.Tensor, choice: LayerChoice,
                         importance: [Float]?) throws -> [Float] {
        guard choice.kind != .raw else { return OutputSensitivity.halfRounded(weights) }
        return try LayerQuantizer.quantize(weights, tensor: tensor, choice: choice, importance: importance).dequantized()
    }

    /// The measurement of `tensor` with its candidates in increasing order of bits (ties in the options' order).
    private func measurement(_ tensor: QuantizationLayout.Tensor, signal: Double, distortions: [Double],
                             weightDistortions: [Double]) -> LayerMeasurement {
        let candidates = options.candidates.indices.map { index in
            LayerMeasurement.Candidate(choice: options.candidates[index],
                                       bits: options.candidates[index].accountedBits(rows: tensor.rows, columns: tensor.columns),
                                       distortion: distortions[index], weightDistortion: weightDistortions[index])
        }
        let order = candidates.indices.sorted { (candidates[$0].bits, $0) < (candidates[$1].bits, $1) }
        return LayerMeasurement(layer: tensor.layer!, parameters: tensor.entry.elementCount, signal: signal,
                                candidates: order.map { candidates[$0] })
    }
}
