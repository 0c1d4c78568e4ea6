import BFQCore
import XCTest

final class NamingRecognitionTests: XCTestCase {
    func testSD15() throws {
        let (names, shapes) = try NamingFixtures.shapes("sd15_unet_shapes.ldm.json")
        let found = try XCTUnwrap(ModelRecognition.recognise(names: names, shapes: shapes))
        XCTAssertEqual(found.summary, "SD 1.x UNet, 859.5M parameters")
        XCTAssertEqual(found.unetParameterCount, 859_520_964)
        XCTAssertEqual(found.unetTensorCount, 686)
        XCTAssertEqual(found.scheme, .ldm)
        XCTAssertEqual(found.family, .sd1)
        XCTAssertTrue(found.isFullSize)
        XCTAssertEqual(found.blockChannels, [320, 640, 1280, 1280])
        XCTAssertEqual(found.crossAttentionWidth, 768)
        XCTAssertEqual(found.inputChannels, 4)

        let diffusers = try XCTUnwrap(ModelRecognition.recognise(
            names: UNetNaming.rename(names, to: .diffusers), shapes: shapes))
        XCTAssertEqual(diffusers.summary, "SD 1.x UNet, 859.5M parameters")
        XCTAssertEqual(diffusers.scheme, .diffusers)
    }

    /// Without the 48 time-embedding tensors (a .bfq whose time-feature cache replaced them) it is still SD 1.x;
    /// without only some of them it is not.
    func testSD15WithTheTimeEmbeddingCached() throws {
        let (names, shapes) = try NamingFixtures.shapes("sd15_unet_shapes.ldm.json")
        let kept = names.indices.filter { !names[$0].contains("time_embed.") && !names[$0].contains(".emb_layers.") }
        XCTAssertEqual(kept.count, 686 - 48)
        let found = try XCTUnwrap(ModelRecognition.recognise(names: kept.map { names[$0] }, shapes: kept.map { shapes[$0] }))
        XCTAssertEqual(found.summary, "SD 1.x UNet (time embedding cached), 831.6M parameters")
        XCTAssertTrue(found.isFullSize)
        let partial = names.indices.filter { !names[$0].contains(".emb_layers.") }
        let other = try XCTUnwrap(ModelRecognition.recognise(names: partial.map { names[$0] }, shapes: partial.map { shapes[$0] }))
        XCTAssertNil(other.family)
        XCTAssertFalse(other.timeEmbeddingCached)
    }

    func testSD2() throws {
        let (names, shapes) = try NamingFixtures.shapes("sd2_unet_shapes.diffusers.json")
        let found = try XCTUnwrap(ModelRecognition.recognise(names: names, shapes: shapes))
        XCTAssertEqual(found.summary, "SD 2.x UNet, 865.9M parameters")
        XCTAssertEqual(found.unetParameterCount, 865_910_724)
        XCTAssertEqual(found.crossAttentionWidth, 1024)
        XCTAssertEqual(found.family, .sd2)
        XCTAssertTrue(found.isFullSize)
    }

    func testScaledFixture() throws {
        for file in ["tiny_unet.ldm.safetensors", "tiny_unet.diffusers.safetensors"] {
            let (names, shapes) = try NamingFixtures.safetensorsHeader(file)
            let found = try XCTUnwrap(ModelRecognition.recognise(names: names, shapes: shapes))
            XCTAssertEqual(found.summary,
                           "SD 1.x-structured UNet (scaled: 8/16/32/32 channels, cross-attention 32), 0.6M parameters")
            XCTAssertEqual(found.unetParameterCount, 556_572)
            XCTAssertEqual(found.family, .sd1)
            XCTAssertFalse(found.isFullSize)
        }
    }

    func testFullCheckpoint() throws {
        let (names, shapes) = try NamingFixtures.shapes("sd15_unet_shapes.ldm.json")
        let others = NamingFixtures.ldmOthers
        let found = try XCTUnwrap(ModelRecognition.recognise(
            names: names + others, shapes: shapes + others.map { _ in [1000] }))
        XCTAssertEqual(found.summary, "SD 1.x checkpoint (UNet + EMA + VAE + text encoder), UNet 859.5M parameters")
        XCTAssertEqual(found.components, [.unet, .ema, .vae, .textEncoder])
        XCTAssertEqual(found.unetParameterCount, 859_520_964)

        let plain = others.filter { !$0.hasPrefix("model_ema.diffusion") }
        let noEMA = try XCTUnwrap(ModelRecognition.recognise(
            names: names + plain, shapes: shapes + plain.map { _ in [1] }))
        XCTAssertEqual(noEMA.summary, "SD 1.x checkpoint (UNet + VAE + text encoder), UNet 859.5M parameters")
    }

    func testOtherModels() throws {
        XCTAssertNil(ModelRecognition.recognise(names: [], shapes: []))
        XCTAssertNil(ModelRecognition.recognise(names: ["first_stage_model.encoder.conv_in.weight"], shapes: [[128, 3, 3, 3]]))
        // Without the middle attention the structure is no longer SD's.
        let (names, shapes) = try NamingFixtures.shapes("sd15_unet_shapes.ldm.json")
        let kept = names.indices.filter { !names[$0].contains("middle_block.1.") }
        let found = try XCTUnwrap(ModelRecognition.recognise(names: kept.map { names[$0] }, shapes: kept.map { shapes[$0] }))
        XCTAssertNil(found.family)
        XCTAssertTrue(found.summary.hasPrefix("non-SD UNet, "), found.summary)
    }

    func testMillions() {
        XCTAssertEqual(Formatting.millions(859_520_964), "859.5M")
        XCTAssertEqual(Formatting.millions(865_910_724), "865.9M")
        XCTAssertEqual(Formatting.millions(0), "0.0M")
        XCTAssertEqual(Formatting.millions(49_999), "0.0M")
        XCTAssertEqual(Formatting.millions(50_000), "0.1M")
        XCTAssertEqual(Formatting.millions(1_999_999_999), "2000.0M")
    }
}
