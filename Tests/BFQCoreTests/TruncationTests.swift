import Foundation
import XCTest
@testable import BFQCore

/// Every format, cut at each 1/64th of real files: a full read (every tensor's bytes, every quantized tensor decoded,
/// `bfq verify`'s checks for .bfq) must end in the reader's one-line error naming the file, never in a crash or in
/// tensors read from a file that is not all there.
final class TruncationTests: XCTestCase {
    func testSafetensors() throws {
        try expectEveryTruncationRefused(["safetensors/dtypes.safetensors", "pytorch/views.safetensors",
                                          "quantizer/cases.safetensors", "unet/tiny_unet.diffusers.safetensors",
                                          "unet/time_features.safetensors"], read: FullRead.checkpoint)
    }

    func testPyTorchZip() throws {
        try expectEveryTruncationRefused(["pytorch/sd_wrapper.ckpt", "pytorch/views.ckpt", "pytorch/dtypes.ckpt",
                                          "pytorch/float8.ckpt", "pytorch/double_wrapper_p4.ckpt", "pytorch/lightning.ckpt",
                                          "unet/tiny_unet.ldm.ckpt"], read: FullRead.checkpoint)
    }

    func testPyTorchLegacy() throws {
        try expectEveryTruncationRefused(["pytorch/legacy.ckpt", "pytorch/legacy_p4.ckpt", "oversized/base_legacy.ckpt"],
                                         read: FullRead.checkpoint)
    }

    /// Quantized tensors of every encoding and packing, a time-feature cache (encodings.bfq), every raw dtype.
    func testBFQ() throws {
        try expectEveryTruncationRefused(["bfq/encodings.bfq", "bfq/packing.bfq", "bfq/dtypes.bfq", "oversized/base.bfq"],
                                         read: FullRead.checkpoint)
    }

    /// GGUF files of every ggml type bfq decodes, from gguf-py's writer and stable-diffusion.cpp's converter.
    func testGGUF() throws {
        try expectEveryTruncationRefused(["gguf/types.gguf", "gguf/kquants.q3_K.gguf", "gguf/kquants.reference.gguf",
                                          "oversized/base.gguf"], read: FullRead.checkpoint)
    }

    /// UNet inputs and importance files go through the same readers; their own loaders must pass the refusal on.
    func testUNetInputsAndImportance() throws {
        try expectEveryTruncationRefused(["unet/reference_io.safetensors", "unet/forward/sd1_odd.safetensors"]) {
            _ = try UNetInput.load($0)
        }
        let directory = try TestFiles.temporaryDirectory()
        let importance = LayerImportance(moments: ["down_blocks.0.resnets.0.conv1": (0 ..< 320).map { Float($0) / 7 },
                                                   "mid_block.attentions.0.proj_in": [Float](repeating: 0.5, count: 64)],
                                         origin: "test")
        var files: [String] = []
        for name in ["importance.safetensors", "importance.ckpt", "importance.bfq"] {
            try importance.write(to: OutputTarget(path: directory + "/" + name, durable: false))
            files.append(directory + "/" + name)
        }
        try expectEveryTruncationRefused(files) { _ = try LayerImportance(path: $0) }
    }

    func testPlan() throws {
        let layout = try QuantizationLayout(CheckpointFile.open(TestFiles.path("unet/tiny_unet.diffusers.safetensors")))
        let path = try TestFiles.temporaryDirectory() + "/plan.json"
        try TextFile.write(JSONWriter.pretty(BitsFusionRecipe.plan.json(layout: layout, averageBits: 1.99)), to: path)
        try expectEveryTruncationRefused([path]) { _ = try QuantizationPlan.load($0) }
    }

    /// Reads `files` (under testdata/, or absolute paths) whole, then cut at k x size / 64 for k = 0 ..< 64.
    private func expectEveryTruncationRefused(_ files: [String], read: (String) throws -> Void,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        for name in files {
            let source = name.hasPrefix("/") ? name : TestFiles.path(name)
            XCTAssertNoThrow(try read(source), "\(name) whole", file: file, line: line)
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
            try Mutations.forEachCopy(Mutations.truncations(of: original), of: name) { path, bytes in
                do {
                    try read(path)
                    XCTFail("\(name) cut to \(bytes.count) of \(original.count) bytes read without an error", file: file, line: line)
                } catch let error where FullRead.isReaderError(error) || error is QuantizationError {
                    let text = "\(error)"
                    XCTAssertTrue(text.contains(path + ": ") && !text.contains("\n"), "\(name) cut to \(bytes.count): \(text)",
                                  file: file, line: line)
                }
            }
        }
    }
}
