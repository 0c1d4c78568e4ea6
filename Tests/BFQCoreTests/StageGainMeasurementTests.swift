import Foundation
import XCTest
@testable import BFQCore

/// The fast output-space measurement against the exhaustive one on the trained tiny UNet.
final class StageGainMeasurementTests: XCTestCase {
    func testInterpolationIsLogLogBetweenProbesAndProportionalBeyond() {
        let points: [(x: Double, y: Double)] = [(100, 50), (1, 2)]
        XCTAssertEqual(StageGainMeasurement.interpolate(points, at: 100), 50, accuracy: 1e-12)
        XCTAssertEqual(StageGainMeasurement.interpolate(points, at: 1), 2, accuracy: 1e-12)
        XCTAssertEqual(StageGainMeasurement.interpolate(points, at: 10), 10, accuracy: 1e-12)
        XCTAssertEqual(StageGainMeasurement.interpolate(points, at: 1000), 500, accuracy: 1e-9)
        XCTAssertEqual(StageGainMeasurement.interpolate(points, at: 0.1), 0.2, accuracy: 1e-12)
        XCTAssertEqual(StageGainMeasurement.interpolate([(4, 0), (1, 0)], at: 2), 0)
        XCTAssertEqual(StageGainMeasurement.interpolate([], at: 2), 0)
    }

    func testFastPredictionsTrackTheExhaustiveReruns() throws {
        func measurements(_ sensitivity: QuantizationOptions.Sensitivity) throws -> [String: LayerMeasurement] {
            var options = QuantizationOptions()
            options.sensitivity = sensitivity
            (options.calibration.samples, options.calibration.height, options.calibration.width) = (2, 8, 8)
            options.calibration.timesteps = [981, 21]
            options.candidates = [.grid(1), .grid(3), .grid(6), .palette(2), .raw16]
            options.bits = 3
            let quantizer = try ModelQuantizer(try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors")), options: options)
            _ = try quantizer.makePlan()
            return Dictionary(uniqueKeysWithValues: try XCTUnwrap(quantizer.measurements).map { ($0.layer, $0) })
        }
        let (fast, exhaustive) = (try measurements(.output), try measurements(.outputExhaustive))
        XCTAssertEqual(Set(fast.keys), Set(exhaustive.keys))
        var logRatios: [Double] = [], checkedExactly = 0
        for (layer, measured) in fast {
            let reference = try XCTUnwrap(exhaustive[layer])
            XCTAssertEqual(measured.candidates.map(\.weightDistortion), reference.candidates.map(\.weightDistortion), layer)
            for (a, b) in zip(measured.candidates, reference.candidates) where a.distortion > 0 && b.distortion > 0 {
                logRatios.append(log10(a.distortion / b.distortion))
            }
            // A stage that reads only this layer: the 3-bit probe's prediction is its rerun, exactly.
            if layer.hasSuffix("samplers.0.conv") {
                let a = try XCTUnwrap(measured.candidates.first { $0.choice == .grid(3) })
                let b = try XCTUnwrap(reference.candidates.first { $0.choice == .grid(3) })
                XCTAssertEqual(a.distortion, b.distortion, accuracy: 1e-9 * b.distortion, layer)
                checkedExactly += 1
            }
        }
        XCTAssertEqual(checkedExactly, 6)
        logRatios.sort()
        let n = logRatios.count
        XCTAssertGreaterThan(n, 1000)
        // log10(predicted / rerun): unbiased, and 80% of the predictions within a factor of 3 (a wrong gain is off by
        // orders of magnitude: gains differ by up to 10^6 between layers).
        let (median, p10, p90) = (logRatios[n / 2], logRatios[n / 10], logRatios[9 * n / 10])
        XCTAssertLessThan(abs(median), 0.1, "median \(median)")
        XCTAssertGreaterThan(p10, -0.5, "10th percentile \(p10)")
        XCTAssertLessThan(p90, 0.5, "90th percentile \(p90)")
    }
}
