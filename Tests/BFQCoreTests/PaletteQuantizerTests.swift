import XCTest
@testable import BFQCore
import BFQTestSupport

/// PaletteQuantizer against the numpy reference of tools/testdata/quantizer_cases.py, and properties that can fail.
final class PaletteQuantizerTests: XCTestCase {
    private static let bits = [1, 2, 3, 8]
    private static let factors: [Float] = [1, 0.9, 0.8, 0.7, 0.6, 0.5]

    /// AVX2 and scalar kernels both give the reference's codes, f16 entries and errors bit for bit.
    func testMatchesNumpyReferenceExactly() throws {
        let fixture = try QuantizerFixture()
        for name in QuantizerFixture.cases {
            let (w, rows, columns, h) = try fixture.weights(name)
            for bits in Self.bits {
                for vectorized in [true, false] {
                    var quantizer = try PaletteQuantizer(bits: bits, startFactors: Self.factors)
                    quantizer.vectorized = vectorized
                    let result = try quantizer.quantize(w, rows: rows, columns: columns, importance: h)
                    try fixture.check(result, "\(name).p\(bits)", parameters: "entries", "\(name) p\(bits) vectorized \(vectorized)")
                    XCTAssertEqual(result.parameterType, .f16)
                }
            }
        }
    }

    /// Entries are ascending f16 values, every code names the nearest entry (ties to the lower), and decoding through
    /// CodePacker and Dequantizer gives the reported error bit for bit.
    func testCodesAreNearestStoredEntries() throws {
        let fixture = try QuantizerFixture()
        for name in QuantizerFixture.cases {
            let (w, rows, columns, _) = try fixture.weights(name)
            for bits in Self.bits {
                let result = try PaletteQuantizer(bits: bits).quantize(w, rows: rows, columns: columns)
                guard case let .palette(entries, true) = result.values else { return XCTFail("not a per-row palette") }
                let levels = result.levels
                XCTAssertEqual(entries.count, rows * levels)
                XCTAssertEqual(entries, entries.map { Float(Float16($0)) }, "\(name) p\(bits): f16 values")
                let decoded = try decode(result)
                for row in 0 ..< rows {
                    let table = entries[row * levels ..< (row + 1) * levels]
                    XCTAssertEqual(Array(table), table.sorted(), "\(name) p\(bits) row \(row)")
                    for i in row * columns ..< (row + 1) * columns {
                        let distances = table.map { abs(Double(w[i]) - Double($0)) }
                        let nearest = distances.firstIndex(of: distances.min()!)!
                        XCTAssertEqual(Double(decoded[i]), Double(table[table.startIndex + nearest]),
                                       "\(name) p\(bits) element \(i)")
                    }
                    let sum = laneSum((row * columns ..< (row + 1) * columns).map {
                        (Double(w[$0]) - Double(decoded[$0])) * (Double(w[$0]) - Double(decoded[$0]))
                    })
                    XCTAssertEqual(sum, result.rowErrors[row], "\(name) p\(bits) row \(row)")
                }
            }
        }
    }

    /// Lloyd iterations from the grid levels lower the error: at 1 to 3 bits the palette's (weighted, when importance
    /// is given) error is below the balanced grid's with f32 scales, on every case.
    func testBeatsTheGridItStartsFrom() throws {
        let fixture = try QuantizerFixture()
        for name in QuantizerFixture.cases {
            let (w, rows, columns, h) = try fixture.weights(name)
            for bits in 1 ... 3 {
                let grid = try GridQuantizer(bits: bits, scaleType: .f32).quantize(w, rows: rows, columns: columns, importance: h)
                let palette = try PaletteQuantizer(bits: bits).quantize(w, rows: rows, columns: columns, importance: h)
                let measure = { (r: QuantizationResult) in r.rowWeightedErrors?.reduce(0, +) ?? r.error }
                XCTAssertLessThan(measure(palette), measure(grid), "\(name) b\(bits)")
            }
        }
    }

    /// A grid result passed as the start gives the same output as the palette's own grid run; one that does not fit
    /// is refused.
    func testStartFromGridResult() throws {
        var random = SeededGenerator(seed: 11)
        let (rows, columns) = (24, 300)
        let w = (0 ..< rows * columns).map { _ in gaussian(&random) * 0.03 }
        let quantizer = try PaletteQuantizer(bits: 2)
        let grid = try GridQuantizer(bits: 2, scaleType: .f32).quantize(w, rows: rows, columns: columns)
        XCTAssertEqual(try quantizer.quantize(w, rows: rows, columns: columns, start: grid),
                       try quantizer.quantize(w, rows: rows, columns: columns))
        let wrongBits = try GridQuantizer(bits: 3).quantize(w, rows: rows, columns: columns)
        XCTAssertThrowsError(try quantizer.quantize(w, rows: rows, columns: columns, start: wrongBits))
        let grouped = try GridQuantizer(bits: 2, groupSize: 64).quantize(w, rows: rows, columns: columns)
        XCTAssertThrowsError(try quantizer.quantize(w, rows: rows, columns: columns, start: grouped)) {
            XCTAssertEqual($0 as? QuantizerError, .startMismatch("it needs one grid scale per row"))
        }
    }

    /// Same output serially, in parallel, and with the scalar kernels.
    func testThreadCountAndKernelIndependence() throws {
        var random = SeededGenerator(seed: 3)
        let (rows, columns) = (40, 517)
        let w = (0 ..< rows * columns).map { _ in gaussian(&random) * gaussian(&random) * 0.05 }
        let h = (0 ..< columns).map { _ in abs(gaussian(&random)) }
        for bits in [1, 3, 5] {
            for importance in [nil, h] {
                let quantizer = try PaletteQuantizer(bits: bits)
                var serial = quantizer
                serial.parallel = false
                var scalar = quantizer
                scalar.vectorized = false
                let reference = try quantizer.quantize(w, rows: rows, columns: columns, importance: importance)
                XCTAssertEqual(try serial.quantize(w, rows: rows, columns: columns, importance: importance), reference)
                XCTAssertEqual(try scalar.quantize(w, rows: rows, columns: columns, importance: importance), reference)
            }
        }
    }

    func testRejectsBadInput() throws {
        XCTAssertThrowsError(try PaletteQuantizer(bits: 0))
        XCTAssertThrowsError(try PaletteQuantizer(bits: 9))
        XCTAssertThrowsError(try PaletteQuantizer(bits: 2, maxIterations: -1))
        let quantizer = try PaletteQuantizer(bits: 2)
        XCTAssertThrowsError(try quantizer.quantize([1, .nan, 3, 4], rows: 2, columns: 2)) {
            XCTAssertEqual($0 as? QuantizerError, .nonFinite(row: 0, column: 1))
        }
        XCTAssertThrowsError(try quantizer.quantize([1, 2, 3], rows: 1, columns: 2))
        XCTAssertEqual(try quantizer.quantize([], rows: 2, columns: 0).rowErrors, [0, 0])
    }
}
