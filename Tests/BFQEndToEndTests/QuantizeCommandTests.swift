import Foundation
import XCTest
@testable import BFQCore

/// `bfq plan` and `bfq quantize` on the trained tiny UNet, checked against the source weights decoded independently.
final class QuantizeCommandTests: XCTestCase {
    private let ldmSafetensors = BFQProcess.path("unet/tiny_unet.ldm.safetensors")
    private let diffusersCheckpoint = BFQProcess.path("unet/tiny_unet.diffusers.ckpt")

    /// A tensor's values as f32 (quantized tensors decoded to f32, as the report's SQNR measures them).
    private func floats(_ checkpoint: Checkpoint, _ name: String) throws -> [Double] {
        var entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, name)
        if checkpoint.format == .bfq { entry.dtype = .f32 }
        return try checkpoint.withContiguousBytes(of: entry) { bytes in
            var out = [Float](repeating: 0, count: entry.elementCount)
            out.withUnsafeMutableBytes {
                ElementConverter.convert(bytes.baseAddress!, entry.dtype, to: $0.baseAddress!, .f32, count: entry.elementCount)
            }
            return out.map(Double.init)
        }
    }

    func testQuantizeMeetsTheBudgetAndReportsTheErrorsTheFileHolds() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/q.bfq"
        let run = try BFQProcess.run(["quantize", ldmSafetensors, output, "--bits", "2.5", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONParser.parse(run.stdout)
        let container = try ContainerReader(try MappedFile(path: output))
        let average = try XCTUnwrap(container.manifest.totals?.averageBits)
        XCTAssertLessThanOrEqual(average, 2.5)
        XCTAssertGreaterThan(average, 2.49)
        XCTAssertEqual(report["totals"]?["average_bits"], .double(average))
        XCTAssertEqual(try XCTUnwrap(container.manifest.plan)["layers"]?.arrayValue?.count, 280)
        // Every quantized tensor's reported SQNR is what decoding the file gives against the source.
        let source = try CheckpointFile.open(ldmSafetensors)
        let decoded = try CheckpointFile.open(output)
        var checked = 0
        for tensor in try XCTUnwrap(report["tensors"]?.arrayValue) {
            guard case let .double(sqnr)? = tensor["sqnr_db"] else { continue }
            let name = try XCTUnwrap(tensor["name"]?.stringValue)
            let (w, q) = (try floats(source, name), try floats(decoded, name))
            let signal = w.reduce(0) { $0 + $1 * $1 }, error = zip(w, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            XCTAssertEqual(10 * log10(signal / error), sqnr, accuracy: 1e-9, name)
            checked += 1
        }
        XCTAssertEqual(checked, 282)
        XCTAssertEqual(try BFQProcess.run(["verify", output, "--against", ldmSafetensors]).status, 0)
    }

    func testPlanFileAppliesToTheOtherNamingAndGivesTheSameBytesAsAllocating() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let plan = directory + "/plan.json", svg = directory + "/plan.svg"
        let planned = try BFQProcess.run(["plan", ldmSafetensors, "--bits", "1.99", "-o", plan, "--svg", svg])
        XCTAssertEqual(planned.status, 0, planned.stderr)
        XCTAssertTrue(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<svg "))
        let saved = try JSONParser.parse(String(contentsOfFile: plan, encoding: .utf8))
        XCTAssertEqual(saved["sensitivity"], "weight")
        XCTAssertEqual(saved["allocator"], "optimal")
        XCTAssertEqual(try BFQProcess.run(["plan", ldmSafetensors, "--sensitivity", "hessian"]).status, 64)
        // The same weights under diffusers names get the same plan.
        let otherPlan = directory + "/other.json"
        XCTAssertEqual(try BFQProcess.run(["plan", diffusersCheckpoint, "--bits", "1.99", "-o", otherPlan]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: plan)), try Data(contentsOf: URL(fileURLWithPath: otherPlan)))
        // Allocating and applying the saved plan write the same tensors; only the manifest's plan record differs.
        var manifests: [ContainerManifest] = []
        for (index, arguments) in [["--bits", "1.99"], ["--plan", plan]].enumerated() {
            let output = try BFQProcess.temporaryDirectory() + "/q.bfq"
            let run = try BFQProcess.run(["quantize", ldmSafetensors, output] + arguments, environment: ["BFQ_THREADS": "\(index + 1)"])
            XCTAssertEqual(run.status, 0, run.stderr)
            manifests.append(try ContainerReader(try MappedFile(path: output)).manifest)
        }
        XCTAssertEqual(manifests[0].tensors, manifests[1].tensors)
        XCTAssertEqual(manifests[0].plan?["origin"], "allocated")
        XCTAssertEqual(manifests[1].plan?["origin"], .string(plan))
    }

    /// Group-scale candidates are measured and recorded; a plan that picks them writes grids with group scales that
    /// decode to the reported SQNR.
    func testGroupScalesFromCandidatesAndPlans() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let plan = directory + "/plan.json"
        XCTAssertEqual(try BFQProcess.run(["plan", ldmSafetensors, "--bits", "3", "--group-candidates", "32", "-o", plan]).status, 0)
        let layers = try XCTUnwrap(try JSONParser.parse(String(contentsOfFile: plan, encoding: .utf8))["layers"]?.arrayValue)
        XCTAssertTrue(layers.allSatisfy { $0["candidates"]?["2-bit grid/32"] != nil })
        let grouped = directory + "/grouped.json"
        try Data(#"{"format":"bfq-plan","layers":["#.utf8 + Data(layers.map { layer -> String in
            #"{"name":"\#(layer["name"]!.stringValue!)","bits":2,"encoding":"grid","group_size":32}"#
        }.joined(separator: ",").utf8) + Data("]}".utf8)).write(to: URL(fileURLWithPath: grouped))
        let output = directory + "/q.bfq"
        let run = try BFQProcess.run(["quantize", ldmSafetensors, output, "--plan", grouped, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let manifest = try ContainerReader(try MappedFile(path: output)).manifest
        let name = "model.diffusion_model.input_blocks.4.0.in_layers.2.weight" // 72 columns: 3 groups, the last partial
        let tensor = try XCTUnwrap(manifest.tensors.first { $0.name == name })
        guard case let .grid(levels, balanced, _, groupSize, _, _) = tensor.encoding else { return XCTFail("\(tensor.encoding)") }
        XCTAssertEqual([levels, groupSize], [5, 32])
        XCTAssertTrue(balanced)
        let (w, q) = (try floats(try CheckpointFile.open(ldmSafetensors), name), try floats(try CheckpointFile.open(output), name))
        let signal = w.reduce(0) { $0 + $1 * $1 }, error = zip(w, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        XCTAssertEqual(10 * log10(signal / error), try XCTUnwrap(tensor.sqnrDB), accuracy: 1e-9)
        XCTAssertEqual(try BFQProcess.run(["quantize", ldmSafetensors, output, "--group-candidates", "16"]).stderr,
                       "bfq: error: --group-candidates must be 32...256, not 16\n")
    }

    func testCachedTimeFeaturesVerifyAgainstTheSource() throws {
        let output = try BFQProcess.temporaryDirectory() + "/q.bfq"
        let run = try BFQProcess.run(["quantize", diffusersCheckpoint, output, "--plan", "uniform:3", "--cache-timesteps", "1,501,981"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("time-feature cache: 3 timesteps"), run.stdout)
        let verify = try BFQProcess.run(["verify", output, "--against", diffusersCheckpoint])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("48 source tensors (time embedding, time_emb_proj) are replaced by the time-feature cache"),
                      verify.stdout)
        let manifest = try ContainerReader(try MappedFile(path: output)).manifest
        XCTAssertEqual(manifest.timeFeatures?.layers.first?.name, "down_blocks.0.resnets.0.time_emb_proj")
        XCTAssertEqual(manifest.plan?["cache_timesteps"], .array([1, 501, 981]))
    }

    func testBadPlansBudgetsAndInputsAreOneLineAndLeaveNoOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let plan = directory + "/bad.json"
        try Data(#"{"format": "bfq-plan", "layers": [{"name": "down_blocks.9.nothing", "bits": 2}]}"#.utf8)
            .write(to: URL(fileURLWithPath: plan))
        let output = directory + "/q.bfq"
        let cases: [([String], String)] = [
            (["quantize", ldmSafetensors, output, "--plan", plan], "plan \(plan): layer down_blocks.9.nothing is not a conv or linear weight of this UNet"),
            (["quantize", ldmSafetensors, output, "--bits", "1.2"], "average of 1.2000 bits is below the smallest possible, 1."),
            (["quantize", ldmSafetensors, output, "--plan", "bitsfusion-sd15"], "no entry for layer down_blocks.0.resnets.0.time_emb_proj; time-embedding layers need a plan entry or --cache-timesteps"),
            (["quantize", BFQProcess.path("pytorch/lightning.safetensors"), output], "no Stable Diffusion UNet tensors found"),
            (["quantize", ldmSafetensors, output, "--plan", "uniform:9"], "unknown built-in plan \"uniform:9\""),
            (["quantize", ldmSafetensors, output, "--bits", "2", "--plan", "uniform:2"], "--bits and --plan exclude each other"),
            (["quantize", ldmSafetensors, directory + "/q.safetensors"], "must be a .bfq file"),
            (["quantize", ldmSafetensors, output, "--eta", "5"], "--eta must be 0 to 4, not 5.0"),
        ]
        for (arguments, message) in cases {
            let run = try BFQProcess.run(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments)")
            XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, run.stderr)
            XCTAssertTrue(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["bad.json"])
    }

    func testWeightsBeyondHalfRangeAreNamed() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = directory + "/f32.safetensors"
        XCTAssertEqual(try BFQProcess.run(["convert", ldmSafetensors, input, "--dtype", "f32"]).status, 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: input))
        let entry = try XCTUnwrap(try CheckpointFile.open(input).tensors.first { $0.name == "model.diffusion_model.out.2.weight" })
        // Row 1, column 2 of conv_out ([4, 8, 3, 3]: 72 columns) becomes 1e30.
        let offset = entry.storage.lowerBound + 4 * (72 + 2)
        withUnsafeBytes(of: Float(1e30).bitPattern.littleEndian) { bytes.replaceSubrange(offset ..< offset + 4, with: $0) }
        try bytes.write(to: URL(fileURLWithPath: input))
        let run = try BFQProcess.run(["quantize", input, directory + "/q.bfq", "--plan", "uniform:2"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("tensor model.diffusion_model.out.2.weight: weight at row 1, column 2 is 1e+30, beyond f16's range"),
                      run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["f32.safetensors"])
    }

    func testNaNWeightsAreNamed() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = directory + "/nan.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: ldmSafetensors))
        let checkpoint = try CheckpointFile.open(ldmSafetensors)
        let entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == "model.diffusion_model.out.2.weight" })
        // Element 5 of conv_out (row 0, column 5) becomes an f16 NaN.
        let offset = entry.storage.lowerBound + 2 * 5
        bytes[offset] = 0x00
        bytes[offset + 1] = 0x7E
        try bytes.write(to: URL(fileURLWithPath: input))
        let run = try BFQProcess.run(["quantize", input, directory + "/q.bfq", "--plan", "uniform:2"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("tensor model.diffusion_model.out.2.weight: weight at row 0, column 5 is NaN or infinite"), run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["nan.safetensors"])
    }
}
