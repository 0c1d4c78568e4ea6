import Foundation
import XCTest
@testable import BFQCore

/// Output-space sensitivity: reruns from saved states equal full passes, and the recorded moments are the inputs'.
final class OutputSensitivityTests: XCTestCase {
    private func path(_ name: String) -> String { TestFiles.path("unet/" + name) }

    private var calibration: EvaluationOptions {
        var options = EvaluationOptions()
        (options.samples, options.height, options.width, options.timesteps, options.seed) = (2, 8, 8, [981, 21], 5)
        return options
    }

    func testARerunFromTheLayersStageEqualsAFullPass() throws {
        let unet = try LoadedUNet.open(path("tiny_unet.ldm.safetensors"))
        let sensitivity = try OutputSensitivity(unet, calibration: calibration)
        for layer in ["conv_in", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", "mid_block.resnets.1.time_emb_proj",
                      "up_blocks.2.resnets.2.conv_shortcut", "conv_out"] {
            let shape = try XCTUnwrap(unet.weights.shapes[layer + ".weight"], layer)
            let original = try unet.weights.floats(layer + ".weight", shape: shape)
            XCTAssertEqual(try sensitivity.distortion(layer: layer, values: original), 0, layer)
            var generator = SeededGenerator(seed: 3)
            let noisy = zip(original, generator.gaussians(original.count)).map { $0 + 0.05 * $1 }
            let changed = LoadedUNet(weights: ReplacedWeights(base: unet.weights, values: [layer + ".weight": noisy]),
                                     model: unet.model, configSource: unet.configSource)
            let full = try OutputSensitivity(changed, calibration: calibration)
            let expected = full.states[full.states.count - 1].hidden.squaredDistances(to: sensitivity.states[sensitivity.states.count - 1].hidden)
                .reduce(0, +)
            XCTAssertGreaterThan(expected, 0, layer)
            // OpenBLAS may take another path through the same product (buffers placed differently): the last bits only.
            XCTAssertEqual(try sensitivity.distortion(layer: layer, values: noisy), expected, accuracy: 1e-12 * expected, layer)
            // A stage's change run through the rest of the UNet is the same rerun in two steps.
            let stage = try sensitivity.stage(reading: layer)
            let change = try sensitivity.stageChange(stage, replacing: [layer: noisy])
            XCTAssertGreaterThan(change.energies.reduce(0, +), 0, layer)
            XCTAssertEqual(try sensitivity.distortion(after: stage, from: change.state), expected, accuracy: 1e-12 * expected, layer)
        }
    }

    func testRecordedMomentsAreTheInputsSecondMoments() throws {
        let unet = try LoadedUNet.open(path("tiny_unet.ldm.safetensors"))
        let sensitivity = try OutputSensitivity(unet, calibration: calibration)
        var generator = SeededGenerator(seed: calibration.seed)
        let inputs = try EvaluationConditioning(calibration, config: unet.model.config, generator: &generator)
        // conv_in reads the latents (the same at every timestep); attn2's to_k reads the encoder states.
        let plane = 64
        for c in 0 ..< 4 {
            var sum = 0.0
            for s in 0 ..< 2 { for i in 0 ..< plane { sum += Double(inputs.latents[(s * 4 + c) * plane + i] * inputs.latents[(s * 4 + c) * plane + i]) } }
            XCTAssertEqual(Double(try XCTUnwrap(sensitivity.importance.moments["conv_in"])[c]), sum / Double(2 * plane), accuracy: 1e-6)
        }
        let key = try XCTUnwrap(sensitivity.importance.moments["mid_block.attentions.0.transformer_blocks.0.attn2.to_k"])
        XCTAssertEqual(key.count, 32)
        for c in [0, 17, 31] {
            let values = (0 ..< 2 * 77).map { Double(inputs.conditional[$0 * 32 + c]) }
            XCTAssertEqual(Double(key[c]), values.reduce(0) { $0 + $1 * $1 } / Double(values.count), accuracy: 1e-6)
        }
        XCTAssertEqual(sensitivity.importance.moments.count, unet.model.modules.count)
    }

    func testAnOutputPlanMeetsTheBudgetAndRanksCandidates() throws {
        var options = QuantizationOptions()
        options.sensitivity = .output
        options.calibration = calibration
        options.calibration.timesteps = [501]
        options.calibration.samples = 1
        options.candidates = [.grid(1), .grid(4), .raw16]
        options.bits = 3
        let quantizer = try ModelQuantizer(try CheckpointFile.open(path("tiny_unet.ldm.safetensors")), options: options)
        let plan = try quantizer.makePlan()
        XCTAssertLessThanOrEqual(quantizer.averageBits(of: plan), 3)
        XCTAssertGreaterThan(quantizer.averageBits(of: plan), 2.99)
        let measurements = try XCTUnwrap(plan.measurements)
        XCTAssertEqual(measurements.count, 280)
        for (layer, measurement) in measurements {
            let distortions = measurement.candidates.map(\.distortion)
            // 8x8 latents leave one token in the mid block: its self-attention weights are all 1 whatever q and k.
            if ["attn1.to_q", "attn1.to_k"].contains(where: { layer == "mid_block.attentions.0.transformer_blocks.0." + $0 }) {
                XCTAssertEqual(distortions, [0, 0, 0], layer)
            } else {
                XCTAssertLessThan(distortions[2], distortions[0], layer)
            }
        }
        XCTAssertEqual(quantizer.recordedImportance?.moments.count, 282)
    }
}
