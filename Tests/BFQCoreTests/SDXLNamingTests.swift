import XCTest
@testable import BFQCore

/// SDXL-family UNets at full size (tools/testdata/sdxl_naming.py): names against diffusers' own converters, the
/// configuration inferred from the weights against diffusers' model, and recognition.
final class SDXLNamingTests: XCTestCase {
    private static let models = ["sdxl_base", "sdxl_refiner", "ssd1b", "vega"]

    private func shapes(_ model: String) throws -> (names: [String], shapes: [[Int]]) {
        try NamingFixtures.shapes("../sdxl/\(model)_shapes.diffusers.json")
    }

    private func pairs(_ file: String) throws -> [(String, String)]? {
        let url = NamingFixtures.url("../sdxl/" + file)
        return FileManager.default.fileExists(atPath: url.path) ? try NamingFixtures.pairs("../sdxl/" + file) : nil
    }

    /// ldm -> diffusers as diffusers' convert_ldm_unet_checkpoint does it, every tensor, in order.
    func testOriginalNamesRenameLikeConvertLDMUNetCheckpoint() throws {
        for model in Self.models {
            let rows = try XCTUnwrap(try pairs("\(model)_ldm_to_diffusers.tsv"), model)
            XCTAssertEqual(try UNetNaming.rename(rows.map(\.0), to: .diffusers), rows.map(\.1), model)
            XCTAssertEqual(UNetNaming.detect(rows.map(\.0)), .ldm)
        }
    }

    /// diffusers -> ldm as diffusers' convert_diffusers_to_original_sdxl.py does it (it hard-codes three levels, so
    /// there is no file for the refiner: its names round-trip through the other direction instead).
    func testDiffusersNamesRenameLikeTheOriginalSDXLScript() throws {
        var compared = 0
        for model in Self.models {
            guard let rows = try pairs("\(model)_diffusers_to_ldm.tsv") else { continue }
            XCTAssertEqual(try UNetNaming.rename(rows.map(\.0), to: .ldm), rows.map(\.1), model)
            compared += 1
        }
        XCTAssertEqual(compared, 3)
        let refiner = try XCTUnwrap(try pairs("sdxl_refiner_ldm_to_diffusers.tsv"))
        XCTAssertEqual(try UNetNaming.rename(refiner.map(\.1), to: .ldm), refiner.map(\.0))
    }

    /// Both directions inside a full checkpoint: the VAE and both text encoders keep their names.
    func testAFullSDXLCheckpointKeepsItsOtherNames() throws {
        let rows = try XCTUnwrap(try pairs("sdxl_base_ldm_to_diffusers.tsv"))
        let others = ["first_stage_model.decoder.conv_out.weight", "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                      "conditioner.embedders.1.model.text_projection", "denoiser.sigmas"]
        let renamed = try UNetNaming.rename(others + rows.map(\.0), to: .diffusers)
        XCTAssertEqual(Array(renamed.prefix(4)), others)
        XCTAssertEqual(Array(renamed.dropFirst(4)), rows.map(\.1))
    }

    /// The configuration inferred from each model's weights reads exactly diffusers' tensors, with their shapes,
    /// in diffusers' order.
    func testInferredConfigurationsReadExactlyDiffusersTensors() throws {
        for model in Self.models {
            let (names, dims) = try shapes(model)
            let config = try UNetConfig.inferred(from: Dictionary(uniqueKeysWithValues: zip(names, dims)), path: model)
            let expected = config.tensorShapes
            XCTAssertEqual(expected.map(\.name), names, model)
            XCTAssertEqual(expected.map(\.shape), dims, model)
            XCTAssertEqual(config.textTime?.timeWidth, 256)
            XCTAssertTrue(config.linearProjection)
        }
        let (names, dims) = try shapes("ssd1b")
        let ssd = try UNetConfig.inferred(from: Dictionary(uniqueKeysWithValues: zip(names, dims)), path: "ssd1b")
        XCTAssertEqual(ssd.downTransformerLayers, [[1, 1], [2, 2], [4, 4]])
        XCTAssertEqual(ssd.upTransformerLayers, [[4, 4, 10], [2, 1, 1], [1, 1, 1]])
        XCTAssertFalse(ssd.midAttention)
        XCTAssertEqual(ssd.heads, [5, 10, 20])
        XCTAssertEqual(ssd.textTime, TextTimeConditioning(timeWidth: 256, inputWidth: 2816))
    }

    func testRecognition() throws {
        let expected = [
            "sdxl_base": ("SDXL base UNet, 2567.5M parameters", 2_567_463_684, 1680),
            "sdxl_refiner": ("SDXL refiner UNet, 2259.5M parameters", 2_259_526_660, 1220),
            "ssd1b": ("SSD-1B UNet, 1331.3M parameters", 1_331_334_404, 944),
            "vega": ("Segmind Vega UNet, 745.2M parameters", 745_225_604, 564),
        ]
        for model in Self.models {
            let (names, dims) = try shapes(model)
            let (summary, parameters, tensors) = try XCTUnwrap(expected[model])
            for scheme in [NamingScheme.diffusers, .ldm] {
                let found = try XCTUnwrap(ModelRecognition.recognise(names: try UNetNaming.rename(names, to: scheme), shapes: dims))
                XCTAssertEqual(found.summary, summary, "\(model) \(scheme)")
                XCTAssertEqual(found.unetParameterCount, parameters)
                XCTAssertEqual(found.unetTensorCount, tensors)
                XCTAssertEqual(found.family, .sdxl)
                XCTAssertEqual(found.scheme, scheme)
            }
        }
        let (names, dims) = try shapes("sdxl_base")
        let others = ["first_stage_model.decoder.conv_out.weight", "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                      "conditioner.embedders.1.model.text_projection"]
        let full = try XCTUnwrap(ModelRecognition.recognise(names: try UNetNaming.rename(names, to: .ldm) + others,
                                                            shapes: dims + others.map { _ in [4] }))
        XCTAssertEqual(full.summary, "SDXL base checkpoint (UNet + VAE + two text encoders), UNet 2567.5M parameters")
        // The refiner's single file has only OpenCLIP bigG.
        let refiner = try XCTUnwrap(ModelRecognition.recognise(names: names + ["conditioner.embedders.0.model.ln_final.weight"],
                                                               shapes: dims + [[1280]]))
        XCTAssertEqual(refiner.summary, "SDXL base checkpoint (UNet + text encoder), UNet 2567.5M parameters")
    }

    /// Scaled-down SDXL-structured fixtures say so, with their widths and depths.
    func testScaledSDXLStructures() throws {
        let expected = [
            "tiny_base": "transformer depths 2/2/3/3/3/3/3/3/2/2/2",
            "tiny_ssd1b": "transformer depths 2/2/3/3/3/3/2/2/1/1",
            "tiny_vega": "transformer depths 1/1/2/2/2/2/2/1/1/1",
            "tiny_refiner": "transformer depths 2/2/2/2/2/2/2/2/2/2/2",
        ]
        for (model, depths) in expected {
            let (names, dims) = try NamingFixtures.safetensorsHeader("../sdxl/\(model).diffusers.safetensors")
            let found = try XCTUnwrap(ModelRecognition.recognise(names: names, shapes: dims))
            XCTAssertEqual(found.family, .sdxl, model)
            XCTAssertFalse(found.isFullSize)
            XCTAssertTrue(found.summary.hasPrefix("SDXL-structured UNet (scaled: "), found.summary)
            XCTAssertTrue(found.summary.contains(depths), "\(model): \(found.summary)")
        }
    }

    /// A gap in a transformer's blocks, or an SD-1-style tensor in an SDXL UNet, is no consistent configuration:
    /// nothing is recognised, and opening the weights names the first tensor that does not fit.
    func testInconsistentStructuresAreRefusedNamingTheTensor() throws {
        let (names, dims) = try shapes("sdxl_base")
        var table = Dictionary(uniqueKeysWithValues: zip(names, dims))
        let gap = names.filter { $0.hasPrefix("down_blocks.2.attentions.1.transformer_blocks.4.") }
        XCTAssertEqual(gap.count, 20)
        for name in gap { table[name] = nil }
        let kept = names.filter { table[$0] != nil }
        XCTAssertNil(ModelRecognition.recognise(names: kept, shapes: kept.map { table[$0]! })?.family)
        let config = try UNetConfig.inferred(from: table, path: "gap")
        XCTAssertThrowsError(try config.checkTensors(kept, shapes: table, timeFeaturesCached: false, path: "gap", fileName: { $0 })) { error in
            XCTAssertEqual(error as? UNetError, .unreadTensor(path: "gap", name: "down_blocks.2.attentions.1.transformer_blocks.5.norm1.weight"))
        }
        // An SD-1-style 1x1-convolution projection among SDXL's linear ones.
        var mixed = Dictionary(uniqueKeysWithValues: zip(names, dims))
        mixed["up_blocks.1.attentions.2.proj_in.weight"] = [640, 640, 1, 1]
        let inferred = try UNetConfig.inferred(from: mixed, path: "mixed")
        XCTAssertThrowsError(try inferred.checkTensors(names, shapes: mixed, timeFeaturesCached: false, path: "mixed", fileName: { $0 })) { error in
            XCTAssertEqual(error as? UNetError, .weightMismatch(path: "mixed", name: "up_blocks.1.attentions.2.proj_in.weight",
                                                                expected: "[640, 640] for the configured UNet", found: "[640, 640, 1, 1]"))
        }
        XCTAssertNil(ModelRecognition.recognise(names: names, shapes: names.map { mixed[$0]! })?.family)
    }
}
