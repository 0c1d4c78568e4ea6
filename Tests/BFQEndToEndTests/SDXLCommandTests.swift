import Foundation
import XCTest
@testable import BFQCore

/// SDXL-family UNets through the commands a user runs: inspect, convert, unet, quantize, verify, eval.
final class SDXLCommandTests: XCTestCase {
    private let ldm = BFQProcess.path("sdxl/tiny_base.ldm.safetensors")
    private let diffusers = BFQProcess.path("sdxl/tiny_base.diffusers.safetensors")
    private let config = BFQProcess.path("sdxl/tiny_base.config.json")
    private let io = BFQProcess.path("sdxl/tiny_base_io.safetensors")

    /// Writes f32 tensors (name, shape, values) to a safetensors file.
    private func write(_ path: String, _ tensors: [(String, [Int], [Float])]) throws {
        struct Values: TensorByteSource {
            let values: [[Float]]
            func emit(_ index: Int, to out: ByteSink) throws {
                try values[index].withUnsafeBytes { try out.write(Array($0)) }
            }
        }
        try SafeTensorsWriter.write(to: OutputTarget(path: path), tensors: tensors.map { OutputTensor(name: $0.0, dtype: .f32, shape: $0.1) },
                                    metadata: [:], source: Values(values: tensors.map(\.2)))
    }

    private func tensor(_ file: String, _ name: String) throws -> [Float] {
        let checkpoint = try CheckpointFile.open(file)
        return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, name))
    }

    func testUNetMatchesDiffusersAndMisshapedConditioningIsOneLine() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/out.safetensors"
        let run = try BFQProcess.run(["unet", ldm, "--config", config, "--input", io, "--output", output])
        XCTAssertEqual(run.status, 0, run.stderr)
        let (actual, expected) = (try tensor(output, "noise_pred"), try tensor(io, "noise_pred"))
        let mean = expected.reduce(0, +) / Float(expected.count)
        let std = (expected.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(expected.count)).squareRoot()
        XCTAssertLessThan(zip(actual, expected).map { abs($0 - $1) }.max()! / std, 1e-4)
        try FileManager.default.removeItem(atPath: output)

        let sample = try tensor(io, "sample"), encoder = try tensor(io, "encoder_hidden_states")
        let base: [(String, [Int], [Float])] = [("sample", [2, 4, 16, 16], sample), ("timestep", [2], [981, 21]),
                                                ("encoder_hidden_states", [2, 7, 12], encoder)]
        let text = ("text_embeds", [2, 16], [Float](repeating: 0.5, count: 32))
        let cases: [(String, [(String, [Int], [Float])], String)] = [
            ("none", base, "input text_embeds: expected text_embeds [2, P] and time_ids [2, K] with P + K x 8 = 64 "
                + "(an SDXL-family UNet), found none"),
            ("text", base + [text], "input time_ids: expected a tensor (SDXL's added conditioning needs text_embeds and time_ids), found none"),
            ("width", base + [text, ("time_ids", [2, 7], [Float](repeating: 64, count: 14))],
             "input text_embeds: expected text_embeds [2, 8] for 7 time ids (text_embeds [2, P] and time_ids [2, K] with P + K x 8 = 64), found [2, 16]"),
            ("rows", base + [text, ("time_ids", [1, 6], [64, 64, 0, 0, 64, 64])], "input time_ids: expected 2 rows, like sample, found [1, 6]"),
        ]
        for (name, tensors, message) in cases {
            let input = directory + "/\(name).safetensors"
            try write(input, tensors)
            let bad = try BFQProcess.run(["unet", ldm, "--config", config, "--input", input, "--output", output])
            XCTAssertEqual(bad.status, 2, name)
            XCTAssertEqual(bad.stderr, "bfq: error: \(input): \(message)\n")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        }
    }

    func testInspectAndConvertBothWays() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let full = BFQProcess.path("sdxl/tiny_base_full.safetensors")
        let inspect = try BFQProcess.run(["inspect", full])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("model       SDXL-structured checkpoint (UNet + VAE + two text encoders), UNet 0.0M "
            + "parameters (scaled: 2/4/6 channels, cross-attention 12, transformer depths 2/2/3/3/3/3/3/3/2/2/2)\n"), inspect.stdout)
        // The UNet alone, renamed to diffusers, is diffusers' own file tensor for tensor; and back again.
        let renamed = directory + "/unet.safetensors", back = directory + "/back.safetensors"
        for arguments in [["convert", full, renamed, "--only", "model.diffusion_model.", "--names", "diffusers"],
                          ["convert", renamed, back, "--names", "ldm"]] {
            let run = try BFQProcess.run(arguments)
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        for (produced, reference) in [(renamed, diffusers), (back, ldm)] {
            let (a, b) = (try CheckpointFile.open(produced), try CheckpointFile.open(reference))
            XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)))
            for entry in b.tensors {
                let mine = try XCTUnwrap(a.tensors.first { $0.name == entry.name })
                XCTAssertEqual(mine.shape, entry.shape)
                XCTAssertEqual(try a.floats(of: mine), try b.floats(of: entry), entry.name)
            }
        }
        // An SD-1-style convolution projection in an SDXL UNet fits no configuration: refused naming it.
        let source = try CheckpointFile.open(diffusers)
        let mixed = directory + "/mixed.safetensors"
        try write(mixed, try source.tensors.map { entry in
            let shape = entry.name == "up_blocks.1.attentions.0.proj_in.weight" ? entry.shape + [1, 1] : entry.shape
            return (entry.name, shape, try source.floats(of: entry))
        })
        let refused = try BFQProcess.run(["convert", mixed, directory + "/never.safetensors", "--names", "ldm"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr, "bfq: error: \(mixed): tensor up_blocks.1.attentions.0.proj_in.weight: expected [4, 4] for "
            + "the configured UNet, found [4, 4, 1, 1]\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/never.safetensors"))
    }

    func testQuantizeVerifyAndEvalWithoutATimeFeatureCache() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/q.bfq"
        let cached = try BFQProcess.run(["quantize", ldm, output, "--unet-config", config, "--cache-timesteps", "50"])
        XCTAssertEqual(cached.status, 2)
        XCTAssertEqual(cached.stderr, "bfq: error: time features cannot be cached for an SDXL-family UNet: "
            + "model.diffusion_model.label_emb.0.0.bias adds text_embeds and time_ids to the time embedding, so every "
            + "time_emb_proj input changes with the image, not only with the timestep\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))

        let quantized = try BFQProcess.run(["quantize", ldm, output, "--bits", "3", "--unet-config", config])
        XCTAssertEqual(quantized.status, 0, quantized.stderr)
        let verify = try BFQProcess.run(["verify", output, "--against", ldm])
        XCTAssertEqual(verify.status, 0, verify.stderr + verify.stdout)
        let inspect = try BFQProcess.run(["inspect", output])
        XCTAssertTrue(inspect.stdout.contains("model       SDXL-structured UNet (scaled: 2/4/6 channels"), inspect.stdout)
        // The quantized UNet runs, and eval measures it against the source: worse than itself, better than noise.
        var sqnr: [Double] = []
        for candidate in [ldm, output] {
            let run = try BFQProcess.run(["eval", diffusers, candidate, "--config", config, "--size", "12x12", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            switch try JSONParser.parse(run.stdout)["sqnr_db"] {
            case .null?: sqnr.append(.infinity)
            case let .double(value)?: sqnr.append(value)
            default: XCTFail(run.stdout)
            }
        }
        XCTAssertEqual(sqnr[0], .infinity)
        XCTAssertGreaterThan(sqnr[1], 3)
        XCTAssertLessThan(sqnr[1], 60)
    }

    /// Output-space allocation runs the SDXL UNet on the calibration set (text_embeds and time_ids drawn for it): the
    /// plan covers the added-conditioning MLP and meets the budget, and quantize applies it.
    func testOutputSpaceAllocation() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let plan = directory + "/plan.json", output = directory + "/p.bfq"
        let planned = try BFQProcess.run(["plan", ldm, "--bits", "2", "--sensitivity", "output", "--unet-config", config,
                                          "--calibration-size", "8x8", "-o", plan])
        XCTAssertEqual(planned.status, 0, planned.stderr)
        let json = try JSONParser.parse(try String(contentsOfFile: plan, encoding: .utf8))
        XCTAssertEqual(json["sensitivity"], .string("output"))
        guard case let .double(bits)? = json["average_bits"] else { return XCTFail("no average_bits") }
        XCTAssertLessThanOrEqual(bits, 2)
        XCTAssertGreaterThan(bits, 1.99)
        let names = json["layers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        XCTAssertTrue(names.contains("add_embedding.linear_1") && names.contains("add_embedding.linear_2"), "\(names.prefix(8))")
        let quantized = try BFQProcess.run(["quantize", ldm, output, "--plan", plan, "--unet-config", config])
        XCTAssertEqual(quantized.status, 0, quantized.stderr)
        let verify = try BFQProcess.run(["verify", output, "--against", ldm])
        XCTAssertEqual(verify.status, 0, verify.stderr + verify.stdout)
    }
}
