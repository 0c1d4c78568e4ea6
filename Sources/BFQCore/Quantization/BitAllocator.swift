import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Chooses each layer's candidate so the accounted bits stay within a budget.
///
/// - `optimal` minimises sum_i S_i x D_i(choice_i) with S_i = N_i^-eta (weight-space sensitivity), exactly up to
///   a cost grid of budget / 2^18: a multiple-choice knapsack solved by dynamic programming with every cost rounded up
///   (so the result never exceeds the budget), then any budget the rounding left is spent on the single-layer upgrades
///   that lower the objective most.
/// - `bitsfusion` is the paper's threshold rule (Alg. 1): score S(i,b) = D_i(b) x N_i^-eta; each layer gets the
///   smallest b in {1, 2, 3} with S(i,b) < S_o, else 4; S_o is the smallest threshold whose plan fits the budget.
public enum BitAllocator: String, Sendable, CaseIterable {
    case optimal
    case bitsfusion

    static let costSteps = 1 << 18

    /// Picks a candidate index per layer. `budget` is the accounted bits available to these layers; a budget below
    /// `minimumCost` gets the cheapest plan (callers check first and report the shortfall).
    public func allocate(_ layers: [LayerMeasurement], budget: Double, eta: Double) throws -> [Int] {
        // A layer of no weights has no error to weigh (and N^-eta would be infinite).
        let weights = layers.map { $0.parameters == 0 ? 0 : pow(Double($0.parameters), -eta) }
        switch self {
        case .optimal: return Self.knapsack(layers, weights: weights, budget: budget)
        case .bitsfusion: return try Self.threshold(layers, weights: weights, budget: budget)
        }
    }

    /// Accounted bits of the smallest choice of every layer.
    static func minimumCost(_ layers: [LayerMeasurement]) -> Double {
        layers.reduce(0) { $0 + ($1.candidates.map(\.bits).min() ?? 0) }
    }

    private static func knapsack(_ layers: [LayerMeasurement], weights: [Double], budget: Double) -> [Int] {
        let cheapest = layers.map { layer in layer.candidates.indices.min { layer.candidates[$0].bits < layer.candidates[$1].bits }! }
        guard !layers.isEmpty, budget > 0 else { return cheapest }
        let steps = costSteps
        let unit = budget / Double(steps)
        let units = layers.map { layer in layer.candidates.map { Int(($0.bits / unit).rounded(.up)) } }
        let values = layers.indices.map { i in layers[i].candidates.map { weights[i] * $0.distortion } }
        // best[s]: least objective of the layers so far within s units; choice[i][s]: layer i's pick there.
        var best = [Double](repeating: 0, count: steps + 1)
        var next = best
        var choice = [[UInt8]](repeating: [], count: layers.count)
        for i in layers.indices {
            var picks = [UInt8](repeating: 0, count: steps + 1)
            let cost = units[i].map(Int64.init), value = values[i]
            best.withUnsafeBufferPointer { old in
                next.withUnsafeMutableBufferPointer { new in
                    picks.withUnsafeMutableBufferPointer { pick in
                        let (oldBase, newBase, pickBase) = (old.baseAddress!, new.baseAddress!, pick.baseAddress!)
                        let chunk = 1 << 14
                        Parallel.forEach((steps + chunk) / chunk) { c in
                            bfq_knapsack_step(oldBase, newBase, pickBase, c * chunk, min(steps + 1, (c + 1) * chunk), cost,
                                              value, cost.count)
                        }
                    }
                }
            }
            swap(&best, &next)
            choice[i] = picks
        }
        guard best[steps].isFinite else {
            // Rounding up can lose a plan that fits exactly; the cheapest plan is then the only one that does.
            return cheapest
        }
        var picked = [Int](repeating: 0, count: layers.count)
        var s = steps
        for i in layers.indices.reversed() {
            picked[i] = Int(choice[i][s])
            s -= units[i][picked[i]]
        }
        return spendRemainder(layers, values: values, picked: picked, budget: budget)
    }

    /// Upgrades single layers, best objective drop first, while the true cost stays within the budget.
    private static func spendRemainder(_ layers: [LayerMeasurement], values: [[Double]], picked: [Int], budget: Double) -> [Int] {
        var picked = picked
        var spent = layers.indices.reduce(0.0) { $0 + layers[$1].candidates[picked[$1]].bits }
        while true {
            var bestGain = 0.0, best: (Int, Int)?
            for i in layers.indices {
                for k in layers[i].candidates.indices {
                    let extra = layers[i].candidates[k].bits - layers[i].candidates[picked[i]].bits
                    let gain = values[i][picked[i]] - values[i][k]
                    if gain > bestGain, spent + extra <= budget { (bestGain, best) = (gain, (i, k)) }
                }
            }
            guard let (i, k) = best else { return picked }
            spent += layers[i].candidates[k].bits - layers[i].candidates[picked[i]].bits
            picked[i] = k
        }
    }

    private static func threshold(_ layers: [LayerMeasurement], weights: [Double], budget: Double) throws -> [Int] {
        // Grid candidates at b = 1...4 with one scale per row, as the paper.
        let options: [[Int]] = try layers.map { layer in
            try (1 ... 4).map { b in
                guard let k = layer.candidates.firstIndex(where: { $0.choice == .grid(b) }) else {
                    throw QuantizationError.invalidOption("--allocator bitsfusion needs 1- to 4-bit grid candidates (layer \(layer.layer))")
                }
                return k
            }
        }
        func plan(_ threshold: Double) -> [Int] {
            layers.indices.map { i in
                let scores = options[i].map { weights[i] * layers[i].candidates[$0].distortion }
                return options[i][scores.prefix(3).firstIndex { $0 < threshold } ?? 3]
            }
        }
        func cost(_ picked: [Int]) -> Double { layers.indices.reduce(0.0) { $0 + layers[$1].candidates[picked[$1]].bits } }
        // The plan changes only where S_o passes a score: try the thresholds just above each, smallest first.
        var thresholds = layers.indices.flatMap { i in options[i].prefix(3).map { (weights[i] * layers[i].candidates[$0].distortion).nextUp } }
        thresholds.append(0)
        thresholds.sort()
        var low = 0, high = thresholds.count - 1
        if cost(plan(thresholds[high])) > budget { return plan(.infinity) }
        while low < high {
            let middle = (low + high) / 2
            if cost(plan(thresholds[middle])) <= budget { high = middle } else { low = middle + 1 }
        }
        return plan(thresholds[low])
    }
}
