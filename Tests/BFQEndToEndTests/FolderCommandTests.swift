import Foundation
import XCTest
@testable import BFQCore

/// Shard indexes, diffusers pipeline and component folders, component surgery and folder outputs through the commands
/// a user runs, on testdata/folders/ (diffusers', transformers' and torch's own files).
final class FolderCommandTests: XCTestCase {
    private let pipeline = BFQProcess.path("folders/sdxl_pipeline")
    private let unet = BFQProcess.path("folders/sdxl_pipeline/unet")
    private let index = BFQProcess.path("folders/sdxl_pipeline/unet/diffusion_pytorch_model.safetensors.index.json")
    private let binFolder = BFQProcess.path("folders/text_encoder_bin")
    private let stateOrder = BFQProcess.path("folders/tiny_base.state_order.ckpt")
    private let fullEMA = BFQProcess.path("folders/tiny_full_ema.ckpt")
    private let expectedEMA = BFQProcess.path("folders/tiny_full_ema.expected_ema.diffusers.safetensors")
    private let pipelineIO = BFQProcess.path("folders/sdxl_pipeline_diffusers_ref.safetensors")
    private let single = BFQProcess.path("sdxl/tiny_base.diffusers.safetensors")
    private let full = BFQProcess.path("sdxl/tiny_base_full.safetensors")
    private let ldm = BFQProcess.path("sdxl/tiny_base.ldm.safetensors")
    private let config = BFQProcess.path("sdxl/tiny_base.config.json")

    private static let shards = (1 ... 3).map { "diffusion_pytorch_model-0000\($0)-of-00003.safetensors" }
    private static let unetFiles = ["config.json"] + shards + ["diffusion_pytorch_model.safetensors.index.json"]
    /// tiny_full_ema.ckpt's optimizer states beside its state_dict, which every reader of it is told about.
    private static let optimizerWarning = "bfq: warning: \(BFQProcess.path("folders/tiny_full_ema.ckpt")): skipped 3 tensor(s) "
        + "outside state_dict (e.g. 'optimizer_states.0.state.0.exp_avg')"

    // MARK: helpers

    @discardableResult
    private func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> BFQRun {
        let run = try BFQProcess.run(arguments)
        XCTAssertEqual(run.status, 0, "\(arguments): \(run.stderr)", file: file, line: line)
        return run
    }

    /// Runs `arguments`, which must fail on bad input: exit status 2, nothing on stdout, one `bfq: error:` line (after
    /// the warnings `allowedWarnings` lists) holding every one of `mentions`, and none of `absent` left behind.
    private func refuse(_ arguments: [String], mentions: [String], absent: [String] = [], allowedWarnings: [String] = [],
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let run = try BFQProcess.run(arguments)
        let label = "bfq \(arguments.joined(separator: " "))"
        XCTAssertEqual(run.status, 2, "\(label): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stdout, "", label, file: file, line: line)
        XCTAssertTrue(run.stderr.hasSuffix("\n"), "\(label): \(run.stderr)", file: file, line: line)
        let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        let errors = lines.filter { !allowedWarnings.contains($0) }
        XCTAssertEqual(errors.count, 1, "\(label): \(run.stderr)", file: file, line: line)
        XCTAssertTrue(errors.first?.hasPrefix("bfq: error: ") ?? false, "\(label): \(run.stderr)", file: file, line: line)
        for mention in mentions {
            XCTAssertTrue(errors.first?.contains(mention) ?? false, "\(label): \(run.stderr) does not mention \(mention)",
                          file: file, line: line)
        }
        for path in absent {
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(label) left \(path)", file: file, line: line)
        }
    }

    /// Every tensor of a checkpoint (file, index or folder): dtype, shape and raw bytes, by name.
    private func tensors(_ path: String) throws -> [String: (dtype: DType, shape: [Int], bytes: [UInt8])] {
        let checkpoint = try CheckpointFile.open(path)
        var result: [String: (dtype: DType, shape: [Int], bytes: [UInt8])] = [:]
        for entry in checkpoint.tensors {
            result[entry.name] = (entry.dtype, entry.shape, try checkpoint.withContiguousBytes(of: entry) { Array($0) })
        }
        return result
    }

    /// Asserts `actual` holds exactly `expected`'s tensors, renamed by `rename`, with the same dtype, shape and bytes.
    private func assertSameTensors(_ actual: String, _ expected: String, renamedBy rename: (String) -> String? = { $0 },
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let mine = try tensors(actual)
        var theirs: [String: (dtype: DType, shape: [Int], bytes: [UInt8])] = [:]
        for (name, tensor) in try tensors(expected) { if let renamed = rename(name) { theirs[renamed] = tensor } }
        XCTAssertEqual(Set(mine.keys), Set(theirs.keys), "\(actual) vs \(expected)", file: file, line: line)
        var differing: [String] = []
        for (name, tensor) in theirs {
            guard let other = mine[name] else { continue }
            if other.dtype != tensor.dtype || other.shape != tensor.shape || other.bytes != tensor.bytes { differing.append(name) }
        }
        XCTAssertEqual(differing.sorted(), [], "\(actual) vs \(expected)", file: file, line: line)
    }

    /// The files of `folder` (and of its folders) and their bytes, by relative path.
    private func snapshot(_ folder: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: folder) {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder), !isFolder.boolValue else { continue }
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return files
    }

    private func list(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    /// A copy of testdata/folders/NAME in a fresh folder.
    private func copyOf(_ name: String) throws -> String {
        let copy = try BFQProcess.temporaryDirectory() + "/" + name
        try FileManager.default.copyItem(atPath: BFQProcess.path("folders/" + name), toPath: copy)
        return copy
    }

    /// Rewrites the JSON object in `path` (keys sorted, as diffusers writes them).
    private func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: path))
    }

    /// Edits a shard index's weight_map.
    private func editWeightMap(_ path: String, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try editJSON(path) { object in
            var map = object["weight_map"] as! [String: Any]
            edit(&map)
            object["weight_map"] = map
        }
    }

    private func json(_ run: BFQRun, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try JSONParser.parse(run.stdout)
    }

    /// The SHA-256 of `files` one after another, as sha256sum computes it.
    private func sha256(of files: [String]) throws -> String {
        let joined = try BFQProcess.temporaryDirectory() + "/joined"
        var data = Data()
        for file in files { data += try Data(contentsOf: URL(fileURLWithPath: file)) }
        try data.write(to: URL(fileURLWithPath: joined))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [joined]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: output, as: UTF8.self).prefix(64))
    }

    private func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    private func floats(_ file: String, _ name: String) throws -> [Float] {
        let checkpoint = try CheckpointFile.open(file)
        return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, name))
    }

    // MARK: 1. every command reads an index, a pipeline folder and a component folder

    func testInspectCountsEveryFileOfAnIndexAPipelineAndAComponentFolder() throws {
        let folderText = try succeed(["inspect", unet]).stdout
        XCTAssertTrue(folderText.contains("\nfiles       3: diffusers component folder: UNet2DConditionModel, "
            + "diffusion_pytorch_model.safetensors.index.json (3 shards)\n"), folderText)
        XCTAssertTrue(folderText.contains("\ntensors     840\n"), folderText)
        XCTAssertTrue(folderText.contains("\nsize        159,688 bytes\n"), folderText)  // 65,168 + 60,364 + 34,156
        XCTAssertTrue(folderText.contains("\ndata        64,160 bytes\n"), folderText)
        XCTAssertTrue(folderText.contains("\nnaming      diffusers\n"), folderText)
        XCTAssertTrue(folderText.contains("\nmodel       SDXL-structured UNet (scaled: 2/4/6 channels, cross-attention 12"), folderText)

        let indexText = try succeed(["inspect", index]).stdout
        XCTAssertTrue(indexText.contains("\nfiles       3: 3 shards listed by diffusion_pytorch_model.safetensors.index.json\n"), indexText)
        XCTAssertTrue(indexText.contains("\ntensors     840\n"), indexText)
        XCTAssertTrue(indexText.contains("\nparameters  32,080 (0.0M)\n"), indexText)

        let pipelineText = try succeed(["inspect", pipeline]).stdout
        XCTAssertTrue(pipelineText.contains("\nfiles       6: diffusers pipeline: text_encoder (CLIPTextModel, model.safetensors), "
            + "text_encoder_2 (CLIPTextModelWithProjection, model.safetensors), unet (UNet2DConditionModel, "
            + "diffusion_pytorch_model.safetensors.index.json (3 shards)), vae (AutoencoderKL, diffusion_pytorch_model.safetensors)\n"),
                      pipelineText)
        XCTAssertTrue(pipelineText.contains("\ntensors     1,037\n"), pipelineText)
        XCTAssertTrue(pipelineText.contains("\nmodel       SDXL-structured checkpoint (UNet + VAE + two text encoders)"), pipelineText)
        // model_index.json stands for its folder.
        XCTAssertEqual(try succeed(["inspect", pipeline + "/model_index.json"]).stdout
            .replacingOccurrences(of: pipeline + "/model_index.json", with: pipeline), pipelineText)

        // JSON: every file, each tensor under its component's prefix.
        let json = try json(try succeed(["inspect", pipeline, "--json"]))
        XCTAssertEqual(json["tensor_count"]?.intValue, 1037)
        XCTAssertEqual(json["file_size"]?.intValue, 208_710)
        XCTAssertEqual(json["files"]?.arrayValue?.compactMap(\.stringValue), [
            "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
        ].map { pipeline + "/" + $0 } + Self.shards.map { unet + "/" + $0 } + [pipeline + "/vae/diffusion_pytorch_model.safetensors"])
        let names = json["tensors"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        var counts: [String: Int] = [:]
        for name in names { counts[String(name.prefix { $0 != "." }), default: 0] += 1 }
        XCTAssertEqual(counts, ["unet": 840, "vae": 124, "text_encoder": 36, "text_encoder_2": 37])
        XCTAssertTrue(names.contains("text_encoder.embeddings.token_embedding.weight"))
        XCTAssertTrue(names.contains("text_encoder_2.text_model.embeddings.token_embedding.weight"))
        XCTAssertTrue(names.contains("text_encoder_2.text_projection.weight"))
        let unetJSON = try self.json(try succeed(["inspect", unet, "--json"]))
        XCTAssertEqual(unetJSON["tensor_count"]?.intValue, 840)
        XCTAssertEqual(unetJSON["metadata"], .object([JSONMember("format", "pt")]))
        XCTAssertEqual(unetJSON["files"]?.arrayValue?.compactMap(\.stringValue), Self.shards.map { unet + "/" + $0 })

        // transformers 4's sharded .bin set, as a folder and as its index.
        for path in [binFolder, binFolder + "/pytorch_model.bin.index.json"] {
            let bin = try self.json(try succeed(["inspect", path, "--json"]))
            XCTAssertEqual(bin["format"], "pytorch-zip")
            XCTAssertEqual(bin["tensor_count"]?.intValue, 36)
            XCTAssertEqual(bin["parameters"]?.intValue, 652)
            XCTAssertEqual(bin["tensor_bytes"]?.intValue, 1304)
            XCTAssertEqual(bin["files"]?.arrayValue?.count, 2)
        }
    }

    func testStatsOfTheShardedUNetAreTheSingleFilesRows() throws {
        let reference = try succeed(["stats", single, "--csv"]).stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(reference.count, 841)
        for path in [unet, index] {
            let rows = try succeed(["stats", path, "--csv"]).stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(rows.first, reference.first)
            XCTAssertEqual(rows.dropFirst().sorted(), reference.dropFirst().sorted(), path)
            let json = try self.json(try succeed(["stats", path, "--json"]))
            let referenceJSON = try self.json(try succeed(["stats", single, "--json"]))
            func byName(_ value: JSONValue) -> [String: JSONValue] {
                Dictionary(uniqueKeysWithValues: (value["tensors"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "", $0) })
            }
            XCTAssertEqual(byName(json).count, 840)
            XCTAssertEqual(byName(json), byName(referenceJSON), path)
        }
    }

    func testDiffFindsTheShardedUNetAndTheBinShardsEqualToTheirSingleFiles() throws {
        for path in [unet, index] {
            let run = try BFQProcess.run(["diff", path, single])
            XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
            XCTAssertTrue(run.stdout.hasSuffix("840 tensors in both, 0 differ; 0 only in the first, 0 only in the second\n"), run.stdout)
        }
        // The pipeline's UNet is the single-file checkpoint's UNet (names matched across schemes and prefixes).
        let run = try BFQProcess.run(["diff", pipeline, ldm])
        XCTAssertTrue(run.stdout.hasSuffix("840 tensors in both, 0 differ; 197 only in the first, 0 only in the second\n"), run.stdout)
        // transformers 4's .bin shards hold the pipeline's text encoder under text_model. names, value for value.
        let converted = try BFQProcess.temporaryDirectory() + "/text_encoder.safetensors"
        try succeed(["convert", binFolder + "/pytorch_model.bin.index.json", converted])
        try assertSameTensors(converted, pipeline + "/text_encoder/model.safetensors") { "text_model." + $0 }
    }

    func testUNetRunsFromAPipelineAComponentFolderAndAnIndexAsDiffusersDoes() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let expected = try floats(pipelineIO, "noise_pred")
        for (model, name) in [(pipeline, "pipeline"), (unet, "folder"), (index, "index")] {
            let output = directory + "/\(name).safetensors"
            try succeed(["unet", model, "--input", pipelineIO, "--output", output])
            let actual = try floats(output, "noise_pred")
            XCTAssertEqual(actual.count, 256)
            XCTAssertLessThan(maxAbsoluteDifference(actual, expected), 1e-5, name)
        }
        // Without the folder's config.json the same weights cannot run (SDXL's time-id width is not in the weights):
        // the folder's own config is what made the runs above possible.
        try refuse(["unet", single, "--input", pipelineIO, "--output", directory + "/none.safetensors"],
                   mentions: [single, "give the model's config.json"], absent: [directory + "/none.safetensors"])
    }

    func testQuantizeAPipelineThenVerifyAndEvalAgainstTheFolder() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/pipeline.bfq"
        try succeed(["quantize", pipeline, output, "--bits", "3"])
        let verify = try BFQProcess.run(["verify", output, "--against", pipeline])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("1037 tensors in both"), verify.stdout)
        XCTAssertTrue(verify.stdout.contains("; 0 only in the first, 0 only in the second"), verify.stdout)
        // The VAE and text encoders are kept exactly.
        let kept = verify.stdout.split(separator: "\n").filter { $0.hasPrefix("vae.") || $0.hasPrefix("text_encoder") }
        XCTAssertEqual(kept.count, 197)
        for line in kept { XCTAssertEqual(line.split(separator: " ").suffix(2), ["0", "inf"], String(line)) }
        // Against the UNet folder alone, the other components are missing: the check fails.
        XCTAssertEqual(try BFQProcess.run(["verify", output, "--against", unet]).status, 1)
        // The manifest records the folder: its name, the weight files' total size and their SHA-256 one after another.
        let inspected = try json(try succeed(["inspect", pipeline, "--json"]))
        let files = inspected["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let source = try XCTUnwrap(try ContainerReader(try MappedFile(path: output)).manifest.source)
        XCTAssertEqual(source.name, "sdxl_pipeline")
        XCTAssertEqual(source.size, 208_710)
        XCTAssertEqual(source.sha256, try sha256(of: files))

        // eval: the folder against its quantized self is worse than itself and better than noise; against its own
        // index, exact. (The .bfq keeps no config.json: the candidate needs the folder's.)
        let small = ["--size", "8x8", "--samples", "1", "--timesteps", "500", "--tokens", "3", "--json"]
        let quantized = try json(try succeed(["eval", pipeline, output, "--candidate-config", unet + "/config.json"] + small))
        let sqnr = try XCTUnwrap(quantized["sqnr_db"]?.doubleValue, "\(quantized)")
        XCTAssertGreaterThan(sqnr, 3)
        XCTAssertLessThan(sqnr, 60)
        let same = try json(try succeed(["eval", pipeline, index] + small))
        XCTAssertEqual(same["sqnr_db"], .null)
        XCTAssertEqual(same["mse"]?.doubleValue, 0)
    }

    func testPlanAndQuantizeAreTheSameFromTheFolderTheIndexAndTheSingleFile() throws {
        let directory = try BFQProcess.temporaryDirectory()
        // Output sensitivity runs the UNet, so each input must bring its config: the folder's, the one beside the
        // index, the pipeline's unet/config.json; the single file needs --unet-config.
        let measure = ["--bits", "2", "--sensitivity", "output", "--calibration-size", "8x8", "--calibration-samples", "1",
                       "--calibration-timesteps", "501"]
        let inputs: [(String, [String])] = [("folder", [unet]), ("index", [index]), ("pipeline", [pipeline]),
                                            ("file", [single, "--unet-config", config])]
        var plans: [String: Data] = [:]
        for (name, input) in inputs {
            let path = directory + "/\(name).plan.json"
            try succeed(["plan"] + input + measure + ["-o", path])
            plans[name] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
        for name in ["index", "pipeline", "file"] { XCTAssertEqual(plans[name], plans["folder"], name) }
        let plan = try JSONParser.parse(try String(contentsOfFile: directory + "/folder.plan.json", encoding: .utf8))
        XCTAssertEqual(plan["sensitivity"], "output")
        XCTAssertEqual(plan["layers"]?.arrayValue?.count, 372)
        try refuse(["plan", single] + measure + ["-o", directory + "/never.json"], mentions: [single, "config.json"],
                   absent: [directory + "/never.json"])

        // quantize with that plan (GPTQ runs the UNet with the config each input brings): the same layers, the
        // same values; the files differ only in what they record of the source (its name, metadata, tensor order).
        var summaries: [String: JSONValue] = [:]
        for (name, input) in inputs where name != "pipeline" {
            let output = directory + "/\(name).bfq"
            try succeed(["quantize"] + input + [output, "--plan", directory + "/folder.plan.json"] + Array(measure.dropFirst(4)))
            summaries[name] = try json(try succeed(["inspect", output, "--json"]))
        }
        func tensors(_ name: String) -> [JSONValue] {
            (summaries[name]?["tensors"]?.arrayValue ?? []).sorted { ($0["name"]?.stringValue ?? "") < ($1["name"]?.stringValue ?? "") }
        }
        XCTAssertEqual(tensors("folder").count, 840)
        XCTAssertEqual(tensors("index"), tensors("folder"))
        XCTAssertEqual(tensors("file"), tensors("folder"))
        for name in ["index", "file"] {
            let diff = try BFQProcess.run(["diff", directory + "/folder.bfq", directory + "/\(name).bfq"])
            XCTAssertEqual(diff.status, 0, diff.stdout)
            XCTAssertTrue(diff.stdout.hasSuffix("840 tensors in both, 0 differ; 0 only in the first, 0 only in the second\n"), diff.stdout)
        }
        let shardSHA = try sha256(of: Self.shards.map { unet + "/" + $0 })
        for (name, sourceName, size, sha) in [("folder", "unet", 159_688, shardSHA),
                                              ("index", "diffusion_pytorch_model.safetensors.index.json", 159_688, shardSHA),
                                              ("file", "tiny_base.diffusers.safetensors", 160_128, try sha256(of: [single]))] {
            let source = try XCTUnwrap(try ContainerReader(try MappedFile(path: directory + "/\(name).bfq")).manifest.source)
            XCTAssertEqual(source.name, sourceName)
            XCTAssertEqual(source.size, size, name)
            XCTAssertEqual(source.sha256, sha, name)
        }
    }

    // MARK: 2. folder outputs: diffusers' own sharding, byte for byte

    func testReshardingAStateDictGivesDiffusersOwnFolderByteForByte() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let out = directory + "/unet"
        let run = try succeed(["convert", stateOrder, out, "--layout", "diffusers", "--shard-size", "25KB", "--unet-config", config])
        XCTAssertEqual(run.stdout, "kept 840 tensors\n\(out): 840 tensors, 64,160 bytes in 3 shards with "
            + "diffusion_pytorch_model.safetensors.index.json; config.json from \(config)\n")
        XCTAssertEqual(try snapshot(out), try snapshot(unet))
        XCTAssertEqual(try list(out), Self.unetFiles.sorted())
        XCTAssertEqual(try list(directory), ["unet"])

        // One shard is big enough: diffusion_pytorch_model.safetensors alone, no index; the same from the folder itself.
        let one = directory + "/one", again = directory + "/again"
        try succeed(["convert", stateOrder, one, "--layout", "diffusers", "--shard-size", "1GB", "--unet-config", config])
        XCTAssertEqual(try list(one), ["config.json", "diffusion_pytorch_model.safetensors"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: one + "/config.json")), try Data(contentsOf: URL(fileURLWithPath: config)))
        try assertSameTensors(one + "/diffusion_pytorch_model.safetensors", single)
        let metadata = try json(try succeed(["inspect", one + "/diffusion_pytorch_model.safetensors", "--json"]))["metadata"]
        XCTAssertEqual(metadata, .object([JSONMember("format", "pt")]))
        try succeed(["convert", unet, again, "--layout", "diffusers"])
        XCTAssertEqual(try snapshot(again), try snapshot(one))

        // Without a layout: transformers' names for the same shards and index.
        let plain = directory + "/plain"
        let plainRun = try succeed(["convert", stateOrder, plain, "--shard-size", "25KB"])
        XCTAssertTrue(plainRun.stdout.hasSuffix("\(plain): 840 tensors, 64,160 bytes in 3 shards with model.safetensors.index.json\n"),
                      plainRun.stdout)
        let renamed = (1 ... 3).map { "model-0000\($0)-of-00003.safetensors" }
        XCTAssertEqual(try list(plain), renamed + ["model.safetensors.index.json"])
        for (mine, theirs) in zip(renamed, Self.shards) {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: plain + "/" + mine)),
                           try Data(contentsOf: URL(fileURLWithPath: unet + "/" + theirs)), mine)
        }
        let indexJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plain + "/model.safetensors.index.json"))) as? [String: Any])
        let reference = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: index))) as? [String: Any])
        let map = try XCTUnwrap(indexJSON["weight_map"] as? [String: String])
        let referenceMap = try XCTUnwrap(reference["weight_map"] as? [String: String])
        XCTAssertEqual(map.count, 840)
        XCTAssertEqual(map, referenceMap.mapValues { $0.replacingOccurrences(of: "diffusion_pytorch_model-", with: "model-") })
        XCTAssertEqual((indexJSON["metadata"] as? [String: Int])?["total_size"], 64_160)
        // The text is diffusers' json.dumps(indent=2, sort_keys=True) + "\n", names changed.
        XCTAssertEqual(try String(contentsOfFile: plain + "/model.safetensors.index.json", encoding: .utf8),
                       try String(contentsOfFile: index, encoding: .utf8).replacingOccurrences(of: "diffusion_pytorch_model-", with: "model-"))
        // The sharded folder reads back as the single file.
        XCTAssertEqual(try BFQProcess.run(["diff", plain, single]).status, 0)
    }

    func testAnOutputFolderReplacesOnlyAPreviousOutputFolder() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let out = directory + "/out"
        try succeed(["convert", single, out, "--shard-size", "25KB"])
        XCTAssertEqual(try list(out).count, 4)
        // A previous output is replaced whole: no shard of the old one is left beside the new single file.
        try succeed(["convert", single, out, "--shard-size", "1GB"])
        XCTAssertEqual(try list(out), ["model.safetensors"])
        try succeed(["convert", stateOrder, out, "--layout", "diffusers", "--unet-config", config])
        XCTAssertEqual(try list(out), ["config.json", "diffusion_pytorch_model.safetensors"])
        XCTAssertEqual(try list(directory), ["out"])

        // A folder holding anything else is refused and left as it was.
        let notes = directory + "/notes"
        try FileManager.default.createDirectory(atPath: notes, withIntermediateDirectories: false)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: notes + "/notes.txt"))
        try Data("old".utf8).write(to: URL(fileURLWithPath: notes + "/model.safetensors"))
        let before = try snapshot(notes)
        try refuse(["convert", single, notes, "--shard-size", "25KB"], mentions: [notes, "notes.txt"])
        try refuse(["convert", single, notes, "--layout", "diffusers", "--unet-config", config], mentions: [notes, "notes.txt"])
        XCTAssertEqual(try snapshot(notes), before)
        let nested = directory + "/nested"
        try FileManager.default.createDirectory(atPath: nested + "/sub", withIntermediateDirectories: true)
        try refuse(["convert", single, nested, "--shard-size", "25KB"], mentions: [nested, "sub"])
        XCTAssertEqual(try list(nested), ["sub"])
        // A file is not a folder to replace.
        let plainFile = directory + "/file"
        try Data("a file".utf8).write(to: URL(fileURLWithPath: plainFile))
        try refuse(["convert", single, plainFile, "--shard-size", "25KB"], mentions: [plainFile])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: plainFile)), Data("a file".utf8))
        XCTAssertEqual(try list(directory), ["file", "nested", "notes", "out"])
    }

    func testAnOutputFolderHoldingTheInputIsRefused() throws {
        // The folder itself (its shards are the input), its index, and a file inside the output folder.
        let copy = try copyOf("sdxl_pipeline") + "/unet"
        let before = try snapshot(copy)
        let indexCopy = copy + "/diffusion_pytorch_model.safetensors.index.json"
        for arguments in [["convert", copy, copy, "--shard-size", "25KB"], ["convert", copy, copy, "--layout", "diffusers"],
                          ["convert", indexCopy, copy, "--shard-size", "1GB"], ["convert", copy + "/", copy + "/", "--shard-size", "25KB"]] {
            try refuse(arguments, mentions: [copy, "holds the input", Self.shards[0]])
            XCTAssertEqual(try snapshot(copy), before)
        }
        let directory = try BFQProcess.temporaryDirectory() + "/model"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: single, toPath: directory + "/model.safetensors")
        try refuse(["convert", directory + "/model.safetensors", directory, "--shard-size", "25KB"],
                   mentions: [directory, "holds the input", directory + "/model.safetensors"])
        XCTAssertEqual(try list(directory), ["model.safetensors"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: directory + "/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: single)))
        XCTAssertEqual(try list((directory as NSString).deletingLastPathComponent), ["model"])
        // The pipeline folder holds component folders: never a folder bfq replaces.
        let pipelineCopy = (copy as NSString).deletingLastPathComponent
        try refuse(["convert", copy, pipelineCopy, "--shard-size", "25KB"], mentions: [pipelineCopy])
        XCTAssertEqual(try snapshot(copy), before)
    }

    func testBadShardSizesAndFileOutputsAreOneLine() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let out = directory + "/out"
        for size in ["0", "5XB", "0.5", "1e3", "GB", "1 GB 2"] {
            try refuse(["convert", single, out, "--shard-size", size],
                       mentions: ["--shard-size must be a size such as 5GB, 500MB, 2GiB or a byte count of at least 1, not \"\(size)\""],
                       absent: [out])
        }
        for name in ["out.safetensors", "out.ckpt", "out.gguf", "out.bfq"] {
            let ext = String(name.dropFirst(3))
            try refuse(["convert", single, directory + "/" + name, "--shard-size", "1GB"],
                       mentions: [directory + "/" + name, "write a folder", "not a \(ext) file"], absent: [directory + "/" + name])
            try refuse(["convert", single, directory + "/" + name, "--layout", "diffusers", "--unet-config", config],
                       mentions: [directory + "/" + name, "write a folder"], absent: [directory + "/" + name])
        }
        try refuse(["convert", single, out, "--shard-size", "25KB", "--unet-config", config],
                   mentions: ["--unet-config applies to --layout diffusers only"], absent: [out])
        try refuse(["convert", single, out, "--layout", "diffusers", "--names", "ldm", "--unet-config", config],
                   mentions: ["--names ldm"], absent: [out])
        // An SDXL UNet's config cannot be inferred from its weights: --layout diffusers needs one.
        try refuse(["convert", stateOrder, out, "--layout", "diffusers"], mentions: [stateOrder, "config.json"], absent: [out])
        // A config.json that does not describe the weights is refused naming both.
        let wrong = directory + "/wrong.json"
        try FileManager.default.copyItem(atPath: config, toPath: wrong)
        try editJSON(wrong) { $0["cross_attention_dim"] = 16 }
        try refuse(["convert", single, out, "--layout", "diffusers", "--unet-config", wrong],
                   mentions: [wrong, single, "attn2.to_k.weight", "[4, 16]", "[4, 12]"], absent: [out])
        // An existing folder as a file output.
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try refuse(["convert", single, out], mentions: [out, "is a folder"])
        XCTAssertEqual(try list(directory), ["out", "wrong.json"])
        XCTAssertEqual(try list(out), [])
    }

    // MARK: 3. surgery

    func testEMAExtractionIsDiffusersExtractEMA() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let ldmOut = directory + "/ema.safetensors", diffusersOut = directory + "/ema.diffusers.safetensors"
        let run = try succeed(["convert", fullEMA, ldmOut, "--ema", "--only", "unet"])
        XCTAssertEqual(run.stdout, "kept 840 tensors, the UNet's 840 from its EMA weights; dropped 842 EMA entries (model_ema.*), "
            + "14 of other components, 12 other entries (betas, alphas_cumprod, alphas_cumprod_prev, ...)\n")
        XCTAssertEqual(run.stderr, Self.optimizerWarning + "\n")
        let diff = try BFQProcess.run(["diff", ldmOut, expectedEMA])
        XCTAssertEqual(diff.status, 0, diff.stdout)
        XCTAssertTrue(diff.stdout.hasSuffix("840 tensors in both, 0 differ; 0 only in the first, 0 only in the second\n"), diff.stdout)
        // The ldm names are kept (unet keeps model.diffusion_model.); renamed, every byte is diffusers' own.
        XCTAssertTrue(try tensors(ldmOut).keys.allSatisfy { $0.hasPrefix("model.diffusion_model.") })
        try succeed(["convert", fullEMA, diffusersOut, "--ema", "--only", "unet", "--names", "diffusers"])
        try assertSameTensors(diffusersOut, expectedEMA)
        // And they are not the live weights.
        let live = try BFQProcess.run(["diff", diffusersOut, single])
        XCTAssertTrue(live.stdout.hasSuffix("840 tensors in both, 840 differ; 0 only in the first, 0 only in the second\n"), live.stdout)
        // The same as a diffusers folder.
        let folder = directory + "/ema"
        try succeed(["convert", fullEMA, folder, "--ema", "--layout", "diffusers", "--shard-size", "25KB", "--unet-config", config])
        XCTAssertEqual(try list(folder), Self.unetFiles.sorted())
        XCTAssertEqual(try BFQProcess.run(["diff", folder, expectedEMA]).status, 0)
        try assertSameTensors(folder, expectedEMA)
    }

    func testPruneKeepsTheModelsWeights() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let pruned = directory + "/pruned.safetensors", both = directory + "/both.safetensors"
        let run = try succeed(["convert", fullEMA, pruned, "--prune"])
        XCTAssertEqual(run.stdout, "kept 854 tensors; dropped 842 EMA entries (model_ema.*), 12 other entries "
            + "(betas, alphas_cumprod, alphas_cumprod_prev, ...)\n")
        let summary = try json(try succeed(["inspect", pruned, "--json"]))
        XCTAssertEqual(summary["tensor_count"]?.intValue, 854)
        // Exactly tiny_base_full's tensors, byte for byte: the state_dict without EMA and schedule.
        try assertSameTensors(pruned, full)
        XCTAssertTrue(try succeed(["inspect", pruned]).stdout.contains("\ntensors     854\n"))
        // --prune --ema: the same names, the UNet's from its EMA copies.
        try succeed(["convert", fullEMA, both, "--prune", "--ema"])
        let mixed = try tensors(both), reference = try tensors(full)
        XCTAssertEqual(Set(mixed.keys), Set(reference.keys))
        for (name, tensor) in reference where !name.hasPrefix("model.diffusion_model.") {
            XCTAssertEqual(mixed[name]?.bytes, tensor.bytes, name)
        }
        let diff = try BFQProcess.run(["diff", both, expectedEMA])
        XCTAssertTrue(diff.stdout.hasSuffix("840 tensors in both, 0 differ; 14 only in the first, 0 only in the second\n"), diff.stdout)
    }

    func testOnlyTakesOneComponentUnderItsOwnNames() throws {
        let directory = try BFQProcess.temporaryDirectory()
        // From an ldm/sgm checkpoint: the prefixes of tiny_base_full dropped.
        let cases: [(String, String, Int, [String])] = [
            ("vae", "first_stage_model.", 6, ["decoder.conv_out.bias", "decoder.conv_out.weight", "encoder.conv_in.bias"]),
            ("text_encoder", "conditioner.embedders.0.transformer.", 3,
             ["text_model.embeddings.position_embedding.weight", "text_model.embeddings.token_embedding.weight",
              "text_model.final_layer_norm.weight"]),
            ("text_encoder_2", "conditioner.embedders.1.model.", 5,
             ["ln_final.weight", "positional_embedding", "text_projection"]),
        ]
        for (component, prefix, count, first) in cases {
            let out = directory + "/\(component).safetensors"
            let run = try succeed(["convert", fullEMA, out, "--only", component])
            XCTAssertTrue(run.stdout.hasPrefix("kept \(count) tensors; dropped 842 EMA entries (model_ema.*), \(854 - count) of other "
                + "components, 12 other entries"), run.stdout)
            let listed = try json(try succeed(["inspect", out, "--json"]))
            XCTAssertEqual(listed["tensor_count"]?.intValue, Int64(count))
            XCTAssertEqual(Array((listed["tensors"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }.prefix(3)), first, component)
            try assertSameTensors(out, full) { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : nil }
        }
        // From a pipeline: its component's file, names as they are there.
        let pipelineCases: [(String, String, Int)] = [
            ("unet", single, 840), ("vae", pipeline + "/vae/diffusion_pytorch_model.safetensors", 124),
            ("text_encoder", pipeline + "/text_encoder/model.safetensors", 36),
            ("text_encoder_2", pipeline + "/text_encoder_2/model.safetensors", 37),
        ]
        for (component, reference, count) in pipelineCases {
            let out = directory + "/pipeline.\(component).safetensors"
            let run = try succeed(["convert", pipeline, out, "--only", component])
            XCTAssertEqual(run.stdout, "kept \(count) tensors; dropped \(Formatting.grouped(1037 - count)) of other components\n")
            try assertSameTensors(out, reference)
        }
        let bare = try json(try succeed(["inspect", directory + "/pipeline.unet.safetensors", "--json"]))
        XCTAssertEqual(bare["naming"], "diffusers")
        XCTAssertEqual(bare["tensors"]?.arrayValue?.first?["name"], "add_embedding.linear_1.bias")
        // A name prefix keeps names whole.
        let prefixed = directory + "/prefix.safetensors"
        try succeed(["convert", pipeline, prefixed, "--only", "vae.decoder."])
        let names = try tensors(prefixed).keys
        XCTAssertFalse(names.isEmpty)
        XCTAssertTrue(names.allSatisfy { $0.hasPrefix("vae.decoder.") })
    }

    func testSurgeryRefusalsAreOneLine() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let out = directory + "/out.safetensors"
        try refuse(["convert", fullEMA, out, "--only", "nothing_here"], mentions: [fullEMA, "nothing_here"], absent: [out],
                   allowedWarnings: [Self.optimizerWarning])
        try refuse(["convert", pipeline, out, "--only", "nothing_here"], mentions: [pipeline, "nothing_here"], absent: [out])
        try refuse(["convert", pipeline, directory + "/folder", "--only", "nothing_here", "--shard-size", "25KB"],
                   mentions: [pipeline, "nothing_here"], absent: [directory + "/folder"])
        try refuse(["convert", ldm, out, "--ema"], mentions: [ldm, "--ema given but the checkpoint has no EMA weights"], absent: [out])
        try refuse(["convert", pipeline, out, "--ema"], mentions: [pipeline, "no EMA weights"], absent: [out])
        try refuse(["convert", pipeline, directory + "/folder", "--layout", "diffusers", "--only", "vae"],
                   mentions: ["--only vae"], absent: [directory + "/folder"])
        XCTAssertEqual(try list(directory), [])
    }

    /// No output replaces a file of an input made of several files, however the input is named: its folder, its
    /// index, or a pipeline's model_index.json.
    func testNoOutputReplacesAFileOfAFolderInput() throws {
        let copy = try copyOf("sdxl_pipeline")
        let shard = copy + "/unet/" + Self.shards[0], vae = copy + "/vae/diffusion_pytorch_model.safetensors"
        let before = try snapshot(copy), unchanged = { try self.snapshot(copy) == before }
        for model in [copy, copy + "/unet", copy + "/unet/diffusion_pytorch_model.safetensors.index.json", copy + "/model_index.json"] {
            for target in [shard, vae] where !(model.contains("/unet") && target == vae) {
                try refuse(["unet", model, "--input", pipelineIO, "--output", target], mentions: [target])
                // An overwritten input would fail every later step: stop at the first.
                guard try unchanged() else { return XCTFail("bfq unet \(model) --output \(target) replaced an input file") }
            }
            try refuse(["convert", model, shard], mentions: [shard])
            guard try unchanged() else { return XCTFail("bfq convert \(model) \(shard) replaced an input file") }
        }
    }

    // MARK: 4. broken indexes and folders

    func testBrokenShardIndexesAreOneLineNamingBothFiles() throws {
        let first = Self.shards[0], second = Self.shards[1], third = Self.shards[2]
        typealias Breakage = (label: String, break: (String) throws -> Void, mentions: (String) -> [String])
        let breakages: [Breakage] = [
            ("missing shard", { try FileManager.default.removeItem(atPath: $0 + "/" + third) },
             { [$0 + "/diffusion_pytorch_model.safetensors.index.json", $0 + "/" + third, "conv_norm_out.bias", "does not exist"] }),
            ("listed, not held", { try self.editWeightMap($0 + "/diffusion_pytorch_model.safetensors.index.json") { $0["extra.weight"] = first } },
             { [$0 + "/diffusion_pytorch_model.safetensors.index.json", $0 + "/" + first, "extra.weight", "does not hold it"] }),
            ("held, listed elsewhere", { try self.editWeightMap($0 + "/diffusion_pytorch_model.safetensors.index.json") { $0["conv_in.bias"] = second } },
             { [$0 + "/" + first, "holds conv_in.bias", $0 + "/diffusion_pytorch_model.safetensors.index.json", "lists in \($0)/\(second)"] }),
            ("held, not listed", { try self.editWeightMap($0 + "/diffusion_pytorch_model.safetensors.index.json") { $0["conv_in.bias"] = nil } },
             { [$0 + "/" + first, "holds conv_in.bias", $0 + "/diffusion_pytorch_model.safetensors.index.json", "does not list"] }),
            ("../ shard", { try self.editWeightMap($0 + "/diffusion_pytorch_model.safetensors.index.json") { $0["conv_in.bias"] = "../unet/" + first } },
             { [$0 + "/diffusion_pytorch_model.safetensors.index.json", "conv_in.bias", "../unet/" + first, "not a file name beside the index"] }),
            ("absolute shard", { folder in
                try self.editWeightMap(folder + "/diffusion_pytorch_model.safetensors.index.json") { $0["conv_in.bias"] = folder + "/" + first } },
             { [$0 + "/diffusion_pytorch_model.safetensors.index.json", "conv_in.bias", "not a file name beside the index"] }),
        ]
        for breakage in breakages {
            let pipelineCopy = try copyOf("sdxl_pipeline")
            let parent = (pipelineCopy as NSString).deletingLastPathComponent
            let folder = pipelineCopy + "/unet"
            let indexCopy = folder + "/diffusion_pytorch_model.safetensors.index.json"
            try breakage.break(folder)
            let mentions = breakage.mentions(folder)
            let before = try snapshot(folder)
            for (input, output, extra) in [(indexCopy, "index.safetensors", [String]()), (folder, "folder", ["--shard-size", "25KB"]),
                                           (pipelineCopy, "pipeline", ["--layout", "diffusers"]), (pipelineCopy, "pipeline.ckpt", [])] {
                try refuse(["convert", input, parent + "/" + output] + extra, mentions: mentions, absent: [parent + "/" + output])
                try refuse(["inspect", input], mentions: mentions)
            }
            try refuse(["quantize", folder, parent + "/q.bfq", "--bits", "3"], mentions: mentions, absent: [parent + "/q.bfq"])
            try refuse(["unet", indexCopy, "--input", pipelineIO, "--output", parent + "/o.safetensors"], mentions: mentions,
                       absent: [parent + "/o.safetensors"])
            XCTAssertEqual(try list(parent), ["sdxl_pipeline"], breakage.label)
            XCTAssertEqual(try snapshot(folder), before, breakage.label)
        }
    }

    func testAWrongTotalSizeIsAWarning() throws {
        let folder = try copyOf("sdxl_pipeline") + "/unet"
        let indexCopy = folder + "/diffusion_pytorch_model.safetensors.index.json"
        try editJSON(indexCopy) { $0["metadata"] = ["total_size": 64_161] }
        let run = try succeed(["inspect", indexCopy])
        XCTAssertEqual(run.stderr, "bfq: warning: \(indexCopy): metadata.total_size says 64161 bytes; the shards' tensors hold 64160\n")
        XCTAssertTrue(run.stdout.contains("\ntensors     840\n"), run.stdout)
        XCTAssertEqual(try BFQProcess.run(["diff", folder, single]).status, 0)
    }

    func testBrokenPipelinesAreOneLineNamingTheFolder() throws {
        // model_index.json names a component whose folder is absent.
        var copy = try copyOf("sdxl_pipeline")
        try FileManager.default.removeItem(atPath: copy + "/vae")
        try refuseEverywhere(copy, mentions: [copy + "/model_index.json", "vae", copy + "/vae", "is not a folder"])
        try refuse(["inspect", copy + "/model_index.json"], mentions: [copy + "/model_index.json", copy + "/vae"])

        // A component with config.json and no weights.
        copy = try copyOf("sdxl_pipeline")
        try FileManager.default.removeItem(atPath: copy + "/vae/diffusion_pytorch_model.safetensors")
        try refuseEverywhere(copy, mentions: [copy + "/vae", "config.json", "without weights"])
        try refuseEverywhere(copy + "/vae", mentions: [copy + "/vae", "without weights"])

        // unet/config.json that disagrees with the weights: both named, and the tensor.
        copy = try copyOf("sdxl_pipeline")
        try editJSON(copy + "/unet/config.json") { $0["cross_attention_dim"] = 16 }
        let mentions = [copy + "/unet/config.json", copy + "/unet/diffusion_pytorch_model.safetensors.index.json",
                        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight", "expected [4, 16]", "found [4, 12]"]
        try refuseEverywhere(copy, mentions: mentions)
        try refuseEverywhere(copy + "/unet", mentions: mentions)

        // A folder that is none of these.
        let empty = try BFQProcess.temporaryDirectory() + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        try refuse(["inspect", empty], mentions: [empty, "neither a diffusers pipeline"])
    }

    /// `inspect`, `stats`, `convert` to a file and to a folder, `unet` and `quantize` of `input` all refuse it.
    private func refuseEverywhere(_ input: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = try BFQProcess.temporaryDirectory()
        let before = try FileManager.default.subpathsOfDirectory(atPath: input).sorted()
        try refuse(["inspect", input], mentions: mentions, file: file, line: line)
        try refuse(["stats", input, "--csv"], mentions: mentions, file: file, line: line)
        try refuse(["convert", input, directory + "/out.safetensors"], mentions: mentions, file: file, line: line)
        try refuse(["convert", input, directory + "/out", "--shard-size", "25KB"], mentions: mentions, file: file, line: line)
        try refuse(["unet", input, "--input", pipelineIO, "--output", directory + "/noise.safetensors"], mentions: mentions,
                   file: file, line: line)
        try refuse(["quantize", input, directory + "/q.bfq", "--bits", "3"], mentions: mentions, file: file, line: line)
        XCTAssertEqual(try list(directory), [], file: file, line: line)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: input).sorted(), before, file: file, line: line)
    }

    // MARK: limits

    /// Every shard of a folder output is held open until the folder is placed; more shards than the soft limit of open
    /// files (1,024 by default on Linux) must still work.
    func testMoreShardsThanTheOpenFileLimit() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let out = directory + "/out"
        let bfq = BFQProcess.productsDirectory.appendingPathComponent("bfq").path
        // 1,037 tensors of at least 2 bytes at one byte per shard: 1,037 shards, under a limit of 256 open files.
        let errors = try BFQProcess.temporaryDirectory() + "/stderr"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -n 256 && exec \"$0\" convert \"$1\" \"$2\" --shard-size 1B >/dev/null 2>\"$3\"",
                             bfq, pipeline, out, errors]
        try process.run()
        process.waitUntilExit()
        let run = BFQRun(status: process.terminationStatus, stdout: "",
                         stderr: (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try? list(out).count, 1038)
        XCTAssertEqual(try list(directory), run.status == 0 ? ["out"] : [])
    }

    /// Reading three shards costs what reading the one file costs, and writing a folder what writing a file costs.
    func testPeakMemoryOfShardsIsThatOfTheSingleFile() throws {
        // AddressSanitizer's quarantine keeps freed memory resident, so peaks measure its bookkeeping, not bfq's.
        try XCTSkipIf(AllocationBoundTests.sanitized, "peak memory is not bfq's under a sanitizer")
        let directory = try BFQProcess.temporaryDirectory()
        let allowance = 4 << 20
        func peak(_ arguments: [String]) throws -> Int {
            // The least of three runs: the measure is of bfq, not of the machine's moment.
            var least = Int.max
            for _ in 0 ..< 3 {
                let (run, bytes) = try BFQProcess.measure(arguments)
                XCTAssertEqual(run.status, 0, "\(arguments): \(run.stderr)")
                least = min(least, bytes)
                for name in try list(directory) { try FileManager.default.removeItem(atPath: directory + "/" + name) }
            }
            return least
        }
        let inspectFile = try peak(["inspect", single])
        for input in [index, unet, pipeline] {
            XCTAssertLessThanOrEqual(try peak(["inspect", input]), inspectFile + allowance, input)
        }
        let convertFile = try peak(["convert", single, directory + "/out.safetensors"])
        XCTAssertLessThanOrEqual(try peak(["convert", index, directory + "/out.safetensors"]), convertFile + allowance)
        XCTAssertLessThanOrEqual(try peak(["convert", index, directory + "/out", "--shard-size", "25KB"]), convertFile + allowance)
        XCTAssertLessThanOrEqual(try peak(["convert", unet, directory + "/out", "--layout", "diffusers"]), convertFile + allowance)

        // 192 MiB of sparse f16 zeros, as three 64 MiB shards or one file, written as f32 (384 MiB) to a folder of
        // 8 shards or a file: the shards are released as they are read, and the output files' buffers as they finish.
        let big = try BFQProcess.temporaryDirectory()
        let elements = 1 << 25
        var entries: [(String, String)] = []
        for shard in 0 ..< 3 {
            let name = "model-0000\(shard + 1)-of-00003.safetensors"
            try BFQProcess.sparseSafetensors(big + "/" + name, tensors: [("t\(shard)", elements)])
            entries.append(("t\(shard)", name))
        }
        let bigIndex = big + "/model.safetensors.index.json"
        try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 3 * elements * 2],
                                                   "weight_map": Dictionary(uniqueKeysWithValues: entries)])
            .write(to: URL(fileURLWithPath: bigIndex))
        let bigFile = try BFQProcess.temporaryDirectory() + "/one.safetensors"
        try BFQProcess.sparseSafetensors(bigFile, tensors: (0 ..< 3).map { ("t\($0)", elements) })
        let fileToFile = try peak(["convert", bigFile, directory + "/out.safetensors", "--dtype", "f32", "--no-fsync"])
        XCTAssertLessThanOrEqual(try peak(["convert", bigIndex, directory + "/out.safetensors", "--dtype", "f32", "--no-fsync"]),
                                 fileToFile + allowance)
        XCTAssertLessThanOrEqual(try peak(["convert", bigIndex, directory + "/out", "--dtype", "f32", "--shard-size", "50MB", "--no-fsync"]),
                                 fileToFile + allowance)
        XCTAssertLessThanOrEqual(try peak(["convert", big, directory + "/out", "--dtype", "f32", "--shard-size", "50MB", "--no-fsync"]),
                                 fileToFile + allowance)
    }
}
