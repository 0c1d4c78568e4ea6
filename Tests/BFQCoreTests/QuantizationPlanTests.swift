import XCTest
import BFQTestSupport
@testable import BFQCore

/// The built-in BitsFusion recipe and the paper's accounting on the real SD-v1.5 layout.
final class QuantizationPlanTests: XCTestCase {
    /// A checkpoint with SD-v1.5's 686 names and shapes whose data is never read (accounting only needs shapes).
    private func sd15Layout(names: NamingScheme? = nil) throws -> Checkpoint {
        let json = try JSONParser.parse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: TestPaths.path("unet/sd15_unet_shapes.ldm.json"))), as: UTF8.self))
        let tensors = json.arrayValue!.map { pair -> TensorEntry in
            let shape = pair.arrayValue![1].arrayValue!.map { Int($0.intValue!) }
            return TensorEntry(name: pair.arrayValue![0].stringValue!, dtype: .f16, shape: shape, bytes: 0 ..< 2 * shape.reduce(1, *))
        }
        let file = try MappedFile(path: TestPaths.path("unet/config.json"))
        var checkpoint = Checkpoint(file: file, format: .safetensors, metadata: [:], tensors: tensors)
        if let names {
            let renamed = try UNetNaming.rename(tensors.map(\.name), to: names)
            for index in checkpoint.tensors.indices { checkpoint.tensors[index].name = renamed[index] }
        }
        return checkpoint
    }

    func testRecipeTableIsThePublishedTSV() throws {
        let text = try String(contentsOfFile: TestPaths.path("quantizer/bitsfusion_sd15_recipe.tsv"), encoding: .utf8)
        let rows = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.dropFirst().map { $0.split(separator: "\t") }
        XCTAssertEqual(rows.count, 258)
        XCTAssertEqual(BitsFusionRecipe.layers.map(\.name), rows.map { String($0[1]) })
        XCTAssertEqual(BitsFusionRecipe.layers.map(\.bits), rows.map { Int($0[2])! })
    }

    func testRecipeWithFiftyCachedTimestepsAveragesThePapers1_9885Bits() throws {
        for names in [nil, NamingScheme.diffusers] {
            var options = QuantizationOptions()
            options.plan = BitsFusionRecipe.name
            options.cacheTimesteps = Array(stride(from: 1, through: 981, by: 20))
            let quantizer = try ModelQuantizer(try sd15Layout(names: names), options: options)
            let plan = try quantizer.makePlan()
            XCTAssertEqual(plan.choices.count, 256)
            // N_w counts the cached time-embedding weights too.
            XCTAssertEqual(quantizer.layout.weightCount, 859_077_120)
            XCTAssertEqual((quantizer.averageBits(of: plan) * 10_000).rounded() / 10_000, 1.9885)
        }
    }

    func testRecipeWithoutACacheNamesTheUncoveredTimeLayer() throws {
        var options = QuantizationOptions()
        options.plan = BitsFusionRecipe.name
        let quantizer = try ModelQuantizer(try sd15Layout(), options: options)
        XCTAssertThrowsError(try quantizer.makePlan()) { error in
            XCTAssertEqual(error as? QuantizationError, .planMissesLayer(plan: "bitsfusion-sd15", layer: "time_embedding.linear_1",
                                                                       hint: "time-embedding layers need a plan entry or --cache-timesteps"))
        }
    }

    func testUNetOrderRunsResNetsBeforeTransformersAndDownBeforeUp() {
        let names = ["up_blocks.0.resnets.0.conv1", "conv_out", "down_blocks.0.attentions.0.proj_in", "mid_block.resnets.1.conv1",
                     "down_blocks.0.resnets.0.conv2", "down_blocks.0.resnets.0.time_emb_proj", "mid_block.attentions.0.proj_out",
                     "down_blocks.0.resnets.0.conv1", "conv_in", "down_blocks.0.downsamplers.0.conv", "down_blocks.0.resnets.1.conv1",
                     "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v",
                     "mid_block.resnets.0.conv2", "time_embedding.linear_1"]
        XCTAssertEqual(names.sorted(by: UNetOrder.precedes), [
            "conv_in", "time_embedding.linear_1", "down_blocks.0.resnets.0.conv1", "down_blocks.0.resnets.0.time_emb_proj",
            "down_blocks.0.resnets.0.conv2", "down_blocks.0.attentions.0.proj_in",
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
            "down_blocks.0.resnets.1.conv1", "down_blocks.0.downsamplers.0.conv", "mid_block.resnets.0.conv2",
            "mid_block.attentions.0.proj_out", "mid_block.resnets.1.conv1", "up_blocks.0.resnets.0.conv1", "conv_out",
        ])
    }

    func testLayerChoiceAccountingCountsSideInformationBeyondOneValuePerRow() {
        XCTAssertEqual(LayerChoice.grid(1).accountedBits(rows: 4, columns: 100), log2(3) * 400)
        XCTAssertEqual(LayerChoice.grid(2, groupSize: 32).accountedBits(rows: 4, columns: 100), log2(5) * 400 + 16 * 4 * 3)
        XCTAssertEqual(LayerChoice.palette(1).accountedBits(rows: 4, columns: 100), log2(3) * 400 + 16 * 4 * 2)
        XCTAssertEqual(LayerChoice.raw16.accountedBits(rows: 4, columns: 100), 6400)
    }

    func testChartDrawsOneBarPerPlannedLayerInUNetOrderWithHeightByBits() throws {
        let checkpoint = try CheckpointFile.open(TestPaths.path("unet/tiny_unet.ldm.safetensors"))
        let layout = try QuantizationLayout(checkpoint)
        var plan = try XCTUnwrap(try QuantizationPlan.builtIn("uniform:2", layers: layout.tensors.filter { $0.role != .kept && $0.isMatrix
            && $0.layer != "conv_in" && $0.layer != "conv_out" }.compactMap(\.layer)))
        plan.choices["mid_block.resnets.0.conv1"] = .grid(4)
        let svg = PlanChart.svg(plan, layout: layout, eta: 0.3)
        let bars = svg.split(separator: "\n").filter { $0.hasPrefix("<rect") }
        XCTAssertEqual(bars.count, 280)
        XCTAssertTrue(bars.first!.contains("<title>time_embedding.linear_1: 2-bit grid"), String(bars.first!))
        XCTAssertTrue(bars.last!.contains("<title>up_blocks.3.attentions.2.proj_out: 2-bit grid"), String(bars.last!))
        func height(_ bar: Substring) -> Double {
            let field = bar.split(separator: " ").first { $0.hasPrefix("height=") }!
            return Double(field.dropFirst("height=\"".count).dropLast())!
        }
        let tall = try XCTUnwrap(bars.first { $0.contains("mid_block.resnets.0.conv1:") })
        XCTAssertEqual(height(tall), 2 * height(bars.first!), accuracy: 0.1)
    }
}

/// Plan files from elsewhere: every malformed entry is refused naming the plan and the layer.
final class PlanFileTests: XCTestCase {
    private func load(_ text: String) throws -> QuantizationPlan {
        let path = try TestFiles.temporaryDirectory() + "/plan.json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return try QuantizationPlan.load(path)
    }

    private func assertRefused(_ text: String, _ reason: String, line: UInt = #line) {
        XCTAssertThrowsError(try load(text), line: line) { error in
            guard case let .invalidPlan(_, found)? = error as? QuantizationError else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(found, reason, line: line)
        }
    }

    func testReadsLayersAndCache() throws {
        let plan = try load(#"{"format":"bfq-plan","cache_timesteps":[1,21],"layers":[{"name":"a","bits":2},"#
            + #"{"name":"b","bits":3,"encoding":"palette"},{"name":"c","bits":1,"encoding":"grid","group_size":64},"#
            + #"{"name":"d","bits":16,"encoding":"raw"}]}"#)
        XCTAssertEqual(plan.choices, ["a": .grid(2), "b": .palette(3), "c": .grid(1, groupSize: 64), "d": .raw16])
        XCTAssertEqual(plan.cacheTimesteps, [1, 21])
        XCTAssertEqual(try load(#"{"format":"bfq-plan","cache_timesteps":[981,1],"layers":[]}"#).cacheTimesteps, [1, 981])
    }

    func testMalformedEntriesAreRefused() {
        assertRefused(#"{"layers":[]}"#, "\"format\" is not \"bfq-plan\"")
        assertRefused(#"{"format":"bfq-plan"}"#, "\"layers\" is not an array")
        assertRefused(#"{"format":"bfq-plan","layers":[{"bits":2}]}"#, "layers[0] has no string \"name\"")
        assertRefused(#"{"format":"bfq-plan","layers":[{"name":"a","bits":2.5}]}"#, "layer a: \"bits\" is not an integer")
        assertRefused(#"{"format":"bfq-plan","layers":[{"name":"a","bits":9}]}"#, "layer a: 9 bits is not 1...8 (16 for raw)")
        assertRefused(#"{"format":"bfq-plan","layers":[{"name":"a","bits":2,"encoding":"lut"}]}"#,
                      "layer a: \"encoding\" must be grid, palette or raw, not \"lut\"")
        assertRefused(#"{"format":"bfq-plan","layers":[{"name":"a","bits":2,"group_size":16}]}"#,
                      "layer a: \"group_size\" must be an integer in 32...256 on a grid")
        assertRefused(#"{"format":"bfq-plan","layers":[{"name":"a","bits":2},{"name":"a","bits":3}]}"#, "layer a appears twice")
        assertRefused(#"{"format":"bfq-plan","cache_timesteps":[1.5],"layers":[]}"#, "\"cache_timesteps\" holds a non-integer")
        assertRefused(#"{"format":"bfq-plan","cache_timesteps":[5,5],"layers":[]}"#,
                      "\"cache_timesteps\": timesteps: must be non-empty and strictly increasing (not at position 1)")
        assertRefused(#"{"format":"bfq-plan","layers":["#, "JSON syntax error at byte 31: unexpected end")
    }
}
