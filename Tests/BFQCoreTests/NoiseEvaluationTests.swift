import Foundation
import XCTest
@testable import BFQCore

/// `bfq eval`'s measurements.
final class NoiseEvaluationTests: XCTestCase {
    private func path(_ name: String) -> String { TestFiles.path("unet/" + name) }

    func testErrorSumsFollowTheirDefinitions() throws {
        var sums = NoiseErrorSums()
        sums.add(reference: [1, 2, 3, 4], candidate: [1, 2, 3, 5], alphaBar: 0.25)
        sums.add(reference: [0, 1, 0, 1], candidate: [0, 1, 0, 0], alphaBar: 0.5)
        let error = sums.error
        XCTAssertEqual(error.mse, 2.0 / 8)
        XCTAssertEqual(try XCTUnwrap(error.sqnrDB), 10 * log10(32.0 / 2), accuracy: 1e-12)
        XCTAssertEqual(error.cosine, 35 / (32.0 * 40).squareRoot(), accuracy: 1e-15)
        // (1 - abar) / abar x ||difference||^2, averaged over the two predictions: (3 x 1 + 1 x 1) / 2.
        XCTAssertEqual(error.latentError, 2, accuracy: 1e-15)
    }

    func testTheScheduleIsDiffusers() {
        // DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod at 0, 500, 999;
        // diffusers multiplies in f32 (about 1e-6 relative by t = 999), bfq in f64.
        for (t, expected) in [(0, 0.9991499781608582), (500, 0.27633246779441833), (999, 0.00466009508818388)] {
            XCTAssertEqual(NoiseSchedule.alphaBars[t], expected, accuracy: 1.5e-6 * expected)
        }
    }

    func testAModelAgainstItselfGivesExactlyZero() throws {
        let unet = try LoadedUNet.open(path("tiny_unet.ldm.ckpt"))
        var options = EvaluationOptions()
        (options.height, options.width, options.samples, options.timesteps) = (8, 8, 1, [999, 0])
        let report = try NoiseEvaluation.run(reference: unet, candidate: try LoadedUNet.open(path("tiny_unet.diffusers.safetensors")),
                                             options: options)
        for error in [report.overall, report.overallGuided] + report.rows.map(\.conditional.error) {
            XCTAssertEqual(error.mse, 0)
            XCTAssertNil(error.sqnrDB)
            XCTAssertEqual(error.cosine, 1)
            XCTAssertEqual(error.latentError, 0)
        }
        XCTAssertEqual(report.json["sqnr_db"], .null)
        XCTAssertEqual(report.rows.map(\.timestep), [999, 0])
    }

    func testErrorFallsAsBitsRise() throws {
        let directory = try TestFiles.temporaryDirectory()
        let reference = try LoadedUNet.open(path("tiny_unet.ldm.safetensors"))
        var options = EvaluationOptions()
        (options.height, options.width) = (16, 16)
        var sqnrs: [Double] = []
        for bits in [2, 4, 8] {
            let output = directory + "/u\(bits).bfq"
            var quantization = QuantizationOptions()
            quantization.plan = "uniform:\(bits)"
            let quantizer = try ModelQuantizer(try CheckpointFile.open(path("tiny_unet.ldm.safetensors")), options: quantization)
            _ = try quantizer.write(plan: try quantizer.makePlan(), to: OutputTarget(path: output))
            let report = try NoiseEvaluation.run(reference: reference, candidate: try LoadedUNet.open(output, config: path("config.json")),
                                                 options: options)
            XCTAssertEqual(report.rows.map(\.timestep), EvaluationOptions.defaultTimesteps)
            sqnrs.append(try XCTUnwrap(report.overall.sqnrDB))
            XCTAssertGreaterThan(report.overall.cosine, 0.5)
        }
        XCTAssertLessThan(sqnrs[0], sqnrs[1])
        XCTAssertLessThan(sqnrs[1], sqnrs[2])
        XCTAssertGreaterThan(sqnrs[2], 35)
    }

    func testDefaultTimestepsFollowTheCaches() throws {
        final class Cached: UNetWeightSource {
            let path = "cached.bfq"
            let shapes: [String: [Int]] = [:]
            let timeFeatures: TimeFeatureTable?
            init(_ timesteps: [Int]) { timeFeatures = TimeFeatureTable(timesteps: timesteps, layers: [], values: []) }
            func floats(_ name: String, shape: [Int]) throws -> [Float] { [] }
            func unreadTensors() -> [String] { [] }
        }
        XCTAssertEqual(try NoiseEvaluation.timesteps(nil, caches: [Cached(Array(stride(from: 1, through: 981, by: 20)))]),
                       EvaluationOptions.defaultTimesteps)
        XCTAssertEqual(try NoiseEvaluation.timesteps(nil, caches: [Cached([0, 100, 200, 300, 400, 999])]), [999, 400, 200, 100, 0])
        XCTAssertEqual(try NoiseEvaluation.timesteps(nil, caches: [Cached([5, 7]), Cached([7, 9])]), [7])
        XCTAssertThrowsError(try NoiseEvaluation.timesteps([500], caches: [Cached([501])])) { error in
            XCTAssertEqual(error as? UNetError, .timestepNotCached(path: "cached.bfq", timestep: 500, cached: [501]))
        }
    }
}
