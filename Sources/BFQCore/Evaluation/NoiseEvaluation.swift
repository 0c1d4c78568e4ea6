/// Runs a reference and a candidate UNet on the same seeded inputs and measures how far the candidate's noise
/// predictions are, with and without classifier-free guidance, per timestep and overall.
///
/// Each timestep runs one batch per model: the unconditional then the conditional encoder states for every sample,
/// all on the sample's latents (standard normal, as a noised latent is). Latents come first from the seeded
/// generator, then the conditional and unconditional states (standard normal too) unless read from a file.
public enum NoiseEvaluation {
    public static func run(reference: LoadedUNet, candidate: LoadedUNet, options: EvaluationOptions) throws -> EvaluationReport {
        let (a, b) = (reference.model.config, candidate.model.config)
        guard a.inChannels == b.inChannels, a.outChannels == b.outChannels, a.crossAttentionDim == b.crossAttentionDim,
              a.textTime == b.textTime else {
            func added(_ c: UNetConfig) -> String { c.textTime.map { ", added conditioning \($0.inputWidth)" } ?? "" }
            throw UNetError.invalidEvaluation("the models differ in their inputs or outputs: \(a.inChannels) -> \(a.outChannels) "
                + "channels, cross-attention \(a.crossAttentionDim)\(added(a)) vs \(b.inChannels) -> \(b.outChannels), "
                + "\(b.crossAttentionDim)\(added(b))")
        }
        try options.validate()
        let timesteps = try self.timesteps(options.timesteps, caches: [reference.weights, candidate.weights])
        var generator = SeededGenerator(seed: options.seed)
        let conditioning = try EvaluationConditioning(options, config: a, generator: &generator)
        let n = conditioning.samples, plane = a.outChannels * options.height * options.width
        var rows: [EvaluationReport.Row] = []
        for timestep in timesteps {
            let input = conditioning.input(timestep: timestep, channels: a.inChannels, height: options.height, width: options.width)
            let expected = try reference.predict(input), actual = try candidate.predict(input)
            let guided = { (eps: [Float]) -> [Float] in
                (0 ..< n * plane).map { i in
                    let (u, c) = (eps[i], eps[n * plane + i])
                    return u + options.guidanceScale * (c - u)
                }
            }
            let (expectedGuided, actualGuided) = (guided(expected), guided(actual))
            let alphaBar = NoiseSchedule.alphaBars[timestep]
            var conditional = NoiseErrorSums(), withGuidance = NoiseErrorSums()
            for sample in 0 ..< n {
                let range = (n + sample) * plane ..< (n + sample + 1) * plane
                conditional.add(reference: expected[range], candidate: actual[range], alphaBar: alphaBar)
                let guidedRange = sample * plane ..< (sample + 1) * plane
                withGuidance.add(reference: expectedGuided[guidedRange], candidate: actualGuided[guidedRange], alphaBar: alphaBar)
            }
            rows.append(EvaluationReport.Row(timestep: timestep, conditional: conditional, guided: withGuidance))
        }
        return EvaluationReport(reference: reference.weights.path, candidate: candidate.weights.path, samples: n,
                                height: options.height, width: options.width, tokens: conditioning.tokens,
                                guidanceScale: options.guidanceScale, seed: options.seed, rows: rows)
    }

    /// The timesteps asked for, or the default spread; with time-feature caches, only timesteps every cache holds.
    static func timesteps(_ requested: [Int]?, caches sources: [UNetWeightSource], option: String = "--timesteps") throws -> [Int] {
        let caches = sources.compactMap { source in source.timeFeatures.map { (source.path, Set($0.timesteps)) } }
        if let requested {
            guard (1 ... 64).contains(requested.count), requested.allSatisfy({ (0 ... 999).contains($0) }) else {
                throw UNetError.invalidEvaluation("\(option) must list 1 to 64 integers in 0...999")
            }
            for (path, cached) in caches {
                if let missing = requested.first(where: { !cached.contains($0) }) {
                    throw UNetError.timestepNotCached(path: path, timestep: Float(missing), cached: cached.sorted())
                }
            }
            return requested
        }
        guard !caches.isEmpty else { return EvaluationOptions.defaultTimesteps }
        let common = caches.dropFirst().reduce(caches[0].1) { $0.intersection($1.1) }.sorted(by: >)
        guard !common.isEmpty else {
            throw UNetError.invalidEvaluation("the models' time-feature caches share no timestep")
        }
        if EvaluationOptions.defaultTimesteps.allSatisfy(common.contains) { return EvaluationOptions.defaultTimesteps }
        let count = min(5, common.count)
        let picks = (0 ..< count).map { common[count == 1 ? 0 : ($0 * (common.count - 1) + (count - 1) / 2) / (count - 1)] }
        var seen = Set<Int>()
        return picks.filter { seen.insert($0).inserted }
    }
}
