import XCTest
@testable import BFQCore
import BFQTestSupport

/// GridQuantizer against the numpy reference of tools/testdata/quantizer_cases.py, and properties that can fail.
final class GridQuantizerTests: XCTestCase {
    private static let cases = ["heavy", "importance", "odd", "gauss"]
    private static let configs: [(Int, GridQuantizer.Grid)] = [(1, .balanced), (2, .balanced), (3, .balanced),
                                                               (4, .balanced), (2, .plain)]

    private struct Fixture {
        let checkpoint: Checkpoint
        func tensor(_ name: String) throws -> TensorEntry {
            guard let entry = checkpoint.tensors.first(where: { $0.name == name }) else {
                throw XCTSkip("fixture lacks \(name)")
            }
            return entry
        }
        func array<T>(_ name: String, as _: T.Type) throws -> [T] {
            let entry = try tensor(name)
            return try checkpoint.withContiguousBytes(of: entry) { Array($0.bindMemory(to: T.self)) }
        }
        func shape(_ name: String) throws -> [Int] { try tensor(name).shape }
    }

    private func fixture() throws -> Fixture {
        Fixture(checkpoint: try CheckpointFile.open(TestFiles.path("quantizer/cases.safetensors")))
    }

    // MARK: - Against numpy

    func testMatchesNumpyReferenceExactly() throws {
        let fixture = try fixture()
        for name in Self.cases {
            let weights = try fixture.array("\(name).weight", as: Float.self)
            let shape = try fixture.shape("\(name).weight")
            let importance = fixture.checkpoint.tensors.contains { $0.name == "\(name).importance" }
                ? try fixture.array("\(name).importance", as: Float.self) : nil
            for (bits, grid) in Self.configs {
                let key = "\(name).b\(bits).\(grid.rawValue)"
                let result = try GridQuantizer(bits: bits, grid: grid)
                    .quantize(weights, rows: shape[0], columns: shape[1], importance: importance)
                let codes = try fixture.array(key + ".codes", as: UInt8.self)
                let scales = try fixture.array(key + ".scales", as: Float.self)
                let errors = try fixture.array(key + ".errors", as: Double.self)
                let sqnr = try fixture.array(key + ".sqnr", as: Double.self)[0]
                let badRows = (0 ..< shape[0]).filter {
                    codes[$0 * shape[1] ..< ($0 + 1) * shape[1]] != result.codes[$0 * shape[1] ..< ($0 + 1) * shape[1]]
                }
                XCTAssertEqual(badRows, [], "\(key): codes differ in rows")
                XCTAssertEqual(result.scales.map(\.bitPattern), scales.map(\.bitPattern), "\(key): scales")
                XCTAssertEqual(result.rowErrors, errors, "\(key): row errors")
                XCTAssertEqual(result.sqnr, sqnr, accuracy: 1e-9 * max(1, abs(sqnr)), "\(key): SQNR")
            }
        }
    }

    // MARK: - Properties

    /// Abs-max only, alternating from abs-max, multi-start: each row's error never rises along that chain, so the
    /// SQNR does not fall; alternating optimisation must actually help somewhere on heavy-tailed rows.
    func testRefinementNeverWorsens() throws {
        let fixture = try fixture()
        var improvedSomewhere = (alternating: false, multiStart: false)
        for name in Self.cases {
            let weights = try fixture.array("\(name).weight", as: Float.self)
            let shape = try fixture.shape("\(name).weight")
            for (bits, grid) in Self.configs {
                let quantizers = [try GridQuantizer(bits: bits, grid: grid, maxIterations: 0, startFactors: [1]),
                                  try GridQuantizer(bits: bits, grid: grid, maxIterations: 10, startFactors: [1]),
                                  try GridQuantizer(bits: bits, grid: grid)]
                let results = try quantizers.map { try $0.quantize(weights, rows: shape[0], columns: shape[1]) }
                for (earlier, later) in zip(results, results.dropFirst()) {
                    XCTAssertGreaterThanOrEqual(later.sqnr, earlier.sqnr, "\(name) b\(bits) \(grid)")
                    for row in 0 ..< shape[0] {
                        XCTAssertLessThanOrEqual(later.rowErrors[row], earlier.rowErrors[row], "\(name) b\(bits) row \(row)")
                    }
                }
                improvedSomewhere.alternating = improvedSomewhere.alternating || results[1].error < results[0].error
                improvedSomewhere.multiStart = improvedSomewhere.multiStart || results[2].error < results[1].error
            }
        }
        XCTAssertTrue(improvedSomewhere.alternating, "alternating optimisation never lowered the error")
        XCTAssertTrue(improvedSomewhere.multiStart, "extra starts never lowered the error")
    }

    /// Codes packed by CodePacker and decoded by Dequantizer give values whose squared error is the reported one,
    /// bit for bit; a zero row decodes to +0 with scale 0, a constant row exactly.
    func testDecodedErrorEqualsReported() throws {
        let fixture = try fixture()
        for name in Self.cases {
            let weights = try fixture.array("\(name).weight", as: Float.self)
            let shape = try fixture.shape("\(name).weight")
            let (rows, columns) = (shape[0], shape[1])
            for (bits, grid) in Self.configs {
                let result = try GridQuantizer(bits: bits, grid: grid).quantize(weights, rows: rows, columns: columns)
                let packed = try CodePacker.pack(result.codes, rows: rows, columns: columns, levels: result.levels)
                let dequantizer = try Dequantizer(rows: rows, columns: columns, levels: result.levels, values: result.values)
                var decoded = [Float](repeating: .nan, count: rows * columns)
                try packed.withUnsafeBytes { packed in
                    try decoded.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f32) }
                }
                var total = 0.0
                for row in 0 ..< rows {
                    var sum = 0.0
                    for i in row * columns ..< (row + 1) * columns {
                        let d = Double(weights[i]) - Double(decoded[i])
                        sum += d * d
                    }
                    XCTAssertEqual(sum, result.rowErrors[row], "\(name) b\(bits) \(grid) row \(row)")
                    total += sum
                }
                XCTAssertEqual(total, result.error)
                if name == "heavy" {
                    XCTAssertEqual(result.scales[3], 0)
                    XCTAssertEqual(result.rowErrors[3], 0)
                    XCTAssertTrue(result.codes[3 * columns ..< 4 * columns].allSatisfy { Int($0) == 1 << (bits - 1) })
                    XCTAssertEqual(result.rowErrors[7], 0, "constant row is exact")
                    XCTAssertEqual(result.rowErrors[9], 0, "constant row is exact")
                }
            }
        }
    }

    /// Balanced 1 bit on a symmetric (Gaussian) distribution uses -1, 0 and +1 in every row, and the codes are in range.
    func testBalancedOneBitUsesThreeLevels() throws {
        var random = SeededGenerator(seed: 77)
        let (rows, columns) = (16, 256)
        let weights = (0 ..< rows * columns).map { _ in gaussian(&random) * 0.02 }
        let result = try GridQuantizer(bits: 1).quantize(weights, rows: rows, columns: columns)
        for row in 0 ..< rows {
            XCTAssertEqual(Set(result.codes[row * columns ..< (row + 1) * columns]), [0, 1, 2], "row \(row)")
        }
        let plain = try GridQuantizer(bits: 3, grid: .plain).quantize(weights, rows: rows, columns: columns)
        XCTAssertTrue(plain.codes.allSatisfy { $0 < 8 })
    }

    /// Same output on the caller's thread and on Parallel's threads, for plain and importance-weighted runs.
    func testThreadCountIndependence() throws {
        var random = SeededGenerator(seed: 5)
        let (rows, columns) = (64, 96)
        let weights = (0 ..< rows * columns).map { _ in gaussian(&random) * gaussian(&random) * 0.05 }
        let importance = (0 ..< columns).map { _ in abs(gaussian(&random)) }
        for (bits, grid) in Self.configs + [(8, .plain), (7, .balanced)] {
            for h in [nil, importance] {
                var serial = try GridQuantizer(bits: bits, grid: grid)
                serial.parallel = false
                let parallel = try GridQuantizer(bits: bits, grid: grid)
                let a = try serial.quantize(weights, rows: rows, columns: columns, importance: h)
                let b = try parallel.quantize(weights, rows: rows, columns: columns, importance: h)
                XCTAssertEqual(a, b, "b\(bits) \(grid) importance \(h != nil)")
            }
        }
    }

    /// Importance weights move the error where they are small: the weighted objective is no higher than the one
    /// the unweighted search reaches, and a single dominant column is reproduced better.
    func testImportanceWeightingLowersWeightedError() throws {
        let fixture = try fixture()
        let weights = try fixture.array("importance.weight", as: Float.self)
        let h = try fixture.array("importance.importance", as: Float.self)
        let shape = try fixture.shape("importance.weight")
        for (bits, grid) in Self.configs {
            let quantizer = try GridQuantizer(bits: bits, grid: grid)
            let weighted = try quantizer.quantize(weights, rows: shape[0], columns: shape[1], importance: h)
            let plain = try quantizer.quantize(weights, rows: shape[0], columns: shape[1])
            // The plain result's weighted error, recomputed from its decoded values.
            for row in 0 ..< shape[0] {
                var sum = 0.0
                for i in 0 ..< shape[1] {
                    let q = Float(Int(plain.codes[row * shape[1] + i]) - (1 << (bits - 1)))
                    let d = Double(weights[row * shape[1] + i]) - Double(plain.scales[row] * q + 0)
                    sum += Double(h[i]) * (d * d)
                }
                // Each search is a local one, so allow ties but not a much worse weighted result.
                XCTAssertLessThanOrEqual(weighted.rowObjectives![row], sum * 1.05, "b\(bits) \(grid) row \(row)")
            }
        }
    }

    /// Exact halves round to even (as numpy's rint and torch.round): at s = 0.5, 0.25 / s = 0.5 gives q = 0 and
    /// 0.75 / s = 1.5 gives q = 2; -0.25 gives q = -0 (code 2), and the largest |w| maps to the top level.
    func testHalvesRoundToEven() throws {
        let quantizer = try GridQuantizer(bits: 2, maxIterations: 0, startFactors: [1])
        let result = try quantizer.quantize([1.0, 0.25, 0.75, -0.25, -0.75, -1.0], rows: 1, columns: 6)
        XCTAssertEqual(result.scales, [0.5])
        XCTAssertEqual(result.codes, [4, 2, 4, 2, 0, 0])
    }

    func testRejectsBadInput() throws {
        XCTAssertThrowsError(try GridQuantizer(bits: 0))
        XCTAssertThrowsError(try GridQuantizer(bits: 9))
        XCTAssertThrowsError(try GridQuantizer(bits: 8, grid: .balanced))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, startFactors: []))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, startFactors: [0]))
        let quantizer = try GridQuantizer(bits: 2)
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3], rows: 2, columns: 2))
        XCTAssertThrowsError(try quantizer.quantize([1, .nan, 3, 4], rows: 2, columns: 2)) {
            XCTAssertEqual($0 as? GridQuantizerError, .nonFinite(row: 0, column: 1))
        }
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3, 4], rows: 2, columns: 2, importance: [1]))
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3, 4], rows: 2, columns: 2, importance: [1, -1]))
        let empty = try quantizer.quantize([], rows: 0, columns: 5)
        XCTAssertEqual(empty.codes, [])
    }

    private func gaussian(_ random: inout SeededGenerator) -> Float {
        let u = Double.random(in: Double.ulpOfOne ..< 1, using: &random)
        let v = Double.random(in: 0 ..< 1, using: &random)
        return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
    }
}
