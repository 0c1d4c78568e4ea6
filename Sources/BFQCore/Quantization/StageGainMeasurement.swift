#if canImport(Glibc)
import Glibc
#endif

/// The fast path of output sensitivity: each candidate's output distortion predicted from the layer's
/// importance-weighted weight error D_w (which every candidate's quantization gives) and gains that a few reruns
/// measure, instead of rerunning the UNet for every candidate of every layer.
///
/// The change of the noise prediction is factored at the boundary of the stage that reads the layer (a ResNet, a
/// transformer, a sampler):
/// - local gain: the layer alone is quantized at two probes (the 1- and 3-bit grids when they are candidates) and
///   only its stage is rerun; the energy E of the change of the stage's output against D_w gives two points of a
///   curve E(D_w), interpolated between them on log-log axes and proportional beyond them (small changes act
///   linearly);
/// - gain: every planned layer of the stage is quantized at the second probe at once, the stage's output change
///   (energy E_s) is run through the rest of the UNet, g_s = D_out / E_s; then each layer's own change at its second
///   probe is run through the rest on the first sample's images only (one image per calibration timestep, the
///   layers of a stage in one batch), and g = g_s x (its D_out / E there) / (the stage's D_out / E_s there).
/// A candidate's predicted distortion is g x E(D_w). Reruns per layer: two of its stage and one of the rest of the
/// UNet on a 1/samples share of the calibration images; per stage: one of the rest on all of them. The
/// approximations: the rest of the UNet acts on a layer's change with the same gain whatever the candidate (the
/// stage's own nonlinearity is measured per layer), and the first sample's images show how a layer's gain differs
/// from its stage's; a layer's output change grows with D_w along the measured curve whatever the encoding.
struct StageGainMeasurement {
    /// One planned layer of a stage: its candidates' weighted weight errors and the probes' decoded weights.
    struct Layer {
        let name: String
        /// D_w per candidate, in the candidates' order.
        let weightDistortions: [Double]
        /// Indices of the probes in the candidates, larger D_w first.
        let probes: [Int]
        /// Decoded weights of each probe.
        let probeValues: [[Float]]
    }

    let sensitivity: OutputSensitivity

    /// The probes among `candidates`: the 1- and 3-bit grids when both are there, else the quantized candidates
    /// with the largest and the middle D_w (`weightDistortions` in the candidates' order).
    static func probes(_ candidates: [LayerChoice], weightDistortions: [Double]) -> [Int] {
        if let low = candidates.firstIndex(of: .grid(1)), let high = candidates.firstIndex(of: .grid(3)) { return [low, high] }
        let quantized = candidates.indices.filter { candidates[$0].kind != .raw }
            .sorted { (weightDistortions[$0], $1) > (weightDistortions[$1], $0) }
        guard let first = quantized.first else { return [] }
        let middle = quantized[quantized.count / 2]
        return middle == first ? [first] : [first, middle]
    }

    /// Latent positions in one batch of per-layer reruns (4 images of 64x64).
    static let batchPositions = 1 << 14

    /// Predicted output distortion per candidate of each of `layers`, all read by `stage`.
    func predict(stage: Int, layers: [Layer]) throws -> [[Double]] {
        var curves: [[(x: Double, y: Double)]] = [], changes: [(state: UNetState, energies: [Double])] = []
        for layer in layers {
            var points: [(x: Double, y: Double)] = []
            for (probe, values) in zip(layer.probes, layer.probeValues) {
                let change = try sensitivity.stageChange(stage, replacing: [layer.name: values])
                points.append((layer.weightDistortions[probe], change.energies.reduce(0, +)))
                changes.append(change)
            }
            curves.append(points)
        }
        let gains = try self.gains(stage: stage, layers: layers, changes: changes)
        return layers.indices.map { k in layers[k].weightDistortions.map { gains[k] * Self.interpolate(curves[k], at: $0) } }
    }

    /// Each layer's gain from its stage's output change to the prediction's: the stage gain g_s (every layer at its
    /// last probe, all calibration images), scaled for each layer by how its own gain on the first sample's images
    /// compares with the stage's there (one rerun of the rest of the UNet per layer on those images, layers batched).
    private func gains(stage: Int, layers: [Layer], changes: [(state: UNetState, energies: [Double])]) throws -> [Double] {
        let last = Dictionary(uniqueKeysWithValues: layers.compactMap { layer in layer.probeValues.last.map { (layer.name, $0) } })
        guard !last.isEmpty else { return layers.map { _ in 0 } }
        let together = try sensitivity.stageChange(stage, replacing: last)
        let all = Array(0 ..< together.state.hidden.batch)
        let distortions = try sensitivity.distortions(after: stage, from: [(together.state, all)])[0]
        let stageGain = Self.ratio(distortions, together.energies, all)
        guard layers.count > 1, stageGain > 0 else { return layers.map { _ in stageGain } }
        // The first sample at every timestep.
        let images = Array(Swift.stride(from: 0, to: all.count, by: sensitivity.samples))
        let subsetGain = Self.ratio(distortions, together.energies, images)
        var probed: [(index: Int, state: UNetState, energies: [Double])] = []
        var offset = 0
        for (k, layer) in layers.enumerated() {
            offset += layer.probes.count
            if !layer.probes.isEmpty { probed.append((k, changes[offset - 1].state, changes[offset - 1].energies)) }
        }
        // The rest of the UNet returns to the latent's size: batches are bounded at that size.
        let plane = sensitivity.latentPositions
        let perBatch = max(1, Self.batchPositions / max(1, images.count * plane))
        var gains = layers.map { _ in stageGain }
        for first in Swift.stride(from: 0, to: probed.count, by: perBatch) {
            let chunk = probed[first ..< min(probed.count, first + perBatch)]
            let rerun = try sensitivity.distortions(after: stage, from: chunk.map { ($0.state, images) })
            for (part, layerDistortions) in zip(chunk, rerun) {
                let own = Self.ratio(layerDistortions, images.map { part.energies[$0] }, Array(images.indices))
                if subsetGain > 0 { gains[part.index] = stageGain * own / subsetGain }
            }
        }
        return gains
    }

    /// Sum of `numerators` over `indices` / sum of `denominators` there (0 when that is 0).
    private static func ratio(_ numerators: [Double], _ denominators: [Double], _ indices: [Int]) -> Double {
        let below = indices.reduce(0) { $0 + denominators[$1] }
        return below > 0 ? indices.reduce(0) { $0 + numerators[$1] } / below : 0
    }

    /// E(x) through `points` (x descending): log-log interpolation between them, proportional beyond.
    static func interpolate(_ points: [(x: Double, y: Double)], at x: Double) -> Double {
        guard let first = points.first else { return 0 }
        let last = points[points.count - 1]
        func ratio(_ p: (x: Double, y: Double)) -> Double { p.x > 0 ? p.y / p.x : 0 }
        if x >= first.x || points.count == 1 { return x * ratio(first) }
        if x <= last.x { return x * ratio(last) }
        guard first.y > 0, last.y > 0, first.x > last.x, last.x > 0 else {
            return x * (first.y + last.y) / (first.x + last.x)
        }
        let t = log(x / last.x) / log(first.x / last.x)
        return exp(log(last.y) + t * log(first.y / last.y))
    }
}
