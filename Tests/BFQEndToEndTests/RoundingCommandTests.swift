import Foundation
import XCTest
@testable import BFQCore

/// `bfq quantize --rounding gptq` and bias correction on the trained tiny UNet.
final class RoundingCommandTests: XCTestCase {
    private let model = BFQProcess.path("unet/tiny_unet.ldm.safetensors")

    private func quantize(_ extra: [String], environment: [String: String] = [:]) throws -> (run: BFQRun, file: String) {
        let output = try BFQProcess.temporaryDirectory() + "/q.bfq"
        let run = try BFQProcess.run(["quantize", model, output, "--bits", "1.99", "--json", "--no-fsync"] + extra,
                                     environment: environment)
        return (run, output)
    }

    /// A plan file for the tiny UNet from `bfq plan --bits 2`, every layer (and `extra` ones) set to `choice(index)`'s
    /// encoding members.
    private func planFile(extra: [String] = [], _ choice: (Int) -> [JSONMember]) throws -> String {
        let path = try BFQProcess.temporaryDirectory() + "/plan.json"
        XCTAssertEqual(try BFQProcess.run(["plan", model, "--bits", "2", "-o", path]).status, 0)
        let parsed = try JSONParser.parse(try String(contentsOfFile: path, encoding: .utf8))
        guard case let .object(members) = parsed else { return try XCTUnwrap(nil, "the plan is not a JSON object: \(parsed)") }
        let plan = JSONValue.object(members.map { member in
            guard member.key == "layers", case let .array(layers) = member.value else { return member }
            let names = layers.map { $0["name"]! } + extra.map { JSONValue.string($0) }
            return JSONMember("layers", .array(names.enumerated().map { index, name in .object([JSONMember("name", name)] + choice(index)) }))
        })
        try JSONWriter.pretty(plan).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testGPTQGivesTheSameBytesOnOneAndTwoThreadsAndTheFileVerifiesAgainstItsSource() throws {
        let one = try quantize(["--rounding", "gptq"], environment: ["BFQ_THREADS": "1"])
        let two = try quantize(["--rounding", "gptq"], environment: ["BFQ_THREADS": "2"])
        XCTAssertEqual(one.run.status, 0, one.run.stderr)
        XCTAssertEqual(two.run.status, 0, two.run.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: one.file)), try Data(contentsOf: URL(fileURLWithPath: two.file)))
        let verify = try BFQProcess.run(["verify", one.file, "--against", model])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
    }

    func testNoLayerEndsWorseOnHeldOutPositionsThanNearestRounding() throws {
        let (run, _) = try quantize([])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONParser.parse(run.stdout)
        var methods: [String: Int] = [:]
        for tensor in try XCTUnwrap(report["tensors"]?.arrayValue) {
            guard let rounding = tensor["rounding"] else { continue }
            let method = try XCTUnwrap(rounding["method"]?.stringValue)
            methods[method, default: 0] += 1
            guard let sqnr = rounding["held_out_sqnr_db"] else { continue }
            guard case let .double(kept)? = sqnr["kept"], case let .double(nearest)? = sqnr["nearest"] else { continue }
            XCTAssertGreaterThanOrEqual(kept, nearest, "\(tensor["name"]!)")
        }
        // conv_in, conv_out and every allocated layer are calibrated, the time layers on every timestep of the schedule.
        XCTAssertEqual(methods.values.reduce(0, +), 282)
        XCTAssertGreaterThan(methods["gptq"] ?? 0, 200)
        XCTAssertFalse(run.stderr.contains("rounded to nearest instead of GPTQ"), run.stderr)
    }

    func testBiasCorrectionChangesExactlyTheBiasesItReports() throws {
        let plain = try quantize(["--rounding", "nearest"])
        let corrected = try quantize(["--rounding", "nearest", "--bias-correction"])
        XCTAssertEqual(plain.run.status, 0, plain.run.stderr)
        XCTAssertEqual(corrected.run.status, 0, corrected.run.stderr)
        let report = try JSONParser.parse(corrected.run.stdout)
        var correctedWeights = Set<String>()
        for tensor in try XCTUnwrap(report["tensors"]?.arrayValue) where tensor["rounding"]?["bias_corrected"] == .bool(true) {
            XCTAssertEqual(tensor["rounding"]?["method"], .string("nearest"))
            correctedWeights.insert(try XCTUnwrap(tensor["name"]?.stringValue))
        }
        XCTAssertGreaterThan(correctedWeights.count, 20)
        let before = try CheckpointFile.open(plain.file), after = try CheckpointFile.open(corrected.file)
        var changed = 0
        for entry in after.tensors where entry.name.hasSuffix(".bias") {
            let old = try before.floats(of: XCTUnwrap(before.tensors.first { $0.name == entry.name }))
            let new = try after.floats(of: entry)
            let weight = String(entry.name.dropLast("bias".count)) + "weight"
            // A value projection's mean error lands in the output projection's bias, which may itself be uncorrected.
            let folded = weight.hasSuffix(".to_out.0.weight") && correctedWeights.contains(weight.replacingOccurrences(of: ".to_out.0.", with: ".to_v."))
            XCTAssertEqual(old != new, correctedWeights.contains(weight) || folded, entry.name)
            if old != new { changed += 1 }
        }
        XCTAssertGreaterThan(changed, 20)
    }

    func testACalibrationTooSmallForHFallsBackToNearestWithAWarningAndAFiniteModel() throws {
        let (run, file) = try quantize(["--calibration-samples", "1", "--calibration-size", "1x1", "--calibration-timesteps", "981"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("rounded to nearest instead of GPTQ (1 calibration positions, none held out to check it)"),
                      run.stderr)
        // Only the cross-attention keys and values (77 text tokens) and the time layers (every timestep) keep enough
        // positions for GPTQ.
        let report = try JSONParser.parse(run.stdout)
        for tensor in try XCTUnwrap(report["tensors"]?.arrayValue) {
            guard let method = tensor["rounding"]?["method"]?.stringValue, let name = tensor["name"]?.stringValue else { continue }
            if method == "gptq" {
                XCTAssertTrue(["attn2.to_k.weight", "attn2.to_v.weight", "emb_layers.1.weight", "time_embed.0.weight",
                               "time_embed.2.weight"].contains { name.hasSuffix($0) }, name)
            }
        }
        let eval = try BFQProcess.run(["eval", model, file, "--config", BFQProcess.path("unet/config.json"), "--size", "8x8", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        guard case let .double(sqnr)? = try JSONParser.parse(eval.stdout)["sqnr_db"] else { return XCTFail(eval.stdout) }
        XCTAssertTrue(sqnr.isFinite)
    }

    func testEveryEncodingAndThePapersRecipeAreRoundedByGPTQAndVerify() throws {
        // A plan of per-row tables and grids with group scales, alternating, and the paper's recipe.
        let plan = try planFile { index in
            [JSONMember("bits", .int(2))] + (index % 2 == 0 ? [JSONMember("encoding", .string("palette"))]
                : [JSONMember("encoding", .string("grid")), JSONMember("group_size", .int(32))])
        }
        let directory = try BFQProcess.temporaryDirectory()
        for (source, encodings) in [(["--plan", plan], ["2-bit palette", "2-bit grid/32"]),
                                    (["--plan", "bitsfusion-sd15", "--cache-timesteps", "50"], ["1-bit grid", "2-bit grid", "3-bit grid"])] {
            let output = directory + "/q.bfq"
            let run = try BFQProcess.run(["quantize", model, output, "--json", "--no-fsync"] + source)
            XCTAssertEqual(run.status, 0, run.stderr)
            var kept: [String: Int] = [:]
            for tensor in try XCTUnwrap(try JSONParser.parse(run.stdout)["tensors"]?.arrayValue)
                where tensor["rounding"]?["method"] == .string("gptq") {
                kept[try XCTUnwrap(tensor["encoding"]?.stringValue), default: 0] += 1
            }
            for encoding in encodings { XCTAssertGreaterThan(kept[encoding] ?? 0, 5, "\(source) \(encoding): \(kept)") }
            let verify = try BFQProcess.run(["verify", output, "--against", model])
            XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        }
    }

    func testSettingsThatMakeNoSenseTogetherAreUsageErrors() throws {
        // A plan that keeps every layer raw, conv_in and conv_out included.
        let raw = try planFile(extra: ["conv_in", "conv_out"]) { _ in
            [JSONMember("bits", .int(16)), JSONMember("encoding", .string("raw"))]
        }
        for (extra, message) in [(["--rounding", "nearest", "--damping", "0.1"], "--damping is a GPTQ setting"),
                                 (["--damping", "0"], "--damping must be above 0"),
                                 (["--hessian-block", "0"], "--hessian-block must be"),
                                 (["--rounding", "gptq", "--plan", raw], "need quantized layers")] {
            let output = try BFQProcess.temporaryDirectory() + "/q.bfq"
            let arguments = ["quantize", model, output] + extra
            let run = try BFQProcess.run(arguments)
            XCTAssertEqual(run.status, 64, "\(extra): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(message), "\(extra): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(extra)")
        }
    }
}
