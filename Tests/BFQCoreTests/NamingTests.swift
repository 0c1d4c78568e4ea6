import BFQCore
import XCTest

final class NamingTests: XCTestCase {
    private func sd15LDM() throws -> [String] { try NamingFixtures.shapes("sd15_unet_shapes.ldm.json").names }

    func testSD15ToDiffusersMatchesDiffusersModel() throws {
        let expected = try NamingFixtures.lines("sd15_unet_names.diffusers.txt")
        XCTAssertEqual(expected.count, 686)
        XCTAssertEqual(try UNetNaming.rename(sd15LDM(), to: .diffusers), expected)
    }

    func testSD15MatchesConvertLDMUNetCheckpoint() throws {
        let pairs = try NamingFixtures.pairs("sd15_ldm_to_diffusers.tsv")
        let renamed = try UNetNaming.rename(pairs.map(\.0), to: .diffusers)
        XCTAssertEqual(renamed, pairs.map(\.1))
    }

    func testSD15MatchesDiffusersToOriginalScript() throws {
        let pairs = try NamingFixtures.pairs("sd15_diffusers_to_ldm.tsv")
        XCTAssertEqual(try UNetNaming.rename(pairs.map(\.0), to: .ldm), pairs.map(\.1))
    }

    func testSD15RoundTrips() throws {
        let ldm = try sd15LDM()
        let diffusers = try UNetNaming.rename(ldm, to: .diffusers)
        XCTAssertEqual(Set(diffusers).count, 686)
        XCTAssertEqual(try UNetNaming.rename(diffusers, to: .ldm), ldm)
        XCTAssertEqual(try UNetNaming.rename(UNetNaming.rename(diffusers, to: .ldm), to: .diffusers), diffusers)
    }

    func testSD2MatchesDiffusers() throws {
        let diffusers = try NamingFixtures.shapes("sd2_unet_shapes.diffusers.json").names
        let toLDM = try NamingFixtures.pairs("sd2_diffusers_to_ldm.tsv")
        XCTAssertEqual(toLDM.map(\.0), diffusers)
        let ldm = try UNetNaming.rename(diffusers, to: .ldm)
        XCTAssertEqual(ldm, toLDM.map(\.1))
        let fromLDM = try NamingFixtures.pairs("sd2_ldm_to_diffusers.tsv")
        XCTAssertEqual(try UNetNaming.rename(fromLDM.map(\.0), to: .diffusers), fromLDM.map(\.1))
        XCTAssertEqual(try UNetNaming.rename(ldm, to: .diffusers), diffusers)
    }

    /// The scaled-down fixture: ldm and diffusers files written by diffusers' conversion hold the same shapes
    /// under the names bfq pairs up.
    func testTinyFixturePairsNamesWithShapes() throws {
        let ldm = try NamingFixtures.safetensorsHeader("tiny_unet.ldm.safetensors")
        let diffusers = try NamingFixtures.safetensorsHeader("tiny_unet.diffusers.safetensors")
        XCTAssertEqual(ldm.names.count, 686)
        XCTAssertEqual(UNetNaming.detect(ldm.names), .ldm)
        XCTAssertEqual(UNetNaming.detect(diffusers.names), .diffusers)
        let shapeOf = Dictionary(uniqueKeysWithValues: zip(diffusers.names, diffusers.shapes))
        let renamed = try UNetNaming.rename(ldm.names, to: .diffusers)
        XCTAssertEqual(Set(renamed), Set(diffusers.names))
        for (name, shape) in zip(renamed, ldm.shapes) { XCTAssertEqual(shapeOf[name], shape, name) }
        XCTAssertEqual(Set(try UNetNaming.rename(diffusers.names, to: .ldm)), Set(ldm.names))
    }

    func testDetect() throws {
        let ldm = try sd15LDM()
        let diffusers = try UNetNaming.rename(ldm, to: .diffusers)
        XCTAssertEqual(UNetNaming.detect(ldm), .ldm)
        XCTAssertEqual(UNetNaming.detect(ldm + NamingFixtures.ldmOthers), .ldm)
        XCTAssertEqual(UNetNaming.detect(ldm.map { String($0.dropFirst(UNetNaming.ldmPrefix.count)) }), .ldm)
        XCTAssertEqual(UNetNaming.detect(diffusers), .diffusers)
        XCTAssertEqual(UNetNaming.detect(diffusers.map { "unet." + $0 }), .diffusers)
        XCTAssertNil(UNetNaming.detect([]))
        XCTAssertNil(UNetNaming.detect(NamingFixtures.ldmOthers))
        // A diffusers VAE uses down_blocks too, but under encoder./decoder.
        XCTAssertNil(UNetNaming.detect(["encoder.down_blocks.0.resnets.0.conv1.weight", "decoder.mid_block.attentions.0.to_q.weight"]))
        // Bare top-level names alone are not a UNet.
        XCTAssertNil(UNetNaming.detect(["out.0.weight", "conv_in.weight"]))
    }

    func testFullCheckpointKeepsNonUNetNames() throws {
        let ldm = try sd15LDM()
        let names = NamingFixtures.ldmOthers.prefix(3) + ldm + NamingFixtures.ldmOthers.dropFirst(3)
        let renamed = try UNetNaming.rename(Array(names), to: .diffusers)
        XCTAssertEqual(Array(renamed.prefix(3)), Array(NamingFixtures.ldmOthers.prefix(3)))
        XCTAssertEqual(Array(renamed.suffix(5)), Array(NamingFixtures.ldmOthers.dropFirst(3)))
        XCTAssertEqual(Array(renamed[3 ..< 689]), try UNetNaming.rename(ldm, to: .diffusers))
        XCTAssertEqual(try UNetNaming.rename(renamed, to: .ldm), Array(names))
    }

    func testPrefixesAndNamesAlreadyInTarget() throws {
        let ldm = try sd15LDM()
        let diffusers = try UNetNaming.rename(ldm, to: .diffusers)
        XCTAssertEqual(try UNetNaming.rename(ldm, to: .ldm), ldm)
        XCTAssertEqual(try UNetNaming.rename(diffusers, to: .diffusers), diffusers)
        XCTAssertEqual(try UNetNaming.rename(diffusers.map { "unet." + $0 }, to: .ldm), ldm)
        let bare = ldm.map { String($0.dropFirst(UNetNaming.ldmPrefix.count)) }
        XCTAssertEqual(try UNetNaming.rename(bare, to: .diffusers), diffusers)
    }

    func testSpotChecks() throws {
        let pairs = Dictionary(uniqueKeysWithValues: try NamingFixtures.pairs("sd15_ldm_to_diffusers.tsv"))
        let expected: [String: String] = [
            "middle_block.1.proj_in.weight": "mid_block.attentions.0.proj_in.weight",
            "middle_block.2.in_layers.2.weight": "mid_block.resnets.1.conv1.weight",
            "output_blocks.2.1.conv.weight": "up_blocks.0.upsamplers.0.conv.weight",
            "output_blocks.5.2.conv.bias": "up_blocks.1.upsamplers.0.conv.bias",
            "output_blocks.8.2.conv.weight": "up_blocks.2.upsamplers.0.conv.weight",
            "input_blocks.9.0.op.weight": "down_blocks.2.downsamplers.0.conv.weight",
            "input_blocks.4.0.skip_connection.weight": "down_blocks.1.resnets.0.conv_shortcut.weight",
            "output_blocks.11.0.emb_layers.1.weight": "up_blocks.3.resnets.2.time_emb_proj.weight",
            "out.2.weight": "conv_out.weight", "time_embed.2.bias": "time_embedding.linear_2.bias",
        ]
        for (ldm, diffusers) in expected {
            XCTAssertEqual(pairs[UNetNaming.ldmPrefix + ldm], diffusers, ldm)
        }
    }

    func testUnmappableNamesAreReported() throws {
        let ldm = try sd15LDM()
        let diffusers = try UNetNaming.rename(ldm, to: .diffusers)
        let badLDM = [
            "model.diffusion_model.input_blocks.1.0.in_layers.1.weight",
            "model.diffusion_model.label_emb.0.1.weight",
            "model.diffusion_model.output_blocks.3.2.norm.weight",
            "model.diffusion_model.input_blocks.1.2.weight",
            "model.diffusion_model.out.1.weight",
            "model.diffusion_model.middle_block.1",
            "model.diffusion_model.lora_unet_down.weight",
        ]
        for bad in badLDM {
            XCTAssertThrowsError(try UNetNaming.rename(ldm + [bad], to: .diffusers), bad) { error in
                guard case let .unmappableName(name, _)? = error as? UNetNamingError else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(name, bad)
            }
        }
        let badDiffusers = [
            "down_blocks.0.resnets.0.foo.weight", "down_blocks.0.downsamplers.1.conv.weight",
            "add_embedding.linear_3.weight", "class_embedding.linear_1.weight", "time_embedding.cond_proj.weight",
            "mid_block.resnets.x.conv1.weight", "time_embedding.linear_3.weight",
            "unet.something.weight", "up_blocks.01.resnets.0.conv1.weight",
        ]
        for bad in badDiffusers {
            XCTAssertThrowsError(try UNetNaming.rename(diffusers + [bad], to: .ldm), bad) { error in
                XCTAssertEqual((error as? UNetNamingError).map { if case let .unmappableName(name, _) = $0 { name } else { "" } }, bad)
            }
        }
        let error = UNetNamingError.unmappableName("x.weight", reason: "unknown UNet module 'x'")
        XCTAssertEqual(error.description, "cannot rename UNet tensor 'x.weight': unknown UNet module 'x'")
    }

    func testCollisionIsReported() throws {
        let ldm = try sd15LDM()
        let names = ldm + ["down_blocks.0.resnets.0.conv1.weight"]
        XCTAssertThrowsError(try UNetNaming.rename(names, to: .diffusers)) { error in
            XCTAssertEqual(error as? UNetNamingError, .nameCollision(
                "down_blocks.0.resnets.0.conv1.weight",
                first: "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
                second: "down_blocks.0.resnets.0.conv1.weight"))
        }
    }

    /// The rules follow the structure found, not SD's fixed numbering: one layer per block, two blocks.
    func testOtherBlockStructureRoundTrips() throws {
        let diffusers = [
            "conv_in.weight", "down_blocks.0.resnets.0.conv1.weight", "down_blocks.0.attentions.0.proj_in.weight",
            "down_blocks.0.downsamplers.0.conv.weight", "down_blocks.1.resnets.0.conv_shortcut.weight",
            "mid_block.resnets.0.norm1.weight", "mid_block.resnets.1.norm1.weight",
            "up_blocks.0.resnets.0.conv2.weight", "up_blocks.0.resnets.1.conv2.weight",
            "up_blocks.0.upsamplers.0.conv.weight", "up_blocks.1.resnets.0.conv2.weight",
            "up_blocks.1.attentions.1.proj_out.weight", "up_blocks.1.resnets.1.norm2.weight", "conv_out.bias",
        ]
        let ldm = try UNetNaming.rename(diffusers, to: .ldm)
        XCTAssertEqual(ldm.map { String($0.dropFirst(UNetNaming.ldmPrefix.count)) }, [
            "input_blocks.0.0.weight", "input_blocks.1.0.in_layers.2.weight", "input_blocks.1.1.proj_in.weight",
            "input_blocks.2.0.op.weight", "input_blocks.3.0.skip_connection.weight",
            "middle_block.0.in_layers.0.weight", "middle_block.1.in_layers.0.weight",
            "output_blocks.0.0.out_layers.3.weight", "output_blocks.1.0.out_layers.3.weight",
            "output_blocks.1.1.conv.weight", "output_blocks.2.0.out_layers.3.weight",
            "output_blocks.3.1.proj_out.weight", "output_blocks.3.0.out_layers.0.weight", "out.2.bias",
        ])
        XCTAssertEqual(try UNetNaming.rename(ldm, to: .diffusers), diffusers)
    }
}
