import XCTest
@testable import BFQCore

/// The allocators against brute force over every combination of small synthetic problems.
final class BitAllocatorTests: XCTestCase {
    /// Layers with rising costs and falling, convex-ish but random distortions.
    private func problem(_ seed: UInt64, layers: Int, candidates: Int) -> [LayerMeasurement] {
        var random = SeededGenerator(seed: seed)
        return (0 ..< layers).map { index in
            let parameters = 100 * (1 + Int(random.next() % 50))
            var distortion = Double(parameters) * (1 + Double.random(in: 0 ..< 1, using: &random))
            let candidates = (1 ... candidates).map { b -> LayerMeasurement.Candidate in
                defer { distortion *= 0.2 + 0.4 * Double.random(in: 0 ..< 1, using: &random) }
                return LayerMeasurement.Candidate(choice: .grid(b), bits: Double(parameters) * log2(Double((1 << b) + 1)),
                                                  distortion: distortion)
            }
            return LayerMeasurement(layer: "layer\(index)", parameters: parameters, signal: 1, candidates: candidates)
        }
    }

    private func combinations(_ layers: [LayerMeasurement]) -> [[Int]] {
        layers.reduce([[]]) { partial, layer in partial.flatMap { prefix in layer.candidates.indices.map { prefix + [$0] } } }
    }

    private func cost(_ layers: [LayerMeasurement], _ picks: [Int]) -> Double {
        zip(layers, picks).reduce(0) { $0 + $1.0.candidates[$1.1].bits }
    }

    private func objective(_ layers: [LayerMeasurement], _ picks: [Int], eta: Double) -> Double {
        zip(layers, picks).reduce(0) { $0 + pow(Double($1.0.parameters), -eta) * $1.0.candidates[$1.1].distortion }
    }

    func testOptimalMatchesBruteForceAndNeverExceedsTheBudget() throws {
        for seed in 1 ... 12 as ClosedRange<UInt64> {
            let layers = problem(seed, layers: 6, candidates: 4)
            let all = combinations(layers)
            let low = all.map { cost(layers, $0) }.min()!, high = all.map { cost(layers, $0) }.max()!
            for fraction in [0.05, 0.3, 0.5, 0.77, 0.95] {
                let budget = low + (high - low) * fraction
                let picks = try BitAllocator.optimal.allocate(layers, budget: budget, eta: 0.3)
                XCTAssertLessThanOrEqual(cost(layers, picks), budget, "seed \(seed), fraction \(fraction)")
                let best = all.filter { cost(layers, $0) <= budget }.map { objective(layers, $0, eta: 0.3) }.min()!
                XCTAssertEqual(objective(layers, picks, eta: 0.3), best, accuracy: best * 1e-12, "seed \(seed), fraction \(fraction)")
            }
        }
    }

    func testBitsFusionThresholdRuleIsTheSmallestFittingThreshold() throws {
        for seed in 20 ... 30 as ClosedRange<UInt64> {
            let layers = problem(seed, layers: 8, candidates: 4)
            let weights = layers.map { pow(Double($0.parameters), -0.3) }
            // Every plan the rule can make, from every threshold that changes it.
            func plan(_ threshold: Double) -> [Int] {
                layers.indices.map { i in (0 ..< 3).first { weights[i] * layers[i].candidates[$0].distortion < threshold } ?? 3 }
            }
            let thresholds = ([0.0] + layers.indices.flatMap { i in (0 ..< 3).map { (weights[i] * layers[i].candidates[$0].distortion).nextUp } }).sorted()
            let budget = cost(layers, plan(.infinity)) * 1.4
            let picks = try BitAllocator.bitsfusion.allocate(layers, budget: budget, eta: 0.3)
            let expected = plan(thresholds.first { cost(layers, plan($0)) <= budget }!)
            XCTAssertEqual(picks, expected, "seed \(seed)")
            XCTAssertLessThanOrEqual(cost(layers, picks), budget)
        }
    }

    func testABudgetBelowTheCheapestPlanGetsTheCheapestPlan() throws {
        let layers = problem(7, layers: 4, candidates: 3)
        XCTAssertEqual(try BitAllocator.optimal.allocate(layers, budget: BitAllocator.minimumCost(layers) * 0.5, eta: 0.3), [0, 0, 0, 0])
    }
}
