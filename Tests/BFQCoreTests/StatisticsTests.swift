import Foundation
import XCTest
@testable import BFQCore

/// `stats` values against numpy / scipy.stats on the same tensors (testdata/safetensors/dtypes.stats.json).
final class StatisticsTests: XCTestCase {
    func testMatchesNumpyAndScipy() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path("safetensors/dtypes.safetensors"))
        let expected = try JSONParser.parse(String(decoding: Data(contentsOf: URL(fileURLWithPath:
            TestFiles.path("safetensors/dtypes.stats.json"))), as: UTF8.self))
        let report = try StatisticsReport(checkpoint)
        XCTAssertEqual(report.rows.count, checkpoint.tensors.count)
        for (tensor, stats) in report.rows {
            let want = try XCTUnwrap(expected[tensor.name], tensor.name)
            XCTAssertEqual(Int64(stats.count), want["count"]?.intValue, tensor.name)
            XCTAssertEqual(Int64(stats.nanCount), want["nan_count"]?.intValue, tensor.name)
            XCTAssertEqual(Int64(stats.infCount), want["inf_count"]?.intValue, tensor.name)
            let pairs: [(String, Double)] = [("min", stats.min), ("max", stats.max), ("mean", stats.mean), ("std", stats.std),
                                             ("absmax", stats.absmax), ("zero_fraction", stats.zeroFraction),
                                             ("skewness", stats.skewness), ("kurtosis", stats.kurtosis)]
            for (field, value) in pairs {
                switch want[field] {
                case .null?: XCTAssertTrue(value.isNaN, "\(tensor.name).\(field) = \(value), expected none")
                case let .double(number)?:
                    XCTAssertEqual(value, number, accuracy: 1e-12 * Swift.max(1, Swift.abs(number)), "\(tensor.name).\(field)")
                case let .int(number)?: XCTAssertEqual(value, Double(number), "\(tensor.name).\(field)")
                default: XCTFail("\(tensor.name).\(field) missing in expectations")
                }
            }
        }
    }

    func testBlockMergeEqualsDirectComputation() {
        // Values spread over several blocks with a large offset, where naive sums of powers lose precision.
        let count = TensorStatistics.blockSize * 3 + 17
        let values = (0 ..< count).map { 1e6 + Double(($0 * 7919) % 1000) / 100 }
        let stats = values.withUnsafeBytes { TensorStatistics(bytes: $0, dtype: .f64) }
        let mean = values.reduce(0, +) / Double(count)
        let m2 = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(count)
        let m3 = values.reduce(0) { $0 + pow($1 - mean, 3) } / Double(count)
        let m4 = values.reduce(0) { $0 + pow($1 - mean, 4) } / Double(count)
        XCTAssertEqual(stats.mean, mean, accuracy: 1e-9)
        XCTAssertEqual(stats.std, m2.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(stats.skewness, m3 / pow(m2, 1.5), accuracy: 1e-9)
        XCTAssertEqual(stats.kurtosis, m4 / (m2 * m2) - 3, accuracy: 1e-9)
    }
}

final class TensorDifferenceTests: XCTestCase {
    func testNaNAgainstNaNAndEqualInfinitiesAreEqual() {
        let a: [Float] = [1, .nan, .infinity, -2]
        let same = a.withUnsafeBytes { x in a.withUnsafeBytes { y in TensorDifference(reference: x, .f32, candidate: y, .f32) } }
        XCTAssertEqual(same.noiseEnergy, 0)
        XCTAssertEqual(same.maxAbsError, 0)
        XCTAssertEqual(same.sqnrDB, .infinity)
        let b: [Float] = [1, 3, .infinity, -2]
        let differ = a.withUnsafeBytes { x in b.withUnsafeBytes { y in TensorDifference(reference: x, .f32, candidate: y, .f32) } }
        XCTAssertTrue(differ.maxAbsError.isNaN)
    }

    func testSQNRAndMaxError() {
        let a: [Double] = [3, 4], b: [Double] = [3, 3.5]
        let d = a.withUnsafeBytes { x in b.withUnsafeBytes { y in TensorDifference(reference: x, .f64, candidate: y, .f64) } }
        XCTAssertEqual(d.maxAbsError, 0.5)
        XCTAssertEqual(d.sqnrDB, 10 * log10(25 / 0.25), accuracy: 1e-12)
    }
}
