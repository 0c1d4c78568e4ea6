import XCTest
@testable import BFQCore
import BFQTestSupport

/// testdata/quantizer/cases.safetensors (tools/testdata/quantizer_cases.py): weights and the numpy reference's results.
struct QuantizerFixture {
    static let cases = ["heavy", "importance", "odd", "gauss"]
    let checkpoint: Checkpoint

    init() throws { checkpoint = try CheckpointFile.open(TestFiles.path("quantizer/cases.safetensors")) }

    func has(_ name: String) -> Bool { checkpoint.tensors.contains { $0.name == name } }
    func array<T>(_ name: String, as _: T.Type) throws -> [T] {
        guard let entry = checkpoint.tensors.first(where: { $0.name == name }) else { throw XCTSkip("fixture lacks \(name)") }
        return try checkpoint.withContiguousBytes(of: entry) { Array($0.bindMemory(to: T.self)) }
    }
    /// Weights, rows, columns and importance (when the case has it) of a case.
    func weights(_ name: String) throws -> (w: [Float], rows: Int, columns: Int, h: [Float]?) {
        let shape = checkpoint.tensors.first { $0.name == "\(name).weight" }!.shape
        let h = has("\(name).importance") ? try array("\(name).importance", as: Float.self) : nil
        return (try array("\(name).weight", as: Float.self), shape[0], shape[1], h)
    }

    /// Requires `result` to equal the reference `key` exactly: codes, parameters (bits), errors, SQNR.
    func check(_ result: QuantizationResult, _ key: String, parameters: String, _ message: String) throws {
        let columns = result.columns
        let codes = try array(key + ".codes", as: Int16.self).map { UInt16($0) }
        let badRows = (0 ..< result.rows).filter {
            codes[$0 * columns ..< ($0 + 1) * columns] != result.codes[$0 * columns ..< ($0 + 1) * columns]
        }
        XCTAssertEqual(badRows, [], "\(message): codes differ in rows")
        let expected = try array(key + "." + parameters, as: Float.self).map(\.bitPattern)
        switch result.values {
        case let .grid(scales, _, _): XCTAssertEqual(scales.map(\.bitPattern), expected, "\(message): scales")
        case let .palette(entries, _): XCTAssertEqual(entries.map(\.bitPattern), expected, "\(message): entries")
        }
        XCTAssertEqual(result.rowErrors, try array(key + ".errors", as: Double.self), "\(message): row errors")
        if has(key + ".weighted_errors") {
            XCTAssertEqual(result.rowWeightedErrors, try array(key + ".weighted_errors", as: Double.self), message)
        }
        let sqnr = try array(key + ".sqnr", as: Double.self)[0]
        XCTAssertEqual(result.sqnr, sqnr, accuracy: 1e-9 * max(1, abs(sqnr)), "\(message): SQNR")
    }
}

/// The kernels' f64 sum: 8 lanes, element i in lane i % 8, combined ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
func laneSum(_ values: some Sequence<Double>) -> Double {
    var lanes = [Double](repeating: 0, count: 8)
    for (i, v) in values.enumerated() { lanes[i % 8] += v }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// Decodes a result through CodePacker and Dequantizer, as a reader of the container would.
func decode(_ result: QuantizationResult) throws -> [Float] {
    let packed = try CodePacker.pack(result.codes, rows: result.rows, columns: result.columns, levels: result.levels)
    let dequantizer = try Dequantizer(rows: result.rows, columns: result.columns, levels: result.levels, values: result.values)
    var decoded = [Float](repeating: .nan, count: result.rows * result.columns)
    try packed.withUnsafeBytes { packed in
        try decoded.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f32) }
    }
    return decoded
}

func gaussian(_ random: inout SeededGenerator) -> Float {
    let u = Double.random(in: Double.ulpOfOne ..< 1, using: &random)
    let v = Double.random(in: 0 ..< 1, using: &random)
    return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
}

/// GridQuantizer against the numpy reference of tools/testdata/quantizer_cases.py, and properties that can fail.
final class GridQuantizerTests: XCTestCase {
    private static let factors: [Float] = [1, 0.9, 0.8, 0.7, 0.6, 0.5]
    /// The script's GRID_CONFIGS.
    private static let configs: [String: GridQuantizer] = {
        func q(_ bits: Int, _ grid: GridQuantizer.Grid = .balanced, _ scale: GridQuantizer.ScaleType = .f16,
               group: Int? = nil, iterations: Int = 10, factors: [Float] = factors, rms: Bool = false) -> GridQuantizer {
            try! GridQuantizer(bits: bits, grid: grid, maxIterations: iterations, startFactors: factors, rmsStart: rms,
                               groupSize: group, scaleType: scale)
        }
        return ["b1.balanced": q(1), "b2.balanced": q(2), "b3.balanced": q(3), "b4.balanced": q(4), "b8.balanced": q(8),
                "b2.plain": q(2, .plain), "b1.plain": q(1, .plain), "b3.balanced.f32": q(3, .balanced, .f32),
                "b2.balanced.g32": q(2, group: 32), "b4.balanced.f32.g32": q(4, .balanced, .f32, group: 32),
                "b2.balanced.absmax": q(2, iterations: 0, factors: [1]),
                "b1.balanced.rms": q(1, factors: [1, 0.8], rms: true), "b3.balanced.rms": q(3, factors: [1, 0.8], rms: true),
                "b2.balanced.g32.rms": q(2, group: 32, factors: [1], rms: true),
                "b2.plain.rms": q(2, .plain, .f32, factors: [1], rms: true)]
    }()

    // MARK: - Against numpy

    /// AVX2 and scalar kernels both give the reference's codes, stored scales and errors bit for bit.
    func testMatchesNumpyReferenceExactly() throws {
        let fixture = try QuantizerFixture()
        for name in QuantizerFixture.cases {
            let (w, rows, columns, h) = try fixture.weights(name)
            for (key, quantizer) in Self.configs {
                for vectorized in [true, false] {
                    var quantizer = quantizer
                    quantizer.vectorized = vectorized
                    let result = try quantizer.quantize(w, rows: rows, columns: columns, importance: h)
                    try fixture.check(result, "\(name).\(key)", parameters: "scales", "\(name).\(key) vectorized \(vectorized)")
                    XCTAssertEqual(result.parameterType, quantizer.scaleType.dtype)
                }
            }
        }
    }

    // MARK: - Properties

    /// Abs-max only, alternating from abs-max, multi-start, plus the RMS start: the objective never rises along that
    /// chain, so with f32 scales neither does the error beyond the f32 rounding of s x q; alternating optimisation,
    /// extra starts and the RMS start must each actually help somewhere.
    func testRefinementNeverWorsens() throws {
        let fixture = try QuantizerFixture()
        var improved = (alternating: false, multiStart: false, rms: false)
        for name in QuantizerFixture.cases {
            let (w, rows, columns, _) = try fixture.weights(name)
            for bits in 1 ... 4 {
                let quantizers = [try GridQuantizer(bits: bits, maxIterations: 0, startFactors: [1], rmsStart: false, scaleType: .f32),
                                  try GridQuantizer(bits: bits, startFactors: [1], rmsStart: false, scaleType: .f32),
                                  try GridQuantizer(bits: bits, startFactors: Self.factors, rmsStart: false, scaleType: .f32),
                                  try GridQuantizer(bits: bits, startFactors: Self.factors, scaleType: .f32)]
                let results = try quantizers.map { try $0.quantize(w, rows: rows, columns: columns) }
                for (earlier, later) in zip(results, results.dropFirst()) {
                    XCTAssertGreaterThanOrEqual(later.sqnr, earlier.sqnr - 1e-6, "\(name) b\(bits)")
                    for row in 0 ..< rows {
                        XCTAssertLessThanOrEqual(later.rowErrors[row], earlier.rowErrors[row] * (1 + 1e-5) + 1e-30,
                                                 "\(name) b\(bits) row \(row)")
                    }
                }
                improved.alternating = improved.alternating || results[1].error < results[0].error * 0.99
                improved.multiStart = improved.multiStart || results[2].error < results[1].error * 0.99
                let withRMS = try GridQuantizer(bits: bits, startFactors: [1], scaleType: .f32).quantize(w, rows: rows, columns: columns)
                XCTAssertLessThanOrEqual(withRMS.error, results[1].error * (1 + 1e-5), "\(name) b\(bits)")
                improved.rms = improved.rms || withRMS.error < results[1].error * 0.99
            }
        }
        XCTAssertTrue(improved.rms, "the RMS start never lowered the error by 1%")
        XCTAssertTrue(improved.alternating, "alternating optimisation never lowered the error by 1%")
        XCTAssertTrue(improved.multiStart, "extra starts never lowered the error by 1%")
    }

    /// Rows of no columns: one scale per row (0), no codes, no error; with groups, no scales.
    func testRowsWithoutColumns() throws {
        let result = try GridQuantizer(bits: 2).quantize([], rows: 3, columns: 0)
        XCTAssertEqual(result.values, .grid(scales: [0, 0, 0]))
        XCTAssertEqual(result.codes, [])
        XCTAssertEqual(result.rowErrors, [0, 0, 0])
        XCTAssertEqual(try GridQuantizer(bits: 2, groupSize: 32).quantize([], rows: 3, columns: 0).values, .grid(scales: [], groupSize: 32))
    }

    /// A Gaussian row with 1% of its weights x10 at 1 bit: from abs-max starts the search stops far from the best
    /// scale (the outliers hold the scale up and most weights code as 0); the RMS start reaches the best scale a fine
    /// scan finds.
    func testRMSStartEscapesTheOutlierTrap() throws {
        var random = SeededGenerator(seed: 11)
        var weights = (0 ..< 4096).map { _ in gaussian(&random) }
        for i in stride(from: 37, to: weights.count, by: 100) { weights[i] *= 10 }
        let signal = weights.reduce(0.0) { $0 + Double($1) * Double($1) }
        let scanned = (1 ... 3000).map { k -> Double in
            let s = Float(k) * 0.01
            return weights.reduce(0.0) { total, w in
                let d = Double(w) - Double(s * min(max((w / s).rounded(.toNearestOrEven), -1), 1))
                return total + d * d
            }
        }.min()!
        let best = 10 * log10(signal / scanned)
        let absmax = try GridQuantizer(bits: 1, startFactors: Self.factors, rmsStart: false, scaleType: .f32)
            .quantize(weights, rows: 1, columns: 4096)
        let rms = try GridQuantizer(bits: 1, scaleType: .f32).quantize(weights, rows: 1, columns: 4096)
        XCTAssertLessThan(absmax.sqnr, best - 0.5)
        XCTAssertGreaterThan(rms.sqnr, best - 0.05)
    }

    /// Codes packed by CodePacker and decoded by Dequantizer give values whose squared error is the reported one,
    /// bit for bit (per group, in the kernels' lane order); f16 scales are f16 values; a zero row decodes to +0 with
    /// scale 0, constant rows exactly.
    func testDecodedErrorEqualsReported() throws {
        let fixture = try QuantizerFixture()
        for name in QuantizerFixture.cases {
            let (w, rows, columns, _) = try fixture.weights(name)
            for (key, quantizer) in Self.configs {
                let result = try quantizer.quantize(w, rows: rows, columns: columns)
                let decoded = try decode(result)
                let group = quantizer.groupSize ?? columns
                for row in 0 ..< rows {
                    var sum = 0.0
                    for start in stride(from: row * columns, to: (row + 1) * columns, by: group) {
                        let end = Swift.min(start + group, (row + 1) * columns)
                        sum += laneSum((start ..< end).map { (Double(w[$0]) - Double(decoded[$0])) * (Double(w[$0]) - Double(decoded[$0])) })
                    }
                    XCTAssertEqual(sum, result.rowErrors[row], "\(name).\(key) row \(row)")
                }
                guard case let .grid(scales, groupSize, nil) = result.values else { return XCTFail("not a grid") }
                XCTAssertEqual(groupSize, quantizer.groupSize)
                XCTAssertEqual(scales.count, rows * ((columns + group - 1) / group))
                if quantizer.scaleType == .f16 {
                    XCTAssertEqual(scales, scales.map { Float(Float16($0)) }, "\(name).\(key): scales are f16 values")
                }
                if name == "heavy" {
                    XCTAssertEqual(scales[3 * scales.count / rows], 0)
                    XCTAssertEqual(result.rowErrors[3], 0)
                    XCTAssertTrue(result.codes[3 * columns ..< 4 * columns].allSatisfy { Int($0) == quantizer.half })
                    if quantizer.scaleType == .f32 {
                        XCTAssertEqual(result.rowErrors[7], 0, "constant row is exact")
                        XCTAssertEqual(result.rowErrors[9], 0, "constant row is exact")
                    }
                }
            }
        }
    }

    /// Balanced 1 bit on a symmetric (Gaussian) distribution uses -1, 0 and +1 in every row; balanced 8 bits uses
    /// codes up to 256; codes stay in range.
    func testCodeRanges() throws {
        var random = SeededGenerator(seed: 77)
        let (rows, columns) = (16, 256)
        let weights = (0 ..< rows * columns).map { _ in gaussian(&random) * 0.02 }
        let result = try GridQuantizer(bits: 1).quantize(weights, rows: rows, columns: columns)
        for row in 0 ..< rows {
            XCTAssertEqual(Set(result.codes[row * columns ..< (row + 1) * columns]), [0, 1, 2], "row \(row)")
        }
        XCTAssertTrue(try GridQuantizer(bits: 3, grid: .plain).quantize(weights, rows: rows, columns: columns)
            .codes.allSatisfy { $0 < 8 })
        let wide = try GridQuantizer(bits: 8).quantize(weights, rows: rows, columns: columns)
        XCTAssertEqual(wide.levels, 257)
        XCTAssertEqual(wide.codes.max(), 256)
        XCTAssertGreaterThan(wide.sqnr, 40)
    }

    /// Same output on the caller's thread and on Parallel's threads, and with the scalar kernels, for plain,
    /// grouped and importance-weighted runs on rows whose lengths leave vector tails.
    func testThreadCountAndKernelIndependence() throws {
        var random = SeededGenerator(seed: 5)
        let (rows, columns) = (64, 203)
        let weights = (0 ..< rows * columns).map { _ in gaussian(&random) * gaussian(&random) * 0.05 }
        let importance = (0 ..< columns).map { _ in abs(gaussian(&random)) }
        for quantizer in Self.configs.values {
            for h in [nil, importance] {
                var serial = quantizer
                serial.parallel = false
                var scalar = quantizer
                scalar.vectorized = false
                let reference = try quantizer.quantize(weights, rows: rows, columns: columns, importance: h)
                XCTAssertEqual(try serial.quantize(weights, rows: rows, columns: columns, importance: h), reference)
                XCTAssertEqual(try scalar.quantize(weights, rows: rows, columns: columns, importance: h), reference)
            }
        }
    }

    /// Importance weights move the error where they are small: the weighted error is no higher than the one the
    /// unweighted search reaches (up to a local search's slack) and lower in total.
    func testImportanceWeightingLowersWeightedError() throws {
        let fixture = try QuantizerFixture()
        let (w, rows, columns, h) = try fixture.weights("importance")
        for bits in 1 ... 4 {
            let quantizer = try GridQuantizer(bits: bits, startFactors: Self.factors, scaleType: .f32)
            let weighted = try quantizer.quantize(w, rows: rows, columns: columns, importance: h)
            let plain = try quantizer.quantize(w, rows: rows, columns: columns)
            let decoded = try decode(plain)
            var totals = (0.0, 0.0)
            for row in 0 ..< rows {
                let sum = laneSum((0 ..< columns).map { i -> Double in
                    let d = Double(w[row * columns + i]) - Double(decoded[row * columns + i])
                    return Double(h![i]) * (d * d)
                })
                XCTAssertLessThanOrEqual(weighted.rowWeightedErrors![row], sum * 1.05, "b\(bits) row \(row)")
                totals.0 += weighted.rowWeightedErrors![row]
                totals.1 += sum
            }
            XCTAssertLessThan(totals.0, totals.1, "b\(bits)")
        }
    }

    /// Exact halves round to even (as numpy's rint and torch.round): at s = 0.5, 0.25 / s = 0.5 gives q = 0 and
    /// 0.75 / s = 1.5 gives q = 2; -0.25 gives q = -0 (code 2), and the largest |w| maps to the top level.
    func testHalvesRoundToEven() throws {
        let quantizer = try GridQuantizer(bits: 2, maxIterations: 0, startFactors: [1], rmsStart: false)
        let result = try quantizer.quantize([1.0, 0.25, 0.75, -0.25, -0.75, -1.0], rows: 1, columns: 6)
        XCTAssertEqual(result.values, .grid(scales: [0.5]))
        XCTAssertEqual(result.codes, [4, 2, 4, 2, 0, 0])
    }

    /// f16 storage: a scale above 65504 is stored as 65504 and the codes and error are those of 65504; f32 keeps it.
    func testF16ScaleClampedAndConsistent() throws {
        let weights: [Float] = [300_000, -150_000, 70_000, 0]
        let f16 = try GridQuantizer(bits: 2, maxIterations: 0, startFactors: [1], rmsStart: false).quantize(weights, rows: 1, columns: 4)
        XCTAssertEqual(f16.values, .grid(scales: [65504]))
        XCTAssertEqual(f16.codes, [4, 0, 3, 2]) // 300000 / 65504 = 4.6 clips to 2; -2.29 -> -2; 1.07 -> 1
        let expected = laneSum(zip(weights, [131_008, -131_008, 65504, 0] as [Float]).map { Double($0 - $1) * Double($0 - $1) })
        XCTAssertEqual(f16.rowErrors, [expected])
        let f32 = try GridQuantizer(bits: 2, maxIterations: 0, startFactors: [1], rmsStart: false, scaleType: .f32)
            .quantize(weights, rows: 1, columns: 4)
        XCTAssertEqual(f32.values, .grid(scales: [150_000]))
    }

    func testRejectsBadInput() throws {
        XCTAssertThrowsError(try GridQuantizer(bits: 0))
        XCTAssertThrowsError(try GridQuantizer(bits: 9))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, maxIterations: -1))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, startFactors: [], rmsStart: false))
        XCTAssertNoThrow(try GridQuantizer(bits: 2, startFactors: []))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, startFactors: [0]))
        XCTAssertThrowsError(try GridQuantizer(bits: 2, groupSize: 31)) {
            XCTAssertEqual($0 as? QuantizerError, .groupSizeOutOfRange(31))
        }
        XCTAssertThrowsError(try GridQuantizer(bits: 2, groupSize: 257))
        let quantizer = try GridQuantizer(bits: 2)
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3], rows: 2, columns: 2))
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3, .infinity], rows: 2, columns: 2)) {
            XCTAssertEqual($0 as? QuantizerError, .nonFinite(row: 1, column: 1))
        }
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3, 4], rows: 2, columns: 2, importance: [1]))
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3, 4], rows: 2, columns: 2, importance: [1, -1]))
        XCTAssertEqual(try quantizer.quantize([], rows: 0, columns: 5).codes, [])
        let empty = try quantizer.quantize([], rows: 3, columns: 0)
        XCTAssertEqual(empty.rowErrors, [0, 0, 0])
    }
}
