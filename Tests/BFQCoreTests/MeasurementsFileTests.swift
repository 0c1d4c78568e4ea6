import Foundation
import XCTest
@testable import BFQCore

/// Measure once, allocate many times: a saved measurement reads back as it was, reallocates to the plans measuring
/// gives, and is refused, naming what differs, for another model, naming, candidate set or a damaged file.
final class MeasurementsFileTests: XCTestCase {
    private func path(_ name: String) -> String { TestFiles.path("unet/" + name) }

    private func measured(_ model: String = "tiny_unet.ldm.safetensors", bits: Double = 2.5,
                          configure: (inout QuantizationOptions) -> Void = { _ in }) throws -> (ModelQuantizer, QuantizationPlan, String) {
        var options = QuantizationOptions()
        options.bits = bits
        configure(&options)
        let quantizer = try ModelQuantizer(try CheckpointFile.open(path(model)), options: options)
        let plan = try quantizer.makePlan()
        let file = try TestFiles.temporaryDirectory() + "/measurements.json"
        try quantizer.measurementsFile().text().write(toFile: file, atomically: false, encoding: .utf8)
        return (quantizer, plan, file)
    }

    private func quantizer(_ model: String, measurements: String, bits: Double,
                           configure: (inout QuantizationOptions) -> Void = { _ in }) throws -> ModelQuantizer {
        var options = QuantizationOptions()
        options.bits = bits
        options.measurements = measurements
        configure(&options)
        return try ModelQuantizer(try CheckpointFile.open(path(model)), options: options)
    }

    /// The default measurement at 2.5 bits, made once for the tests that only read it.
    nonisolated(unsafe) private static var shared: (ModelQuantizer, QuantizationPlan, String)?

    private func sharedMeasurement() throws -> (ModelQuantizer, QuantizationPlan, String) {
        if let shared = Self.shared { return shared }
        let made = try measured()
        Self.shared = made
        return made
    }

    func testAFileReadsBackAndReallocatesAsMeasuringDoes() throws {
        let (original, plan, file) = try sharedMeasurement()
        let loaded = try MeasurementsFile.load(file)
        XCTAssertEqual(loaded.layers, original.measurements)
        XCTAssertEqual(loaded.candidates, QuantizationOptions.defaultCandidates)
        XCTAssertEqual(loaded.naming, .ldm)
        XCTAssertEqual(loaded.sensitivity, .weight)
        XCTAssertNil(loaded.calibration)
        XCTAssertEqual(loaded.sourceSHA256, SourceDigest.sha256(of: try MappedFile(path: path("tiny_unet.ldm.safetensors"))))
        // The same budget gives the same plan; another budget, the plan measuring at that budget gives.
        XCTAssertEqual(try quantizer("tiny_unet.ldm.safetensors", measurements: file, bits: 2.5).makePlan().choices, plan.choices)
        let (_, lower, _) = try measured(bits: 1.8)
        let reallocated = try quantizer("tiny_unet.ldm.safetensors", measurements: file, bits: 1.8)
        XCTAssertEqual(try reallocated.makePlan().choices, lower.choices)
        XCTAssertNotEqual(lower.choices, plan.choices)
    }

    func testEveryChangedByteAndEveryCutIsRefused() throws {
        let (_, _, file) = try sharedMeasurement()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        var generator = SeededGenerator(seed: 11)
        var variants = Mutations.truncations(of: bytes, parts: 16)
        for _ in 0 ..< 24 {
            var changed = bytes
            let index = Int(generator.next() % UInt64(bytes.count))
            // A digit stays a digit (the JSON still parses), anything else becomes a space or a letter.
            changed[index] = changed[index] >= 0x30 && changed[index] <= 0x39 ? 0x30 + (changed[index] - 0x30 + 1) % 10 : 0x61
            if changed != bytes { variants.append(changed) }
        }
        for variant in variants {
            let damaged = try TestFiles.temporaryDirectory() + "/damaged.json"
            try Data(variant).write(to: URL(fileURLWithPath: damaged))
            XCTAssertThrowsError(try MeasurementsFile.load(damaged)) { error in
                guard case QuantizationError.invalidMeasurements = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testAnotherNamingModelOrCandidateSetIsRefusedNamingIt() throws {
        let (_, _, file) = try sharedMeasurement()
        func refusal(_ model: String, _ configure: (inout QuantizationOptions) -> Void = { _ in }) throws -> String {
            do {
                _ = try quantizer(model, measurements: file, bits: 2.5, configure: configure).makePlan()
            } catch let error as QuantizationError {
                guard case let .measurementsMismatch(_, reason) = error else { return "wrong error: \(error)" }
                return reason
            }
            return "accepted"
        }
        XCTAssertEqual(try refusal("tiny_unet.diffusers.safetensors"),
                       "measured on ldm names, \(path("tiny_unet.diffusers.safetensors")) has diffusers names")
        XCTAssertTrue(try refusal("tiny_unet.ldm.ckpt").hasPrefix("measured on another model (SHA-256 "))
        XCTAssertEqual(try refusal("tiny_unet.ldm.safetensors") { $0.candidates.removeAll { $0.kind == .palette } },
                       "another candidate set: measured 1-bit palette, 2-bit palette, 3-bit palette, not asked for "
                       + "(repeat the measuring run's --no-palettes and --group-candidates)")
        XCTAssertEqual(try refusal("tiny_unet.ldm.safetensors") { $0.candidates.append(.grid(2, groupSize: 64)) },
                       "another candidate set: asked for 2-bit grid/64, not measured "
                       + "(repeat the measuring run's --no-palettes and --group-candidates)")
        // Time layers measured without a cache are extra; with a cache measured, they are missing without one.
        XCTAssertEqual(try quantizer("tiny_unet.ldm.safetensors", measurements: file, bits: 2.5) { $0.cacheTimesteps = [1, 501] }
            .makePlan().choices.keys.contains("time_embedding.linear_1"), false)
        let (_, _, cached) = try measured { $0.cacheTimesteps = [1, 501] }
        XCTAssertThrowsError(try quantizer("tiny_unet.ldm.safetensors", measurements: cached, bits: 2.5).makePlan()) { error in
            XCTAssertEqual("\(error)", "\(cached): these measurements do not fit: layer down_blocks.0.resnets.0.time_emb_proj was not measured "
                + "(measured with --cache-timesteps; pass it here too)")
        }
    }

    func testTheCurveRisesWithTheBudgetAndMatchesEachAllocation() throws {
        let (_, _, file) = try sharedMeasurement()
        let quantizer = try quantizer("tiny_unet.ldm.safetensors", measurements: file, bits: 2.5) { $0.eta = 0 }
        _ = try quantizer.makePlan()
        let targets = [1.5, 2.0, 2.5, 3.0, 3.5]
        let points = try quantizer.curve(targets)
        // 1.5 bits is below the tiny UNet's smallest plan (conv_in and conv_out at 8 bits weigh much in it).
        XCTAssertEqual(points.map(\.target), [2.0, 2.5, 3.0, 3.5])
        for (a, b) in zip(points, points.dropFirst()) {
            // With eta 0 the allocator minimises the summed distortion itself, so more bits never predict less SQNR.
            XCTAssertGreaterThanOrEqual(b.sqnr, a.sqnr - 1e-9)
            XCTAssertLessThanOrEqual(a.averageBits, a.target)
        }
        let at = try XCTUnwrap(points.first { $0.target == 2.5 })
        let plan = try quantizer.makePlan()
        XCTAssertEqual(at.averageBits, quantizer.averageBits(of: plan), accuracy: 1e-9)
    }
}
