import Foundation
import XCTest
@testable import BFQCore

/// `bfq unet`, `bfq eval` and output sensitivity as a user runs them.
final class UNetCommandTests: XCTestCase {
    private let model = BFQProcess.path("unet/tiny_unet.ldm.ckpt")
    private let batch2 = BFQProcess.path("unet/forward/sd1_batch2.safetensors")

    private func noisePrediction(_ file: String) throws -> [Float] {
        let checkpoint = try CheckpointFile.open(file)
        return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == "noise_pred" }))
    }

    func testUNetWritesDiffusersNoisePredictionTheSameForAnyThreadCount() throws {
        let directory = try BFQProcess.temporaryDirectory()
        var outputs: [Data] = []
        for threads in ["1", "2"] {
            let output = directory + "/out\(threads).safetensors"
            let run = try BFQProcess.run(["unet", model, "--input", batch2, "--output", output], environment: ["BFQ_THREADS": threads])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(run.stdout, "")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: output)))
            let checkpoint = try CheckpointFile.open(output)
            XCTAssertEqual(checkpoint.tensors.map(\.name), ["noise_pred"])
            XCTAssertEqual(checkpoint.tensors[0].shape, [2, 4, 16, 16])
            XCTAssertEqual(checkpoint.tensors[0].dtype, .f32)
            let (actual, expected) = (try noisePrediction(output), try noisePrediction(batch2))
            let worst = zip(actual, expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-4 * 1.1)
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }

    func testBadInputsGetOneLineAndNoOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/out.safetensors"
        func write(_ name: String, _ tensors: [(String, DType, [Int])]) throws -> String {
            let file = directory + "/" + name
            let outputs = tensors.map { OutputTensor(name: $0.0, dtype: $0.1, shape: $0.2) }
            struct Zeros: TensorByteSource {
                let tensors: [OutputTensor]
                func emit(_ index: Int, to out: ByteSink) throws { try out.write([UInt8](repeating: 0, count: tensors[index].byteCount)) }
            }
            try SafeTensorsWriter.write(to: OutputTarget(path: file), tensors: outputs, metadata: [:], source: Zeros(tensors: outputs))
            return file
        }
        let cases: [(String, String)] = [
            (try write("channels.safetensors", [("sample", .f32, [1, 3, 8, 8]), ("timestep", .i64, [1]),
                                                ("encoder_hidden_states", .f32, [1, 77, 32])]),
             "input sample: expected shape [batch, 4, height, width], found [1, 3, 8, 8]"),
            (try write("width.safetensors", [("sample", .f32, [1, 4, 8, 8]), ("timestep", .i64, [1]),
                                             ("encoder_hidden_states", .f32, [1, 77, 768])]),
             "input encoder_hidden_states: expected shape [1, tokens <= 4096, 32], found [1, 77, 768]"),
            (try write("dtype.safetensors", [("sample", .i32, [1, 4, 8, 8]), ("timestep", .i64, [1]),
                                             ("encoder_hidden_states", .f32, [1, 77, 32])]),
             "input sample: expected a floating-point tensor of rank 4, found I32 [1, 4, 8, 8]"),
            (try write("missing.safetensors", [("sample", .f32, [1, 4, 8, 8]), ("encoder_hidden_states", .f32, [1, 77, 32])]),
             "input timestep: expected a tensor, found none"),
            (try write("huge.safetensors", [("sample", .f16, [1, 4, 2048, 1024]), ("timestep", .i64, [1]),
                                            ("encoder_hidden_states", .f32, [1, 77, 32])]),
             "input sample: expected at least one image of at least 1x1, at most 16384 latent positions per image (128x128) and 131072 over the batch, found [1, 4, 2048, 1024]"),
            (try write("batch.safetensors", [("sample", .f32, [2, 4, 8, 8]), ("timestep", .i64, [3]),
                                             ("encoder_hidden_states", .f32, [2, 77, 32])]),
             "input timestep: expected 1 or 2 values, found [3]"),
        ]
        for (input, message) in cases {
            let run = try BFQProcess.run(["unet", model, "--input", input, "--output", output])
            XCTAssertEqual(run.status, 2, input)
            XCTAssertEqual(run.stderr, "bfq: error: \(input): \(message)\n")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        }
        let notUNet = BFQProcess.path("unet/time_features.safetensors")
        let run = try BFQProcess.run(["unet", notUNet, "--input", batch2, "--output", output])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: \(notUNet): not an SD UNet bfq can run: no SD UNet tensor names (ldm or diffusers)\n")
    }

    func testEvalAndAnOutputSensitivityQuantizationBeatTheWeightSpaceOne() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let source = BFQProcess.path("unet/tiny_unet.ldm.safetensors"), config = BFQProcess.path("unet/config.json")
        // The reference reads its config.json beside it; the candidate is named with --candidate-config.
        let itself = try BFQProcess.run(["eval", source, model, "--json", "--size", "8x8", "--samples", "1", "--candidate-config", config])
        XCTAssertEqual(itself.status, 0, itself.stderr)
        let zero = try JSONParser.parse(itself.stdout)
        XCTAssertEqual(zero["mse"], .double(0))
        XCTAssertEqual(zero["sqnr_db"], .null)
        XCTAssertEqual(zero["cosine"], .double(1))
        // Weight-space and output-space plans at the same budget; the output-space one (calibrated on seed 0) is
        // closer to the source in noise prediction on other seeds. Few candidates and a small calibration keep it quick.
        var sqnr: [String: Double] = [:]
        for sensitivity in ["weight", "output"] {
            let output = directory + "/\(sensitivity).bfq"
            var arguments = ["quantize", source, output, "--bits", "2", "--no-palettes", "--sensitivity", sensitivity]
            if sensitivity == "output" {
                arguments += ["--calibration-size", "8x8", "--calibration-timesteps", "801,201", "--calibration-samples", "1",
                              "--save-importance", directory + "/moments.safetensors"]
            }
            let quantized = try BFQProcess.run(arguments)
            XCTAssertEqual(quantized.status, 0, quantized.stderr)
            let run = try BFQProcess.run(["eval", source, output, "--config", config, "--json", "--size", "16x16", "--seed", "9"])
            XCTAssertEqual(run.status, 0, run.stderr)
            guard case let .double(value)? = try JSONParser.parse(run.stdout)["sqnr_db"] else { return XCTFail(run.stdout) }
            sqnr[sensitivity] = value
        }
        print("noise-prediction SQNR at 2 bits: weight-space plan \(sqnr["weight"]!) dB, output-space plan \(sqnr["output"]!) dB")
        XCTAssertGreaterThan(sqnr["output"]!, sqnr["weight"]! + 3)
        let moments = try CheckpointFile.open(directory + "/moments.safetensors")
        XCTAssertEqual(moments.tensors.count, 282)
        XCTAssertEqual(moments.tensors.first { $0.name == "conv_in" }?.shape, [4])
    }

    func testOutputsThatClashOrReplaceAnInputAreRefusedBeforeAnyWork() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let source = BFQProcess.path("unet/tiny_unet.ldm.safetensors")
        let same = directory + "/x.safetensors"
        var run = try BFQProcess.run(["plan", source, "--sensitivity", "output", "-o", same, "--save-importance", same])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: \(same) and \(same) are the same output file\n")
        let config = directory + "/config.json"
        try FileManager.default.copyItem(atPath: BFQProcess.path("unet/config.json"), toPath: config)
        let before = try Data(contentsOf: URL(fileURLWithPath: config))
        run = try BFQProcess.run(["plan", source, "--sensitivity", "output", "--unet-config", config, "-o", config])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("refusing to overwrite"), run.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: config)), before)
        run = try BFQProcess.run(["plan", source, "--sensitivity", "output", "--calibration-size", "100000x100000"])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: --calibration-size must be at least 1x1 and at most 16384 positions (128x128), found 100000x100000\n")
        run = try BFQProcess.run(["unet", model, "--input", batch2, "--output", directory + "/noise.txt"])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["config.json"])
    }

    func testEvalRefusesUncachedTimesteps() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let cached = directory + "/cached.bfq"
        let quantized = try BFQProcess.run(["quantize", BFQProcess.path("unet/tiny_unet.ldm.safetensors"), cached, "--plan", "uniform:4",
                                            "--cache-timesteps", "1,501,999"])
        XCTAssertEqual(quantized.status, 0, quantized.stderr)
        let run = try BFQProcess.run(["eval", model, cached, "--timesteps", "999,500", "--config", BFQProcess.path("unet/config.json")])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: \(cached): timestep 500 is not in the file's time-feature cache (1, 501, 999); "
            + "the time embedding was replaced by the cache when quantizing\n")
        let spread = try BFQProcess.run(["eval", model, cached, "--config", BFQProcess.path("unet/config.json"), "--json", "--size", "8x8"])
        XCTAssertEqual(spread.status, 0, spread.stderr)
        XCTAssertEqual(try JSONParser.parse(spread.stdout)["timesteps"], .array([999, 501, 1]))
    }
}
