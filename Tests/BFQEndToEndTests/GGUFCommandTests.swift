import Foundation
import XCTest
@testable import BFQCore

/// GGUF files through the commands a user runs: inspect, convert both ways, unet, quantize, verify; bad options and
/// damaged files as one line with no output left behind.
final class GGUFCommandTests: XCTestCase {
    private let tiny = BFQProcess.path("unet/tiny_unet.ldm.safetensors")
    private let config = BFQProcess.path("unet/config.json")
    private let io = BFQProcess.path("unet/reference_io.safetensors")

    private func floats(_ file: String, _ name: String) throws -> [Float] {
        let checkpoint = try CheckpointFile.open(file)
        return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, name))
    }

    func testInspectReportsTypesLayoutAndModel() throws {
        let run = try BFQProcess.run(["inspect", BFQProcess.path("gguf/tiny_unet.comfy.gguf")])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        for line in ["format      gguf", "gguf        version 3, comfy layout, alignment 32",
                     "ggml types  F32 ×404 (2.0%), F16 ×102 (5.2%), Q8_0 ×180 (92.8%)",
                     "model       SD 1.x-structured UNet (scaled: 8/16/32/32 channels, cross-attention 32), 0.6M parameters",
                     "  general.architecture = sd1"] {
            XCTAssertTrue(run.stdout.contains(line + "\n"), "missing \(line) in\n\(run.stdout)")
        }
        let sdcpp = try BFQProcess.run(["inspect", "--tensors", BFQProcess.path("gguf/tiny_unet.sdcpp.q8_0.gguf")])
        XCTAssertTrue(sdcpp.stdout.contains("long names  320 tensor names exceed 63 bytes"), sdcpp.stdout)
        XCTAssertTrue(sdcpp.stdout.contains("model.diffusion_model.input_blocks.7.1.transformer_blocks.0.ff.net.0.proj.weight  F32  [256, 32]  Q8_0  8.500 bits  8,704 bytes stored\n"),
                      sdcpp.stdout)
        let json = try BFQProcess.run(["inspect", "--json", BFQProcess.path("gguf/kquants.q4_K.gguf")])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let gguf = try XCTUnwrap(object["gguf"] as? [String: Any])
        XCTAssertEqual(gguf["layout"] as? String, "sdcpp")
        XCTAssertEqual(((gguf["ggml_types"] as? [String: Any])?["Q4_K"] as? [String: Any])?["elements"] as? Int, 8192)
    }

    /// GGUF in and out: the UNet runs from a GGUF file exactly as from its dequantized safetensors copy, and a GGUF
    /// written by `convert` reads back with every tensor's name and shape.
    func testConvertBothWaysAndRunTheUNet() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let gguf = directory + "/tiny.q4_k.gguf"
        let written = try BFQProcess.run(["convert", tiny, gguf, "--type", "q4_k", "--layout", "comfy", "--tensor-type", #"attn1\.to_q=q8_0"#])
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertTrue(written.stdout.contains("Q8_0 ×6, 1.1% of elements (rule attn1\\.to_q ×6)\n"), written.stdout)
        XCTAssertTrue(written.stdout.hasPrefix("F16 ×526, 8.1% of elements (1-D ×404; input/output convolution or embedding ×4; "
            + "not 2-D ×38; rows not a multiple of Q4_K's block ×70; rows not a multiple of Q8_0's block ×10)\n"), written.stdout)
        XCTAssertTrue(written.stdout.contains("Q4_K ×"), written.stdout)
        XCTAssertTrue(written.stdout.contains(" bits per element\nerror added by the 160 quantized tensors: SQNR "), written.stdout)
        let back = directory + "/back.safetensors"
        XCTAssertEqual(try BFQProcess.run(["convert", gguf, back]).status, 0)
        let source = try CheckpointFile.open(tiny), restored = try CheckpointFile.open(back)
        let shapes = Dictionary(uniqueKeysWithValues: restored.tensors.map { ($0.name, $0.shape) })
        XCTAssertEqual(shapes.count, source.tensors.count)
        for tensor in source.tensors {
            XCTAssertEqual(shapes[String(tensor.name.dropFirst(UNetNaming.ldmPrefix.count))], tensor.shape, tensor.name)
        }
        XCTAssertEqual(Set(restored.tensors.map(\.dtype)), [.f32, .f16])

        let fromGGUF = directory + "/a.safetensors", fromCopy = directory + "/b.safetensors"
        for (model, output) in [(gguf, fromGGUF), (back, fromCopy)] {
            let run = try BFQProcess.run(["unet", model, "--config", config, "--input", io, "--output", output])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        XCTAssertEqual(try floats(fromGGUF, "noise_pred").map(\.bitPattern), try floats(fromCopy, "noise_pred").map(\.bitPattern))
        // Q4_K weights stay close to the f32 model's prediction.
        let reference = try floats(io, "noise_pred"), ours = try floats(fromGGUF, "noise_pred")
        let error = zip(ours, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), power = reference.map { $0 * $0 }.reduce(0, +)
        XCTAssertGreaterThan(10 * log10(power / error), 20)

        // eval of a GGUF candidate: Q8_0 from stable-diffusion.cpp's converter stays far above Q4_K.
        var sqnr: [Double] = []
        for candidate in [BFQProcess.path("gguf/tiny_unet.sdcpp.q8_0.gguf"), gguf] {
            let run = try BFQProcess.run(["eval", tiny, candidate, "--config", config, "--size", "16x16", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            sqnr.append(try XCTUnwrap(report["sqnr_db"] as? Double))
        }
        XCTAssertGreaterThan(sqnr[0], 50)
        XCTAssertGreaterThan(sqnr[0], sqnr[1] + 10)
        XCTAssertGreaterThan(sqnr[1], 15)

        let quantized = directory + "/q.bfq"
        XCTAssertEqual(try BFQProcess.run(["quantize", gguf, quantized, "--bits", "3", "--unet-config", config]).status, 0)
        let verified = try BFQProcess.run(["verify", quantized, "--against", gguf])
        XCTAssertEqual(verified.status, 0, verified.stderr)
    }

    func testBadOptionsAndDamagedFilesAreOneLineWithNoOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/out.gguf"
        let damaged = directory + "/damaged.gguf"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: BFQProcess.path("gguf/types.gguf"))))
        bytes[12] = 0xFF  // the high byte of tensor_count
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let cases: [([String], String)] = [
            (["convert", tiny, output, "--type", "q4_k_m"], "bfq: error: --type q4_k_m: not a type bfq writes (f32, f16, bf16, q8_0,"),
            (["convert", tiny, output, "--dtype", "f16"], "bfq: error: \(output): --dtype does not apply to GGUF outputs; use --type"),
            (["convert", tiny, directory + "/out.safetensors", "--type", "q8_0"],
             "bfq: error: \(directory)/out.safetensors: --type, --tensor-type and --layout sdcpp|comfy apply to .gguf outputs only"),
            (["convert", tiny, output, "--tensor-type", "attn"], "bfq: error: --tensor-type attn: expected PATTERN=TYPE"),
            (["convert", BFQProcess.path("gguf/types.source.safetensors"), output, "--layout", "comfy"],
             "bfq: error: \(BFQProcess.path("gguf/types.source.safetensors")): no SD 1.x/2.x or SDXL UNet, which --layout comfy needs"),
            (["convert", BFQProcess.path("bfq/encodings.bfq"), output],
             "bfq: error: \(BFQProcess.path("bfq/encodings.bfq")): the .bfq replaces the time embedding by a cache of 3 timesteps"),
            (["convert", damaged, output], "bfq: error: \(damaged): GGUF tensor_count at byte 8: declares 1095216660490, but the"),
            (["inspect", damaged], "bfq: error: \(damaged): GGUF tensor_count at byte 8: declares 1095216660490, but the"),
        ]
        for (arguments, expected) in cases {
            let run = try BFQProcess.run(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.hasPrefix(expected), "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, run.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(arguments) left an output")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/out.safetensors"))
        }
        // The input is never the output.
        let copy = directory + "/in.gguf"
        try FileManager.default.copyItem(atPath: BFQProcess.path("gguf/types.gguf"), toPath: copy)
        let same = try BFQProcess.run(["convert", copy, copy, "--type", "q8_0"])
        XCTAssertEqual(same.status, 2)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: copy)), try Data(contentsOf: URL(fileURLWithPath: BFQProcess.path("gguf/types.gguf"))))
    }
}
