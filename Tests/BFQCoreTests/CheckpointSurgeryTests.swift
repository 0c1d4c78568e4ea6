import XCTest
@testable import BFQCore

/// Component surgery on a Lightning SDXL checkpoint with EMA weights, against diffusers' own extraction.
final class CheckpointSurgeryTests: XCTestCase {
    private func open(_ relative: String) throws -> Checkpoint { try CheckpointFile.open(TestFiles.path(relative)) }

    private func bytes(_ checkpoint: Checkpoint) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for tensor in checkpoint.tensors { result[tensor.name] = try checkpoint.withContiguousBytes(of: tensor) { Array($0) } }
        return result
    }

    /// --ema --only unet, renamed to diffusers, is diffusers' convert_ldm_unet_checkpoint(extract_ema=True), bit for bit.
    func testEMAMatchesDiffusersExtraction() throws {
        let full = try open("folders/tiny_full_ema.ckpt")
        let (ema, report) = try CheckpointSurgery(only: "unet", ema: true).apply(to: full)
        XCTAssertEqual(report.emaSwapped, 840)
        XCTAssertEqual(report.droppedEMA, 842)
        XCTAssertEqual(report.kept, 840)
        XCTAssertEqual(report.droppedOther.count, 12)
        XCTAssertTrue(ema.tensors.allSatisfy { $0.name.hasPrefix(UNetNaming.ldmPrefix) })
        let renamed = try UNetNaming.rename(ema.tensors.map(\.name), to: .diffusers)
        var got = try bytes(ema)
        got = Dictionary(uniqueKeysWithValues: zip(renamed, ema.tensors.map { got[$0.name]! }))
        XCTAssertEqual(got, try bytes(open("folders/tiny_full_ema.expected_ema.diffusers.safetensors")))
        // Without --ema the live weights differ from the EMA ones.
        let live = try CheckpointSurgery(only: "unet").apply(to: full).checkpoint
        XCTAssertNotEqual(try bytes(live), try bytes(ema))
        XCTAssertEqual(live.tensors.count, 840)
    }

    func testPruneKeepsTheModelsWeights() throws {
        let full = try open("folders/tiny_full_ema.ckpt")
        let (pruned, report) = try CheckpointSurgery(prune: true).apply(to: full)
        XCTAssertEqual(pruned.tensors.count, 854)
        XCTAssertEqual(report.droppedEMA, 842)
        XCTAssertEqual(report.droppedOther, ["betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                                             "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                                             "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                                             "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"])
        XCTAssertEqual(Set(pruned.tensors.map(\.name)), Set(try open("sdxl/tiny_base_full.safetensors").tensors.map(\.name)))
        XCTAssertEqual(report.summary, "kept 854 tensors; dropped 842 EMA entries (model_ema.*), 12 other entries "
                       + "(betas, alphas_cumprod, alphas_cumprod_prev, ...)")
    }

    /// Each component under the names its own file has.
    func testComponentsTakeTheirStandaloneNames() throws {
        let full = try open("sdxl/tiny_base_full.safetensors")
        let names = full.tensors.map(\.name)
        for (component, prefix) in [("vae", "first_stage_model."), ("text_encoder", "conditioner.embedders.0.transformer."),
                                    ("text_encoder_2", "conditioner.embedders.1.model.")] {
            let expected = names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
            XCTAssertFalse(expected.isEmpty, component)
            XCTAssertEqual(try CheckpointSurgery(only: component).apply(to: full).checkpoint.tensors.map(\.name), expected, component)
        }
        XCTAssertEqual(try CheckpointSurgery(only: "unet").apply(to: full).checkpoint.tensors.map(\.name),
                       names.filter { $0.hasPrefix(UNetNaming.ldmPrefix) })
        // A pipeline's components lose their folder's prefix; the UNet's bytes are the shards'.
        let pipeline = try open("folders/sdxl_pipeline")
        let unet = try CheckpointSurgery(only: "unet").apply(to: pipeline).checkpoint
        XCTAssertEqual(try bytes(unet), try bytes(open("sdxl/tiny_base.diffusers.safetensors")))
        let tokenizerless = try CheckpointSurgery(only: "text_encoder_2").apply(to: pipeline).checkpoint
        XCTAssertEqual(tokenizerless.tensors.count, 37)
        XCTAssertTrue(tokenizerless.tensors.allSatisfy { $0.name.hasPrefix("text_model.") || $0.name.hasPrefix("text_projection.") })
        // A prefix that is no component keeps names as they are.
        XCTAssertEqual(try CheckpointSurgery(only: "first_stage_model.decoder.").apply(to: full).checkpoint.tensors.map(\.name),
                       names.filter { $0.hasPrefix("first_stage_model.decoder.") })
    }

    func testRefusals() throws {
        let unetOnly = try open("sdxl/tiny_base.ldm.safetensors")
        XCTAssertThrowsError(try CheckpointSurgery(ema: true).apply(to: unetOnly)) {
            XCTAssertEqual($0 as? CheckpointError, .noEMA(path: TestFiles.path("sdxl/tiny_base.ldm.safetensors")))
        }
        XCTAssertThrowsError(try CheckpointSurgery(only: "vae").apply(to: unetOnly)) {
            XCTAssertEqual($0 as? CheckpointError, .noComponent(path: TestFiles.path("sdxl/tiny_base.ldm.safetensors"),
                                                               component: "vae", found: ["unet"]))
        }
        XCTAssertThrowsError(try CheckpointSurgery(only: "nothing.").apply(to: unetOnly)) {
            XCTAssertEqual($0 as? CheckpointError, .noTensorsMatch(path: TestFiles.path("sdxl/tiny_base.ldm.safetensors"), prefix: "nothing."))
        }
        // An EMA copy missing or of another shape is named.
        var full = try open("folders/tiny_full_ema.ckpt")
        let key = "model_ema.diffusion_modelout2weight"
        XCTAssertTrue(full.tensors.contains { $0.name == key })
        full.tensors.removeAll { $0.name == key }
        XCTAssertThrowsError(try CheckpointSurgery(ema: true).apply(to: full)) {
            XCTAssertEqual($0 as? CheckpointError, .emaMissing(path: full.path, tensor: "model.diffusion_model.out.2.weight", ema: key))
        }
        full = try open("folders/tiny_full_ema.ckpt")
        let index = try XCTUnwrap(full.tensors.firstIndex { $0.name == key })
        full.tensors[index].shape = [1]
        full.tensors[index].strides = [1]
        XCTAssertThrowsError(try CheckpointSurgery(ema: true).apply(to: full)) {
            guard case .emaMismatch(_, "model.diffusion_model.out.2.weight", key, _, _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }
}
