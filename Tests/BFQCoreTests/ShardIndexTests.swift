import Foundation
import XCTest
@testable import BFQCore

/// Shard indexes written by diffusers and transformers read as one checkpoint; damaged ones refused naming both files.
final class ShardIndexTests: XCTestCase {
    private let unetIndex = "folders/sdxl_pipeline/unet/diffusion_pytorch_model.safetensors.index.json"

    /// Bytes of every tensor, by name.
    private func contents(_ checkpoint: Checkpoint) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for tensor in checkpoint.tensors { result[tensor.name] = try checkpoint.withContiguousBytes(of: tensor) { Array($0) } }
        return result
    }

    /// diffusers' three shards hold exactly the tensors, shapes and bytes of the single file diffusers wrote.
    func testDiffusersShardsEqualTheSingleFile() throws {
        let sharded = try CheckpointFile.open(TestFiles.path(unetIndex))
        let single = try CheckpointFile.open(TestFiles.path("sdxl/tiny_base.diffusers.safetensors"))
        XCTAssertEqual(sharded.files.count, 3)
        XCTAssertEqual(sharded.tensors.count, 840)
        XCTAssertEqual(try contents(sharded), try contents(single))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: sharded.tensors.map { ($0.name, $0.shape) }),
                       Dictionary(uniqueKeysWithValues: single.tensors.map { ($0.name, $0.shape) }))
        // Shards in name order, each in its own order; every tensor points into its own shard.
        let index = try ShardIndex(MappedFile(path: TestFiles.path(unetIndex)))
        XCTAssertEqual(index.shards, (1 ... 3).map { "diffusion_pytorch_model-0000\($0)-of-00003.safetensors" })
        XCTAssertEqual(index.totalSize, 64_160)
        let listed = Dictionary(uniqueKeysWithValues: index.weightMap.map { ($0.tensor, $0.shard) })
        for tensor in sharded.tensors {
            XCTAssertTrue(sharded.files[tensor.file].path.hasSuffix(listed[tensor.name]!), tensor.name)
        }
        XCTAssertEqual(sharded.tensors.map(\.file), sharded.tensors.map(\.file).sorted())
        XCTAssertEqual(sharded.metadata, ["format": "pt"])
        XCTAssertEqual(sharded.warnings, [])
        guard case let .shards(indexPath, shards)? = sharded.assembly else { return XCTFail("\(String(describing: sharded.assembly))") }
        XCTAssertEqual(indexPath, TestFiles.path(unetIndex))
        XCTAssertEqual(shards, sharded.files.map(\.path))
        XCTAssertEqual(sharded.fileBytes, sharded.files.reduce(0) { $0 + $1.count })
    }

    /// transformers' sharded PyTorch text encoder (pytorch_model.bin.index.json) reads through the pickle reader.
    func testPyTorchShards() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path("folders/text_encoder_bin/pytorch_model.bin.index.json"))
        XCTAssertEqual(checkpoint.files.count, 2)
        XCTAssertEqual(checkpoint.tensors.count, 36)
        XCTAssertEqual(checkpoint.format, .pytorchZip)
        XCTAssertEqual(checkpoint.tensorBytes, 1_304)
        let single = try CheckpointFile.open(TestFiles.path("folders/sdxl_pipeline/text_encoder/model.safetensors"))
        // The same tiny text encoder; the safetensors file has transformers 5's names (no text_model.).
        XCTAssertEqual(Set(checkpoint.tensors.map { $0.name.replacingOccurrences(of: "text_model.", with: "") }),
                       Set(single.tensors.map(\.name)))
    }

    /// A copy of the unet folder in a temporary directory with the index replaced by `edit(index JSON)`.
    private func damagedIndex(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let directory = try TestFiles.temporaryDirectory()
        let source = TestFiles.path("folders/sdxl_pipeline/unet")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: directory + "/" + name)
        }
        let path = directory + "/diffusion_pytorch_model.safetensors.index.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// An index copy whose weight map lists `tensor` in `shard` (nil: not at all), with its folder.
    private func listing(_ tensor: String, in shard: String?) throws -> (index: String, folder: String) {
        let path = try damagedIndex { json in
            var map = json["weight_map"] as! [String: String]
            map[tensor] = shard
            json["weight_map"] = map
        }
        return (path, (path as NSString).deletingLastPathComponent)
    }

    func testDamagedIndexesAreRefusedNamingBothFiles() throws {
        let shard1 = "diffusion_pytorch_model-00001-of-00003.safetensors", shard2 = "diffusion_pytorch_model-00002-of-00003.safetensors"
        let missing = "diffusion_pytorch_model-00009-of-00003.safetensors"
        let cases: [(tensor: String, shard: String?, expected: (String, String) -> AssemblyError)] = [
            // A missing shard.
            ("conv_in.weight", missing, { .missingShard(index: $0, shard: $1 + "/" + missing, tensor: "conv_in.weight") }),
            // A tensor listed in a shard that does not hold it (conv_in.weight is in shard 1).
            ("conv_in.weight", shard2, { .tensorInOtherShard(index: $0, shard: $1 + "/" + shard1, tensor: "conv_in.weight", listed: $1 + "/" + shard2) }),
            // A tensor the index leaves out.
            ("conv_in.weight", nil, { .tensorNotListed(index: $0, shard: $1 + "/" + shard1, tensor: "conv_in.weight") }),
            // A tensor the index lists but no shard holds.
            ("conv_in.extra", shard1, { .tensorNotInShard(index: $0, shard: $1 + "/" + shard1, tensor: "conv_in.extra") }),
        ]
        for (tensor, shard, expected) in cases {
            let (index, folder) = try listing(tensor, in: shard)
            XCTAssertThrowsError(try CheckpointFile.open(index)) { XCTAssertEqual($0 as? AssemblyError, expected(index, folder)) }
        }
        let (index, folder) = try listing("conv_in.weight", in: shard2)
        XCTAssertThrowsError(try CheckpointFile.open(index)) {
            XCTAssertEqual("\($0)", "\(folder)/\(shard1): holds conv_in.weight, which \(index) lists in \(folder)/\(shard2)")
        }
        var path: String
        // Shard names that leave the index's folder, and structures that are not an index.
        for (name, value) in [("parent", "../x.safetensors"), ("absolute", "/etc/passwd"), ("dot", "./a/../b.safetensors")] {
            path = try listing("conv_in.weight", in: value).index
            XCTAssertThrowsError(try CheckpointFile.open(path), name) {
                guard case let .badIndex(p, rule)? = $0 as? AssemblyError else { return XCTFail("\(name): \($0)") }
                XCTAssertEqual(p, path)
                XCTAssertTrue(rule.contains("conv_in.weight") && rule.contains("not a file name beside the index"), rule)
            }
        }
        for (name, edit) in [("no weight_map", { (json: inout [String: Any]) in json["weight_map"] = nil }),
                             ("weight_map list", { (json: inout [String: Any]) in json["weight_map"] = ["a"] }),
                             ("empty", { (json: inout [String: Any]) in json["weight_map"] = [String: String]() }),
                             ("number shard", { (json: inout [String: Any]) in json["weight_map"] = ["a": 3] }),
                             ("total_size text", { (json: inout [String: Any]) in json["metadata"] = ["total_size": "big"] }),
                             ("negative total", { (json: inout [String: Any]) in json["metadata"] = ["total_size": -1] })] {
            path = try damagedIndex(edit)
            XCTAssertThrowsError(try CheckpointFile.open(path), name) {
                guard case .badIndex(path, _)? = $0 as? AssemblyError else { return XCTFail("\(name): \($0)") }
            }
        }
    }

    /// total_size that disagrees with the shards is a warning (writers count it differently), not a refusal.
    func testTotalSizeMismatchWarns() throws {
        let path = try damagedIndex { $0["metadata"] = ["total_size": 5] }
        let checkpoint = try CheckpointFile.open(path)
        XCTAssertEqual(checkpoint.warnings, ["\(path): metadata.total_size says 5 bytes; the shards' tensors hold 64160"])
    }

    /// Shards must be plain files: a .bfq or GGUF file has its own decoder.
    func testShardOfAnotherFormatIsRefused() throws {
        let path = try damagedIndex { json in
            json["weight_map"] = ["x": "encodings.bfq"]
        }
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.copyItem(atPath: TestFiles.path("bfq/encodings.bfq"), toPath: folder + "/encodings.bfq")
        XCTAssertThrowsError(try CheckpointFile.open(path)) {
            XCTAssertEqual($0 as? AssemblyError, .shardNotPlain(index: path, shard: folder + "/encodings.bfq", format: ".bfq"))
        }
    }

    /// Every truncation of the index, and of a shard, ends in one refusal, never a crash.
    func testTruncatedIndexAndShards() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: TestFiles.path(unetIndex)))
        let path = try damagedIndex { _ in }
        for cut in stride(from: 0, to: original.count, by: max(1, original.count / 64)) {
            try original.prefix(cut).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try FullRead.checkpoint(path), "index cut at \(cut)")
        }
        try original.write(to: URL(fileURLWithPath: path))
        let shard = (path as NSString).deletingLastPathComponent + "/diffusion_pytorch_model-00002-of-00003.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: shard))
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 64)) {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: shard))
            XCTAssertThrowsError(try FullRead.checkpoint(path), "shard cut at \(cut)") { error in
                XCTAssertTrue("\(error)".contains(shard), "\(error)")
            }
        }
    }
}
