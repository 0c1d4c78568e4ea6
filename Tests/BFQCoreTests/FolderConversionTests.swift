import Foundation
import XCTest
@testable import BFQCore

/// Sharded and diffusers folder outputs against what huggingface_hub, diffusers and transformers write.
final class FolderConversionTests: XCTestCase {
    /// huggingface_hub's `parse_size_to_int`: decimal and binary units; anything else refused.
    func testShardSizes() throws {
        let sizes: [(String, Int)] = [("5GB", 5_000_000_000), ("25KB", 25_000), ("2GiB", 2 << 30), ("500mb", 500_000_000),
                                      ("1024", 1024), ("0.5GB", 500_000_000), ("3 MiB", 3 << 20), ("1TB", 1_000_000_000_000)]
        for (text, bytes) in sizes { XCTAssertEqual(try ShardSize.parse(text), bytes, text) }
        for text in ["0", "5XB", "", "GB", "-1GB", "1e3GB", "nanGB", "99999999999TB"] {
            XCTAssertThrowsError(try ShardSize.parse(text), text) { XCTAssertEqual($0 as? AssemblyError, .badShardSize(text)) }
        }
        // A tensor above the limit gets its own shard, placed before the shard being filled; the rest fill in order.
        XCTAssertEqual(ShardSize.split([4, 4, 9, 1, 3, 2], limit: 8), [[2], [0, 1], [3, 4, 5]])
        XCTAssertEqual(ShardSize.split([4, 20, 4, 1], limit: 8), [[1], [0, 2], [3]])
    }

    /// Resharding the state-dict-ordered UNet gives diffusers' own three shards and index, byte for byte.
    func testReshardingReproducesDiffusersFiles() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path("folders/tiny_base.state_order.ckpt"))
        let output = try TestFiles.temporaryDirectory() + "/unet"
        let plan = try ConversionPlan(checkpoint, options: ConversionOptions(names: .diffusers, only: "unet"), outputPath: output)
        let folder = try FolderConversion(plan, shardSize: try ShardSize.parse("25KB"), diffusers: true,
                                          unetConfig: TestFiles.path("sdxl/tiny_base.config.json"))
        XCTAssertEqual(folder.shards.map(\.count), [348, 304, 188])
        try folder.write(to: output, durable: false)
        let expected = TestFiles.path("folders/sdxl_pipeline/unet")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output).sorted(),
                       try FileManager.default.contentsOfDirectory(atPath: expected).sorted())
        for name in try FileManager.default.contentsOfDirectory(atPath: expected) {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: expected + "/" + name)), name)
        }
        // One shard: the plain name and no index.
        let whole = try FolderConversion(plan, shardSize: try ShardSize.parse("1GB"), diffusers: false)
        XCTAssertEqual(whole.shards.count, 1)
        XCTAssertEqual(whole.shardName(0), "model.safetensors")
        XCTAssertNil(whole.indexName)
    }

    /// The config.json written for each full-size UNet, inferred from its tensor shapes alone, is the file diffusers'
    /// save_config writes for its published config, byte for byte; and it reads back as the same configuration.
    func testInferredConfigsAreDiffusersOwn() throws {
        let models = [("sd15", "sd15_unet_shapes.ldm.json"), ("sd21", "sd2_unet_shapes.diffusers.json"),
                      ("sdxl_base", "../sdxl/sdxl_base_shapes.diffusers.json"), ("sdxl_refiner", "../sdxl/sdxl_refiner_shapes.diffusers.json"),
                      ("ssd1b", "../sdxl/ssd1b_shapes.diffusers.json"), ("vega", "../sdxl/vega_shapes.diffusers.json")]
        for (model, shapesFile) in models {
            let (names, shapes) = try NamingFixtures.shapes(shapesFile)
            let renamed = try UNetNaming.rename(names, to: .diffusers)
            let config = try UNetConfig.inferred(from: Dictionary(uniqueKeysWithValues: zip(renamed, shapes)), path: model)
            let expected = try String(contentsOfFile: TestFiles.path("configs/\(model).config.json"), encoding: .utf8)
            XCTAssertEqual(JSONWriter.python(config.diffusersJSON), expected, model)
            XCTAssertEqual(try UNetConfig(json: JSONParser.parse(expected), path: model), config, model)
        }
    }

    /// Python's json.dumps(indent=2): escapes, non-ASCII as \u escapes (surrogate pairs), empty containers, numbers.
    func testPythonJSONText() {
        let value = JSONValue.object([
            JSONMember("a\"\\\n\t\u{1}é😀", .array([.int(-3), .double(1e-05), .double(0), .double(2.5), .double(1e16), .null, .bool(true)])),
            JSONMember("empty", .object([])), JSONMember("list", .array([])),
        ])
        XCTAssertEqual(JSONWriter.python(value), """
        {
          "a\\"\\\\\\n\\t\\u0001\\u00e9\\ud83d\\ude00": [
            -3,
            1e-05,
            0.0,
            2.5,
            1e+16,
            null,
            true
          ],
          "empty": {},
          "list": []
        }

        """)
    }

    /// A folder replaces a previous output whole, and refuses folders holding other files or the input.
    func testFolderReplacement() throws {
        let directory = try TestFiles.temporaryDirectory()
        let output = directory + "/out"
        func write(_ text: String) throws {
            let folder = try AtomicFolderWriter(path: output, inputs: [], durable: false, replaceable: FolderConversion.writes)
            try TextFile.write(text, to: folder.target("model.safetensors.index.json"))
            try TextFile.write(text, to: folder.target("config.json"))
            // Nothing is named until the folder is complete.
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != "out" }, [])
            try folder.commit()
        }
        try write("first")
        try write("second")
        XCTAssertEqual(try String(contentsOfFile: output + "/config.json", encoding: .utf8), "second")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out"])
        // An abandoned write leaves the previous folder as it was.
        do {
            let folder = try AtomicFolderWriter(path: output, inputs: [], durable: false, replaceable: FolderConversion.writes)
            try TextFile.write("third", to: folder.target("config.json"))
        }
        XCTAssertEqual(try String(contentsOfFile: output + "/config.json", encoding: .utf8), "second")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out"])
        // Other files, subfolders and inputs are never replaced.
        try "notes".write(toFile: output + "/notes.txt", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AtomicFolderWriter(path: output, inputs: [], durable: false, replaceable: FolderConversion.writes)) {
            XCTAssertEqual($0 as? AssemblyError, .outputFolderHoldsOtherFiles(path: output, file: "notes.txt"))
        }
        try FileManager.default.removeItem(atPath: output + "/notes.txt")
        let input = try MappedFile(path: output + "/config.json")
        XCTAssertThrowsError(try AtomicFolderWriter(path: output, inputs: [input], durable: false, replaceable: FolderConversion.writes)) {
            XCTAssertEqual($0 as? AssemblyError, .outputFolderHoldsInput(path: output, input: output + "/config.json"))
        }
        // A file where the folder should go is not replaced either.
        try "a file".write(toFile: directory + "/file", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AtomicFolderWriter(path: directory + "/file", inputs: [], durable: false, replaceable: FolderConversion.writes)) {
            XCTAssertEqual($0 as? AssemblyError, .outputNotAFolder(path: directory + "/file"))
        }
        for name in ["model-00001-of-00003.safetensors", "diffusion_pytorch_model.safetensors", "model.safetensors.index.json", "config.json"] {
            XCTAssertTrue(FolderConversion.writes(name), name)
        }
        for name in ["model-1-of-3.safetensors", "model-00001-of-00003.bin", "unet.safetensors", "model.safetensors.tmp", "x.json",
                     "model-00001-of-00003.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json.bak"] {
            XCTAssertFalse(FolderConversion.writes(name), name)
        }
    }
}
