import Foundation
import XCTest
@testable import BFQCore

/// UNet configurations from diffusers config.json files and from weights alone.
final class UNetConfigTests: XCTestCase {
    private func shapes(_ file: String, rename: Bool) throws -> [String: [Int]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestFiles.path("unet/" + file)))
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [[Any]])
        let names = entries.map { $0[0] as! String }, dims = entries.map { $0[1] as! [Int] }
        let renamed = rename ? try UNetNaming.rename(names, to: .diffusers) : names
        return Dictionary(uniqueKeysWithValues: zip(renamed, dims))
    }

    func testTheFixtureConfigIsRead() throws {
        let config = try UNetConfig.load(TestFiles.path("unet/config.json"))
        XCTAssertEqual(config, UNetConfig(inChannels: 4, outChannels: 4, blockChannels: [8, 16, 32, 32], layersPerBlock: 2,
                                          downAttention: [true, true, true, false], upAttention: [false, true, true, true],
                                          heads: [8, 8, 8, 8], transformerLayers: [1, 1, 1, 1], crossAttentionDim: 32,
                                          linearProjection: false, normGroups: 4))
        let sd2 = try UNetConfig.load(TestFiles.path("unet/forward/tiny_sd2.config.json"))
        XCTAssertTrue(sd2.linearProjection)
        XCTAssertEqual(sd2.layersPerBlock, 1)
        // Blocks without attention (the last down block, the first up block) have no transformers: depth 1.
        XCTAssertEqual(sd2.downTransformerLayers, [[2], [2], [2], [1]])
        XCTAssertEqual(sd2.upTransformerLayers, [[1, 1], [2, 2], [2, 2], [2, 2]])
        XCTAssertEqual(sd2.midTransformerLayers, 2)
    }

    func testSD15AndSD2AreInferredFromTheirWeights() throws {
        let sd15 = try UNetConfig.inferred(from: try shapes("sd15_unet_shapes.ldm.json", rename: true), path: "sd15")
        XCTAssertEqual(sd15, UNetConfig(inChannels: 4, outChannels: 4, blockChannels: [320, 640, 1280, 1280], layersPerBlock: 2,
                                        downAttention: [true, true, true, false], upAttention: [false, true, true, true],
                                        heads: [8, 8, 8, 8], transformerLayers: [1, 1, 1, 1], crossAttentionDim: 768,
                                        linearProjection: false))
        // SD 2.x: linear projections and 1024-wide cross-attention mean heads of width 64 (5, 10, 20, 20 heads).
        let sd2 = try UNetConfig.inferred(from: try shapes("sd2_unet_shapes.diffusers.json", rename: false), path: "sd2")
        XCTAssertEqual(sd2.heads, [5, 10, 20, 20])
        XCTAssertTrue(sd2.linearProjection)
        XCTAssertEqual(sd2.crossAttentionDim, 1024)
    }

    func testUnsupportedSettingsAreRefusedByKey() throws {
        func refusal(_ text: String) -> UNetError? {
            do {
                _ = try UNetConfig(json: try JSONParser.parse(text), path: "c.json")
                return nil
            } catch { return error as? UNetError }
        }
        let base = #""block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]"#
        XCTAssertNil(refusal("{\(base)}"))
        XCTAssertEqual(refusal(#"{\#(base), "class_embed_type": "timestep"}"#),
                       .unsupportedConfig(path: "c.json", key: "class_embed_type", reason: "bfq runs only null, found \"timestep\""))
        XCTAssertEqual(refusal(#"{\#(base), "norm_num_groups": 5}"#)?.description,
                       "c.json: config \"norm_num_groups\": 5 groups do not divide block 0's 32 channels (GroupNorm groups cannot be read from weights; give the model's config.json)")
        XCTAssertEqual(refusal(#"{\#(base), "attention_head_dim": [8, 8, 8]}"#),
                       .unsupportedConfig(path: "c.json", key: "attention_head_dim", reason: "has 3 entries for 2 blocks"))
        XCTAssertEqual(refusal(#"{"block_out_channels": [32], "down_block_types": ["SimpleDownBlock2D"], "up_block_types": ["UpBlock2D"]}"#),
                       .unsupportedConfig(path: "c.json", key: "down_block_types", reason: "unsupported SimpleDownBlock2D"))
    }

    /// SDXL-family keys: text_time conditioning, a one-ResNet mid block, per-layer up depths.
    func testSDXLFamilyConfigs() throws {
        let ssd = try UNetConfig.load(TestFiles.path("sdxl/tiny_ssd1b.config.json"))
        XCTAssertEqual(ssd.textTime, TextTimeConditioning(timeWidth: 8, inputWidth: 64))
        XCTAssertEqual(ssd.downTransformerLayers, [[1, 1], [2, 2], [3, 3]])
        XCTAssertEqual(ssd.upTransformerLayers, [[3, 3, 2], [2, 1, 1], [1, 1, 1]])
        XCTAssertEqual(ssd.midTransformerLayers, 0)
        XCTAssertFalse(ssd.midAttention)
        XCTAssertEqual(ssd.heads, [1, 2, 3])
        let base = try UNetConfig.load(TestFiles.path("sdxl/tiny_base.config.json"))
        XCTAssertEqual(base.upTransformerLayers, [[3, 3, 3], [2, 2, 2], [1, 1, 1]])
        XCTAssertEqual(base.midTransformerLayers, 3)
        XCTAssertEqual(base.downAttention, [false, true, true])
    }

    func testSDXLFamilyMistakesAreRefusedByKey() throws {
        /// The error for a base SDXL-style config with `changes` (JSON member texts by key) replacing or adding members.
        func refusal(_ changes: [String: String] = [:]) -> String? {
            var members: [(String, String)] = [
                ("block_out_channels", "[32, 64]"), ("down_block_types", #"["DownBlock2D", "CrossAttnDownBlock2D"]"#),
                ("up_block_types", #"["CrossAttnUpBlock2D", "UpBlock2D"]"#), ("addition_embed_type", #""text_time""#),
                ("addition_time_embed_dim", "256"), ("projection_class_embeddings_input_dim", "2816"),
            ]
            for (key, value) in changes.sorted(by: { $0.key < $1.key }) {
                if let index = members.firstIndex(where: { $0.0 == key }) { members[index].1 = value } else { members.append((key, value)) }
            }
            let text = "{" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
            do {
                _ = try UNetConfig(json: try JSONParser.parse(text), path: "c.json")
                return nil
            } catch { return "\(error)" }
        }
        XCTAssertNil(refusal())
        XCTAssertEqual(refusal(["addition_embed_type": #""text""#]),
                       "c.json: config \"addition_embed_type\": bfq runs only null or \"text_time\", found \"text\"")
        XCTAssertEqual(refusal(["transformer_layers_per_block": "[[1, 1], [2, 2]]"]),
                       "c.json: config \"reverse_transformer_layers_per_block\": required when transformer_layers_per_block lists depths per layer")
        XCTAssertEqual(refusal(["reverse_transformer_layers_per_block": "[[1, 1, 1]]"]),
                       "c.json: config \"reverse_transformer_layers_per_block\": has 1 entries for 2 blocks")
        XCTAssertEqual(refusal(["reverse_transformer_layers_per_block": "[[1, 1], [1, 1, 1]]"]),
                       "c.json: config \"reverse_transformer_layers_per_block\": lists 2 layers where blocks have 3")
        XCTAssertEqual(refusal(["transformer_layers_per_block": "100000"]),
                       "c.json: config \"transformer_layers_per_block\": must be 1...64, found 100000")
        XCTAssertEqual(refusal(["addition_time_embed_dim": "7"]),
                       "c.json: config \"addition_time_embed_dim\": must be an even width 2...4096, found 7")
        XCTAssertEqual(refusal(["projection_class_embeddings_input_dim": "100"]),
                       "c.json: config \"projection_class_embeddings_input_dim\": must exceed addition_time_embed_dim (256) and be at most 65536, found 100")
        XCTAssertEqual(refusal(["mid_block_type": #""UNetMidBlock2DSimpleCrossAttn""#]),
                       "c.json: config \"mid_block_type\": bfq runs only \"UNetMidBlock2DCrossAttn\" or \"UNetMidBlock2D\", found \"UNetMidBlock2DSimpleCrossAttn\"")
        XCTAssertEqual(refusal(["layers_per_block": "-3"]), "c.json: config \"layers_per_block\": must be 1...16, found -3")
    }
}
