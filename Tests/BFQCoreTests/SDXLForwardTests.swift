import Foundation
import XCTest
@testable import BFQCore

/// SDXL-family UNets against diffusers' float32 output (testdata/sdxl, made by tools/testdata/sdxl_unet.py): the
/// text_time added conditioning, transformer depth per level and per up layer, one-ResNet mid blocks, four levels.
final class SDXLForwardTests: XCTestCase {
    private func path(_ name: String) -> String { TestFiles.path("sdxl/" + name) }

    /// max |a - b| / std(b) between a prediction and a fixture's noise_pred.
    private func relativeError(_ model: String, names: String, io: String) throws -> Double {
        let unet = try LoadedUNet.open(path("\(model).\(names).safetensors"), config: path("\(model).config.json"))
        let actual = try unet.predict(try UNetInput.load(path(io)))
        let checkpoint = try CheckpointFile.open(path(io))
        let expected = try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == "noise_pred" }))
        XCTAssertEqual(actual.count, expected.count)
        let mean = expected.reduce(0.0) { $0 + Double($1) } / Double(expected.count)
        let std = (expected.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(expected.count)).squareRoot()
        return zip(actual, expected).map { abs(Double($0) - Double($1)) }.max()! / std
    }

    func testMatchesDiffusers() throws {
        let cases = [
            ("tiny_base", "diffusers", "tiny_base_io.safetensors"), ("tiny_base", "ldm", "tiny_base_io.safetensors"),
            ("tiny_base", "ldm", "tiny_base_odd_io.safetensors"),
            ("tiny_refiner", "diffusers", "tiny_refiner_io.safetensors"), ("tiny_refiner", "ldm", "tiny_refiner_odd_io.safetensors"),
            ("tiny_ssd1b", "diffusers", "tiny_ssd1b_io.safetensors"), ("tiny_vega", "diffusers", "tiny_vega_io.safetensors"),
        ]
        for (model, names, io) in cases {
            let error = try relativeError(model, names: names, io: io)
            XCTAssertLessThanOrEqual(error, 1e-4, "\(model) \(names) \(io)")
            print("\(model).\(names) on \(io): max abs error / std = \(error)")
        }
    }

    /// Without text_embeds or time_ids, or with widths that do not add up, the input is refused naming the tensor and
    /// the width expected; an SD 1.x UNet refuses them.
    func testMissingOrMisshapedAddedConditioningIsRefused() throws {
        let unet = try LoadedUNet.open(path("tiny_base.diffusers.safetensors"), config: path("tiny_base.config.json"))
        var input = try UNetInput.load(path("tiny_base_io.safetensors"))
        XCTAssertEqual(input.textWidth, 16)
        XCTAssertEqual(input.timeIdCount, 6)
        let full = input
        input.condition(textEmbeds: [], textWidth: 0, timeIds: [], timeIdCount: 0)
        XCTAssertThrowsError(try unet.predict(input)) { error in
            XCTAssertEqual("\(error)", "\(self.path("tiny_base_io.safetensors")): input text_embeds: expected text_embeds [2, P] and "
                + "time_ids [2, K] with P + K x 8 = 64 (an SDXL-family UNet), found none")
        }
        input = full
        input.condition(textEmbeds: full.textEmbeds + [0, 0], textWidth: 17, timeIds: full.timeIds, timeIdCount: 6)
        XCTAssertThrowsError(try unet.predict(input)) { error in
            XCTAssertEqual("\(error)", "\(self.path("tiny_base_io.safetensors")): input text_embeds: expected text_embeds [2, 16] "
                + "for 6 time ids (text_embeds [2, P] and time_ids [2, K] with P + K x 8 = 64), found [2, 17]")
        }
        let sd1 = try LoadedUNet.open(TestFiles.path("unet/tiny_unet.diffusers.safetensors"))
        var sdInput = try UNetInput.load(TestFiles.path("unet/forward/sd1_batch2.safetensors"))
        sdInput.condition(textEmbeds: full.textEmbeds, textWidth: 16, timeIds: full.timeIds, timeIdCount: 6)
        XCTAssertThrowsError(try sd1.predict(sdInput)) { error in
            XCTAssertEqual(error as? UNetError, .inputMismatch(path: TestFiles.path("unet/forward/sd1_batch2.safetensors"), tensor: "text_embeds",
                                                               expected: "none (the UNet has no added conditioning)", found: "[2, 16]"))
        }
    }

    /// The time-id width cannot be read from weights: without a config the tiny fixture is refused with the reason.
    func testWithoutAConfigTheReasonIsGiven() throws {
        XCTAssertThrowsError(try LoadedUNet.open(path("tiny_base.diffusers.safetensors"))) { error in
            XCTAssertEqual("\(error)", "\(self.path("tiny_base.diffusers.safetensors")): not an SD UNet bfq can run: add_embedding's 64 "
                + "inputs leave no room for SDXL's 256-wide time-id sinusoids (their width cannot be read from weights; give the model's config.json)")
        }
    }

    /// eval and calibration: seeded text_embeds drawn after SD's latents and states (which stay as they were), SDXL's
    /// default time_ids (the refiner's with aesthetic score 6 for four levels), or the ids of an --encoder-states file.
    func testEvaluationConditioning() throws {
        var options = EvaluationOptions()
        options.height = 4
        options.width = 4
        options.tokens = 3
        let base = try UNetConfig.load(path("tiny_base.config.json")), refiner = try UNetConfig.load(path("tiny_refiner.config.json"))
        var plain = base
        plain.textTime = nil
        var generator = SeededGenerator(seed: 0), other = SeededGenerator(seed: 0)
        let sdxl = try EvaluationConditioning(options, config: base, generator: &generator)
        let sd = try EvaluationConditioning(options, config: plain, generator: &other)
        XCTAssertEqual(sdxl.latents, sd.latents)
        XCTAssertEqual(sdxl.conditional, sd.conditional)
        XCTAssertEqual(sdxl.unconditional, sd.unconditional)
        XCTAssertEqual(sdxl.conditionalText, other.gaussians(2 * 16))
        XCTAssertEqual(sdxl.textWidth, 16)
        XCTAssertEqual(sdxl.timeIds, [1024, 1024, 0, 0, 1024, 1024, 1024, 1024, 0, 0, 1024, 1024])
        XCTAssertTrue(sd.timeIds.isEmpty)
        let input = sdxl.input(timestep: 500, channels: 4, height: 4, width: 4)
        XCTAssertEqual(input.textEmbeds, sdxl.unconditionalText + sdxl.conditionalText)
        XCTAssertEqual(input.timeIdCount, 6)

        var refinerGenerator = SeededGenerator(seed: 0)
        let refined = try EvaluationConditioning(options, config: refiner, generator: &refinerGenerator)
        XCTAssertEqual(refined.timeIds, [1024, 1024, 0, 0, 6, 1024, 1024, 0, 0, 6])
        XCTAssertEqual(refined.textWidth, 56 - 5 * 8)

        // A file's time_ids (one row for all samples) and text_embeds replace the defaults.
        let directory = try TestFiles.temporaryDirectory()
        let file = directory + "/states.safetensors"
        let tensors = [OutputTensor(name: "encoder_hidden_states", dtype: .f32, shape: [2, 3, 12]),
                       OutputTensor(name: "text_embeds", dtype: .f32, shape: [2, 16]),
                       OutputTensor(name: "time_ids", dtype: .f32, shape: [1, 6])]
        let values: [[Float]] = [[Float](repeating: 0.25, count: 72), (0 ..< 32).map(Float.init), [512, 512, 8, 8, 512, 512]]
        try SafeTensorsWriter.write(to: OutputTarget(path: file), tensors: tensors, metadata: [:], source: FloatValues(values: values))
        options.encoderStates = file
        var fileGenerator = SeededGenerator(seed: 0)
        let given = try EvaluationConditioning(options, config: base, generator: &fileGenerator)
        XCTAssertEqual(given.timeIds, [512, 512, 8, 8, 512, 512, 512, 512, 8, 8, 512, 512])
        XCTAssertEqual(given.conditionalText, (0 ..< 32).map(Float.init))
        XCTAssertEqual(given.unconditionalText.count, 32)
    }
}

/// f32 tensors for a writer.
private struct FloatValues: TensorByteSource {
    let values: [[Float]]
    func emit(_ index: Int, to out: ByteSink) throws { try values[index].withUnsafeBytes { try out.write(Array($0)) } }
}
