import XCTest
@testable import BFQCore

/// CandidateMeasurement against quantizing every candidate with LayerQuantizer, on seeded matrices with light and heavy
/// tails, outliers, short and long rows, zero and constant rows, repeated values and exact ties.
final class CandidateMeasurementTests: XCTestCase {
    private static let candidates: [LayerChoice] = (1 ... 8).map { .grid($0) } + (1 ... 3).map { .palette($0) } + [.raw16]
    /// Largest relative difference allowed per tensor: the sums differ from the quantizers' in f64 addition order only.
    private static let tolerance = 1e-9

    /// Every candidate quantized as the writer does (grids with the default starts, each palette from the grid of
    /// its bits), and raw as sum h (w - f16(w))^2; with the signal.
    private func reference(_ w: [Float], rows: Int, columns: Int, importance: [Float]?) throws -> (distortions: [Double], signal: Double) {
        let tensor = QuantizationLayout.Tensor(entry: TensorEntry(name: "w", dtype: .f32, shape: [rows, columns], bytes: 0 ..< 4 * w.count),
                                               outputName: "w", layer: "w", role: .allocated)
        var grids: [Int: QuantizationResult] = [:]
        var signal = 0.0
        let distortions = try Self.candidates.map { choice -> Double in
            switch choice.kind {
            case .grid:
                let result = try LayerQuantizer.quantize(w, tensor: tensor, choice: choice, importance: importance)
                (grids[choice.bits], signal) = (result, result.signal)
                return LayerQuantizer.distortion(of: result)
            case .palette:
                return LayerQuantizer.distortion(of: try LayerQuantizer.quantize(w, tensor: tensor, choice: choice, importance: importance,
                                                                                start: grids[choice.bits]))
            case .raw:
                let rounded = LayerQuantizer.halves(w).map { Float(Float16(bitPattern: $0)) }
                return w.indices.reduce(0.0) { sum, i in
                    let d = Double(w[i]) - Double(rounded[i])
                    return sum + Double(importance?[i % columns] ?? 1) * (d * d)
                }
            }
        }
        return (distortions, signal)
    }

    /// Requires the measurement to match the reference, with and without importance (some of it zero).
    private func check(_ w: [Float], rows: Int, columns: Int, _ name: String, seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        var random = SeededGenerator(seed: seed)
        let h = (0 ..< columns).map { _ in Double.random(in: 0 ..< 1, using: &random) < 0.1 ? 0 : Float.random(in: 0.01 ..< 3, using: &random) }
        for importance in [nil, h] {
            let label = "\(name) \(importance == nil ? "plain" : "weighted")"
            let expected = try reference(w, rows: rows, columns: columns, importance: importance)
            let measured = try CandidateMeasurement.measure(w, rows: rows, columns: columns, importance: importance,
                                                            candidates: Self.candidates)
            XCTAssertEqual(measured.signal, expected.signal, "\(label): signal", file: file, line: line)
            for (choice, (m, e)) in zip(Self.candidates, zip(measured.distortions, expected.distortions)) {
                XCTAssertLessThanOrEqual(abs(m - e), Self.tolerance * abs(e), "\(label), \(choice): \(m) vs \(e)", file: file, line: line)
            }
        }
    }

    private func studentT(_ count: Int, _ random: inout SeededGenerator) -> [Float] {
        let z = random.gaussians(4 * count)
        return (0 ..< count).map { i in
            let chi2 = (z[4 * i + 1] * z[4 * i + 1] + z[4 * i + 2] * z[4 * i + 2] + z[4 * i + 3] * z[4 * i + 3]) / 3
            return z[4 * i] / chi2.squareRoot() * 0.02
        }
    }

    func testGaussianStudentAndOutliers() throws {
        var random = SeededGenerator(seed: 11)
        try check(random.gaussians(6 * 300).map { $0 * 0.05 }, rows: 6, columns: 300, "gaussian", seed: 1)
        try check(studentT(4 * 2880, &random), rows: 4, columns: 2880, "student-t", seed: 2)
        try check(studentT(2 * 11520, &random), rows: 2, columns: 11520, "student-t long", seed: 3)
        let outliers = random.gaussians(5 * 300).map { Double.random(in: 0 ..< 1, using: &random) < 0.01 ? $0 * 10 : $0 }
        try check(outliers, rows: 5, columns: 300, "outliers", seed: 4)
    }

    func testShortRows() throws {
        var random = SeededGenerator(seed: 12)
        for columns in [1, 7, 9] {
            try check(studentT(8 * columns, &random), rows: 8, columns: columns, "\(columns) columns", seed: UInt64(columns))
        }
    }

    /// Rows long enough for lookups at every bit width: zero, constant, a few repeated values, half zeros, and a
    /// Gaussian row.
    func testDegenerateRows() throws {
        var random = SeededGenerator(seed: 13)
        let columns = 7200
        let rows: [[Float]] = [
            [Float](repeating: 0, count: columns),
            [Float](repeating: -0.375, count: columns),
            (0 ..< columns).map { _ in Float([-0.5, -0.25, 0, 0.25, 0.5, 1][Int.random(in: 0 ..< 6, using: &random)]) },
            (0 ..< columns).map { i in i % 2 == 0 ? 0 : Float(Int.random(in: -8 ... 8, using: &random)) / 8 },
            random.gaussians(columns),
        ]
        try check(rows.flatMap { $0 }, rows: rows.count, columns: columns, "degenerate", seed: 5)
    }

    /// Exact ties of the rounding: multiples of 2^-8 with max|w| = 1, so w / s lies on a half-integer for many
    /// weights at the abs-max start of every bit width (rint's ties to even steer the search from there).
    func testRoundingTies() throws {
        var random = SeededGenerator(seed: 15)
        let (rows, columns) = (4, 7200)
        let w = (0 ..< rows * columns).map { i in
            i % columns < 2 ? Float(2 * (i % columns) - 1) : Float(Int.random(in: -256 ... 256, using: &random)) / 256
        }
        try check(w, rows: rows, columns: columns, "ties", seed: 6)
    }

    /// The same bits serially and on Parallel's threads (BFQ_THREADS, else every core).
    func testThreadCountIndependence() throws {
        var random = SeededGenerator(seed: 14)
        let (rows, columns) = (37, 700)
        let w = studentT(rows * columns, &random)
        let h = (0 ..< columns).map { _ in Float.random(in: 0 ..< 2, using: &random) }
        for importance in [nil, h] {
            let serial = try CandidateMeasurement.measure(w, rows: rows, columns: columns, importance: importance,
                                                          candidates: Self.candidates, parallel: false)
            let parallel = try CandidateMeasurement.measure(w, rows: rows, columns: columns, importance: importance,
                                                            candidates: Self.candidates)
            XCTAssertEqual(serial.distortions.map(\.bitPattern), parallel.distortions.map(\.bitPattern))
            XCTAssertEqual(serial.signal.bitPattern, parallel.signal.bitPattern)
        }
    }

    func testRejectsWhatTheQuantizersReject() throws {
        func measure(_ w: [Float], rows: Int, columns: Int, importance: [Float]? = nil, _ candidates: [LayerChoice] = [.grid(2)]) throws {
            _ = try CandidateMeasurement.measure(w, rows: rows, columns: columns, importance: importance, candidates: candidates)
        }
        XCTAssertThrowsError(try measure([1, .nan, 3, 4], rows: 2, columns: 2)) {
            XCTAssertEqual($0 as? QuantizerError, .nonFinite(row: 0, column: 1))
        }
        XCTAssertThrowsError(try measure([1, 2, 3], rows: 1, columns: 2)) {
            XCTAssertEqual($0 as? QuantizerError, .shapeMismatch(rows: 1, columns: 2, count: 3))
        }
        XCTAssertThrowsError(try measure([1, 2], rows: 1, columns: 2, importance: [1])) {
            XCTAssertEqual($0 as? QuantizerError, .importanceCountMismatch(expected: 2, found: 1))
        }
        XCTAssertThrowsError(try measure([1, 2], rows: 1, columns: 2, importance: [1, -1])) {
            XCTAssertEqual($0 as? QuantizerError, .invalidImportance(column: 1))
        }
        XCTAssertThrowsError(try measure([1, 2], rows: 1, columns: 2, [.grid(9)])) {
            XCTAssertEqual($0 as? QuantizerError, .bitsOutOfRange(9))
        }
        let empty = try CandidateMeasurement.measure([], rows: 3, columns: 0, importance: nil, candidates: Self.candidates)
        XCTAssertEqual(empty.distortions, [Double](repeating: 0, count: Self.candidates.count))
        XCTAssertEqual(empty.signal, 0)
    }
}
