import Foundation
import XCTest
@testable import BFQCore

/// The reference UNet against diffusers' float32 output (testdata/unet/forward, made by tools/testdata/unet_forward.py)
/// and across the formats it reads.
final class UNetForwardTests: XCTestCase {
    private func path(_ name: String) -> String { TestFiles.path("unet/" + name) }

    /// noise_pred of a fixture case.
    private func expected(_ file: String) throws -> [Float] {
        let checkpoint = try CheckpointFile.open(path("forward/" + file))
        return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == "noise_pred" }))
    }

    /// max |a - b| / std(b).
    private func relativeError(_ actual: [Float], _ expected: [Float]) -> Double {
        XCTAssertEqual(actual.count, expected.count)
        let mean = expected.reduce(0.0) { $0 + Double($1) } / Double(expected.count)
        let std = (expected.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(expected.count)).squareRoot()
        return zip(actual, expected).map { abs(Double($0) - Double($1)) }.max()! / std
    }

    private func predict(_ model: String, _ input: String, config: String? = nil) throws -> [Float] {
        try LoadedUNet.open(path(model), config: config.map(path)).predict(try UNetInput.load(path("forward/" + input)))
    }

    func testMatchesDiffusersInBothNamingsFromSafetensorsAndCheckpoints() throws {
        let expected = try expected("sd1_batch2.safetensors")
        for model in ["tiny_unet.diffusers.safetensors", "tiny_unet.diffusers.ckpt", "tiny_unet.ldm.safetensors", "tiny_unet.ldm.ckpt"] {
            let error = relativeError(try predict(model, "sd1_batch2.safetensors"), expected)
            XCTAssertLessThanOrEqual(error, 1e-4, model)
            print("\(model) batch 2, timesteps 981 and 21, 77 tokens: max abs error / std = \(error)")
        }
    }

    func testMatchesDiffusersAtAnOddSizeAndAFractionalTimestep() throws {
        // 14x10 latents: diffusers forwards upsample sizes (7 -> 14, 5 -> 10 and 2 -> 4 -> 7, 2 -> 3 -> 5).
        let error = relativeError(try predict("tiny_unet.ldm.ckpt", "sd1_odd.safetensors"), try expected("sd1_odd.safetensors"))
        XCTAssertLessThanOrEqual(error, 1e-4)
    }

    func testMatchesDiffusersOnAnSD2StyleUNet() throws {
        // Linear projections, heads per block, two transformer blocks per transformer, one ResNet per down block.
        let prediction = try predict("forward/tiny_sd2.diffusers.safetensors", "sd2_batch2.safetensors",
                                     config: "forward/tiny_sd2.config.json")
        XCTAssertLessThanOrEqual(relativeError(prediction, try expected("sd2_batch2.safetensors")), 1e-4)
    }

    func testTheConfigBesideAFileIsUsedAndWithoutItSD32GroupsAreRefused() throws {
        XCTAssertEqual(try LoadedUNet.open(path("tiny_unet.ldm.ckpt")).configSource, path("config.json"))
        let directory = try TestFiles.temporaryDirectory()
        let copy = directory + "/tiny.safetensors"
        try FileManager.default.copyItem(atPath: path("tiny_unet.ldm.safetensors"), toPath: copy)
        XCTAssertThrowsError(try LoadedUNet.open(copy)) { error in
            XCTAssertEqual(error as? UNetError, .unsupportedConfig(path: copy, key: "norm_num_groups",
                reason: "32 groups do not divide block 0's 8 channels (GroupNorm groups cannot be read from weights; give the model's config.json)"))
        }
    }

    func testALosslessBfqGivesTheSameBits() throws {
        let directory = try TestFiles.temporaryDirectory()
        let container = directory + "/tiny.bfq"
        let source = try CheckpointFile.open(path("tiny_unet.ldm.safetensors"))
        try ContainerCheckpointWriter.write(to: OutputTarget(path: container), tensors: source.tensors.map {
            OutputTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape)
        }, metadata: [:], source: CopyingSource(checkpoint: source))
        let input = try UNetInput.load(path("forward/sd1_batch2.safetensors"))
        let config = path("config.json")
        XCTAssertEqual(try LoadedUNet.open(container, config: config).predict(input),
                       try LoadedUNet.open(path("tiny_unet.ldm.safetensors")).predict(input))
    }

    func testQuantizedWeightsArriveThroughTheDequantizer() throws {
        let directory = try TestFiles.temporaryDirectory()
        let container = directory + "/q.bfq"
        var options = QuantizationOptions()
        options.plan = "uniform:3"
        let quantizer = try ModelQuantizer(try CheckpointFile.open(path("tiny_unet.ldm.safetensors")), options: options)
        _ = try quantizer.write(plan: try quantizer.makePlan(), to: OutputTarget(path: container))
        let weights = try CheckpointUNetWeights(try CheckpointFile.open(container))
        XCTAssertFalse(weights.resident)
        // Each quantized weight the model reads is the f32 the lookup table gives: rounded to f16 it is the file's
        // f16 decoding, and it has at most 2^3 + 1 distinct values per row.
        let checkpoint = weights.checkpoint
        let name = "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"
        let entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.ff.net.0.proj.weight" })
        let floats = try weights.floats(name, shape: entry.shape)
        let halves = try checkpoint.withContiguousBytes(of: entry) { Array($0.bindMemory(to: UInt16.self)) }
        XCTAssertEqual(LayerQuantizer.halves(floats), halves)
        let columns = entry.shape[1]
        for row in 0 ..< entry.shape[0] { XCTAssertLessThanOrEqual(Set(floats[row * columns ..< (row + 1) * columns]).count, 9) }
        // The model runs from the .bfq and is near, not equal to, the source.
        let input = try UNetInput.load(path("forward/sd1_batch2.safetensors"))
        let quantized = try LoadedUNet.open(container, config: path("config.json")).predict(input)
        let reference = try expected("sd1_batch2.safetensors")
        var sums = NoiseErrorSums()
        sums.add(reference: reference[...], candidate: quantized[...], alphaBar: 0.5)
        XCTAssertGreaterThan(sums.error.mse, 0)
        XCTAssertGreaterThan(try XCTUnwrap(sums.error.sqnrDB), 10)
    }

    func testTheTimeFeatureCacheReplacesTheTimeEmbeddingAndRefusesOtherTimesteps() throws {
        let directory = try TestFiles.temporaryDirectory()
        let container = directory + "/cached.bfq"
        // Every layer raw f16 (the source's own values; conv_in and conv_out too) and the cache at the fixture's timesteps 21 and 981.
        let checkpoint = try CheckpointFile.open(path("tiny_unet.ldm.safetensors"))
        var options = QuantizationOptions()
        options.plan = "uniform:8"
        options.cacheTimesteps = [21, 981]
        let layers = Array(try ModelQuantizer(checkpoint, options: options).makePlan().choices.keys) + ["conv_in", "conv_out"]
        let plan = directory + "/raw.json"
        let json = JSONValue.object([JSONMember("format", "bfq-plan"), JSONMember("layers", .array(layers.sorted().map {
            .object([JSONMember("name", .string($0)), JSONMember("encoding", "raw"), JSONMember("bits", 16)])
        }))])
        try TextFile.write(JSONWriter.pretty(json), to: plan)
        options.plan = plan
        let quantizer = try ModelQuantizer(checkpoint, options: options)
        _ = try quantizer.write(plan: try quantizer.makePlan(), to: OutputTarget(path: container))
        let unet = try LoadedUNet.open(container, config: path("config.json"))
        XCTAssertEqual(unet.weights.timeFeatures?.timesteps, [21, 981])
        XCTAssertNil(unet.weights.shapes["time_embedding.linear_1.weight"])
        let input = try UNetInput.load(path("forward/sd1_batch2.safetensors"))
        // Only the cached features' f16 rounding differs from diffusers.
        XCTAssertLessThanOrEqual(relativeError(try unet.predict(input), try expected("sd1_batch2.safetensors")), 1e-2)
        var uncached = input
        uncached.timesteps = [500, 21]
        XCTAssertThrowsError(try unet.predict(uncached)) { error in
            XCTAssertEqual(error as? UNetError, .timestepNotCached(path: container, timestep: 500, cached: [21, 981]))
        }
    }

    func testWrongInputsNameTheTensorAndTheExpectedShape() throws {
        let unet = try LoadedUNet.open(path("tiny_unet.ldm.ckpt"))
        var input = try UNetInput.load(path("forward/sd1_batch2.safetensors"))
        input.encoderWidth = 16
        input.tokens = 154
        XCTAssertThrowsError(try unet.predict(input)) { error in
            XCTAssertEqual(error as? UNetError, .inputMismatch(path: input.source, tensor: "encoder_hidden_states",
                                                               expected: "shape [2, tokens <= 4096, 32]", found: "[2, 154, 16]"))
        }
    }

    func testWeightsTheConfigurationDoesNotReadAreRefused() throws {
        // Every block without attention: the transformers' weights are never read.
        let directory = try TestFiles.temporaryDirectory()
        var text = try String(contentsOfFile: path("config.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "CrossAttnDownBlock2D", with: "DownBlock2D").replacingOccurrences(of: "CrossAttnUpBlock2D", with: "UpBlock2D")
        try TextFile.write(text, to: directory + "/plain.json")
        XCTAssertThrowsError(try LoadedUNet.open(path("tiny_unet.ldm.safetensors"), config: directory + "/plain.json")) { error in
            XCTAssertEqual(error as? UNetError, .unreadTensor(path: self.path("tiny_unet.ldm.safetensors"),
                                                              name: "model.diffusion_model.input_blocks.1.1.norm.bias"))
        }
    }

    func testTwoNamesForOneWeightAndNonFiniteOutputsAreRefused() throws {
        let source = try CheckpointFile.open(path("tiny_unet.diffusers.safetensors"))
        let directory = try TestFiles.temporaryDirectory()
        let twice = directory + "/twice.safetensors"
        var tensors = source.tensors
        var copy = try XCTUnwrap(tensors.first { $0.name == "conv_in.weight" })
        copy.name = "unet.conv_in.weight"
        tensors.append(copy)
        try SafeTensorsWriter.write(to: OutputTarget(path: twice), tensors: tensors.map { OutputTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
                                    metadata: [:], source: CopyingSource(checkpoint: Checkpoint(file: source.files[0], format: source.format,
                                    metadata: [:], tensors: tensors, warnings: [], decoder: nil)))
        XCTAssertThrowsError(try LoadedUNet.open(twice)) { error in
            XCTAssertEqual(error as? UNetError, .ambiguousTensor(path: twice, first: "conv_in.weight", second: "unet.conv_in.weight"))
        }
        // conv_out weights of 3e38 drive the prediction to infinity.
        let unet = try LoadedUNet.open(path("tiny_unet.diffusers.safetensors"))
        let shape = try XCTUnwrap(unet.weights.shapes["conv_out.weight"])
        let huge = ReplacedWeights(base: unet.weights, values: ["conv_out.weight": Array(repeating: 3e38, count: shape.reduce(1, *))])
        XCTAssertThrowsError(try unet.model.predict(try UNetInput.load(path("forward/sd1_batch2.safetensors")), weights: huge)) { error in
            guard case let .nonFiniteOutput(file, _)? = error as? UNetError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, self.path("tiny_unet.diffusers.safetensors"))
        }
    }

    func testAMissingWeightIsNamedInTheFilesScheme() throws {
        let source = try CheckpointFile.open(path("tiny_unet.ldm.safetensors"))
        let directory = try TestFiles.temporaryDirectory()
        let damaged = directory + "/missing.safetensors"
        let kept = source.tensors.filter { !$0.name.hasSuffix("output_blocks.2.1.conv.weight") }
        XCTAssertEqual(kept.count, source.tensors.count - 1)
        try SafeTensorsWriter.write(to: OutputTarget(path: damaged), tensors: kept.map { OutputTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
                                    metadata: [:], source: CopyingSource(checkpoint: Checkpoint(file: source.files[0], format: source.format,
                                    metadata: [:], tensors: kept, warnings: [], decoder: nil)))
        // Refused when opened, before anything runs.
        XCTAssertThrowsError(try LoadedUNet.open(damaged, config: path("config.json"))) { error in
            XCTAssertEqual(error as? UNetError, .missingTensor(path: damaged, name: "up_blocks.0.upsamplers.0.conv.weight",
                                                               fileName: "model.diffusion_model.output_blocks.2.1.conv.weight"))
        }
    }
}
