import Foundation
import XCTest
@testable import BFQCore

/// diffusers folders as `save_pretrained` writes them read as one checkpoint; broken ones refused naming both files.
final class DiffusersFolderTests: XCTestCase {
    private let pipeline = "folders/sdxl_pipeline"

    func testPipelineComponentsUnderTheirNames() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path(pipeline))
        var counts: [String: Int] = [:]
        for tensor in checkpoint.tensors { counts[String(tensor.name.prefix { $0 != "." }), default: 0] += 1 }
        XCTAssertEqual(counts, ["unet": 840, "vae": 124, "text_encoder": 36, "text_encoder_2": 37])
        XCTAssertEqual(checkpoint.files.count, 6)
        guard case let .pipeline(modelIndex, components)? = checkpoint.assembly else { return XCTFail("not a pipeline") }
        XCTAssertEqual(modelIndex, TestFiles.path(pipeline) + "/model_index.json")
        XCTAssertEqual(components.map(\.name), ["text_encoder", "text_encoder_2", "unet", "vae"])
        XCTAssertEqual(components.map(\.className), ["CLIPTextModel", "CLIPTextModelWithProjection", "UNet2DConditionModel", "AutoencoderKL"])
        XCTAssertEqual(components.map(\.fileCount), [1, 1, 3, 1])
        XCTAssertEqual(checkpoint.unetConfigPath, TestFiles.path(pipeline) + "/unet/config.json")
        // The UNet's bytes are the single file's, reached through its shards.
        let single = try CheckpointFile.open(TestFiles.path("sdxl/tiny_base.diffusers.safetensors"))
        let byName = Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0) })
        for tensor in single.tensors {
            let entry = try XCTUnwrap(byName["unet." + tensor.name])
            XCTAssertEqual(try checkpoint.withContiguousBytes(of: entry) { Array($0) }, try single.withContiguousBytes(of: tensor) { Array($0) })
        }
        // Recognised as what it is, and model_index.json opens the same folder.
        let model = try XCTUnwrap(ModelRecognition.recognise(names: checkpoint.tensors.map(\.name), shapes: checkpoint.tensors.map(\.shape)))
        XCTAssertEqual(model.components, [.unet, .vae, .textEncoder])
        XCTAssertEqual(model.textEncoderCount, 2)
        XCTAssertEqual(try CheckpointFile.open(TestFiles.path(pipeline + "/model_index.json")).tensors, checkpoint.tensors)
    }

    /// A component folder keeps the file's names; its config.json is the UNet's configuration.
    func testComponentFolder() throws {
        let unet = try CheckpointFile.open(TestFiles.path(pipeline + "/unet"))
        XCTAssertEqual(unet.tensors.count, 840)
        XCTAssertTrue(unet.tensors.contains { $0.name == "conv_in.weight" })
        XCTAssertEqual(unet.unetConfigPath, TestFiles.path(pipeline + "/unet/config.json"))
        let loaded = try LoadedUNet.open(TestFiles.path(pipeline + "/unet"))
        XCTAssertEqual(loaded.configSource, TestFiles.path(pipeline + "/unet/config.json"))
        XCTAssertEqual(loaded.model.config, try UNetConfig.load(TestFiles.path("sdxl/tiny_base.config.json")))
        let encoder = try CheckpointFile.open(TestFiles.path("folders/text_encoder_bin"))
        XCTAssertEqual(encoder.tensors.count, 36)
        guard case let .component(component)? = encoder.assembly else { return XCTFail("not a component") }
        XCTAssertEqual(component.weights, "pytorch_model.bin.index.json")
        XCTAssertEqual(component.className, "CLIPTextModel")
        XCTAssertNil(encoder.unetConfigPath)
    }

    /// The pipeline's UNet runs as diffusers ran it (diffusers 0.42.1 output on the loaded folder).
    func testPipelineUNetMatchesDiffusers() throws {
        let unet = try LoadedUNet.open(TestFiles.path(pipeline))
        let io = TestFiles.path("folders/sdxl_pipeline_diffusers_ref.safetensors")
        let prediction = try unet.predict(try UNetInput.load(io))
        let reference = try CheckpointFile.open(io)
        let expected = try reference.floats(of: XCTUnwrap(reference.tensors.first { $0.name == "noise_pred" }))
        XCTAssertEqual(prediction.count, expected.count)
        XCTAssertLessThan(zip(prediction, expected).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// A copy of the pipeline folder in a temporary directory.
    private func copy() throws -> String {
        let directory = try TestFiles.temporaryDirectory() + "/pipeline"
        try FileManager.default.copyItem(atPath: TestFiles.path(pipeline), toPath: directory)
        return directory
    }

    func testBrokenFoldersAreRefused() throws {
        // model_index.json names a component whose folder is gone.
        var folder = try copy()
        try FileManager.default.removeItem(atPath: folder + "/vae")
        XCTAssertThrowsError(try CheckpointFile.open(folder)) {
            XCTAssertEqual($0 as? AssemblyError, .missingComponent(modelIndex: folder + "/model_index.json", component: "vae", folder: folder + "/vae"))
        }
        // A model component (config.json) without weights.
        folder = try copy()
        try FileManager.default.removeItem(atPath: folder + "/vae/diffusion_pytorch_model.safetensors")
        XCTAssertThrowsError(try CheckpointFile.open(folder)) {
            XCTAssertEqual($0 as? AssemblyError, .noWeights(folder: folder + "/vae", found: ["config.json"]))
        }
        // A UNet config.json that disagrees with the weights names both files and the tensor.
        folder = try copy()
        let config = folder + "/unet/config.json"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "\"cross_attention_dim\": 12", with: "\"cross_attention_dim\": 16")
            .write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CheckpointFile.open(folder)) { error in
            guard case let .configDisagrees(path, weights, detail)? = error as? AssemblyError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, config)
            XCTAssertEqual(weights, folder + "/unet/diffusion_pytorch_model.safetensors.index.json")
            XCTAssertTrue(detail.hasPrefix("tensor ") && detail.contains("attn2.to_k.weight") && detail.contains("expected [") , detail)
        }
        // A folder that is nothing bfq reads.
        let empty = try TestFiles.temporaryDirectory()
        XCTAssertThrowsError(try CheckpointFile.open(empty)) { XCTAssertEqual($0 as? AssemblyError, .notACheckpointFolder(path: empty)) }
        // Not JSON.
        folder = try copy()
        try "{\"unet\": [".write(toFile: folder + "/model_index.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CheckpointFile.open(folder)) {
            guard case .badIndex(folder + "/model_index.json", _)? = $0 as? AssemblyError else { return XCTFail("\($0)") }
        }
    }

    /// Without plain weights, the one variant present is read; with two, the folder is refused listing them.
    func testVariants() throws {
        let folder = try copy()
        let vae = folder + "/vae"
        try FileManager.default.moveItem(atPath: vae + "/diffusion_pytorch_model.safetensors", toPath: vae + "/diffusion_pytorch_model.fp16.safetensors")
        let checkpoint = try CheckpointFile.open(folder)
        XCTAssertEqual(checkpoint.tensors.filter { $0.name.hasPrefix("vae.") }.count, 124)
        try FileManager.default.copyItem(atPath: vae + "/diffusion_pytorch_model.fp16.safetensors", toPath: vae + "/diffusion_pytorch_model.non_ema.safetensors")
        XCTAssertThrowsError(try CheckpointFile.open(folder)) {
            XCTAssertEqual($0 as? AssemblyError, .ambiguousWeights(folder: vae, files: ["diffusion_pytorch_model.fp16.safetensors",
                                                                                      "diffusion_pytorch_model.non_ema.safetensors"]))
        }
        // A plain file wins over variants, as in diffusers.
        try FileManager.default.copyItem(atPath: vae + "/diffusion_pytorch_model.fp16.safetensors", toPath: vae + "/diffusion_pytorch_model.safetensors")
        XCTAssertEqual(try DiffusersFolder.weightFile(in: vae), "diffusion_pytorch_model.safetensors")
    }
}
