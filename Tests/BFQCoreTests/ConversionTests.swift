import Foundation
import XCTest
@testable import BFQCore

/// `convert` output compared with what PyTorch and safetensors write for the same job, byte for byte.
final class ConversionTests: XCTestCase {
    private func convert(_ relative: String, _ options: ConversionOptions, to name: String) throws -> String {
        let checkpoint = try CheckpointFile.open(TestFiles.path(relative))
        let output = try TestFiles.temporaryDirectory() + "/" + name
        try ConversionPlan(checkpoint, options: options, outputPath: output).write(to: output)
        return output
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testKeepReproducesPythonBytes() throws {
        let output = try convert("safetensors/dtypes.safetensors", ConversionOptions(), to: "keep.safetensors")
        XCTAssertEqual(try bytes(output), try bytes(TestFiles.path("safetensors/dtypes.safetensors")))
    }

    /// Every dtype (f64, f32, f16, bf16, f8, NaN, Inf, subnormals, overflow) rounds exactly as torch's `.to()`.
    func testDTypeConversionMatchesTorchBitForBit() throws {
        for target in [TargetDType.f32, .f16, .bf16] {
            let output = try convert("safetensors/dtypes.safetensors", ConversionOptions(dtype: target), to: "\(target).safetensors")
            let expected = try bytes(TestFiles.path("safetensors/dtypes.as_\(target).safetensors"))
            XCTAssertEqual(try bytes(output), expected, "--dtype \(target)")
        }
    }

    func testOnlyPrefixKeepsMatchingTensors() throws {
        let output = try convert("safetensors/dtypes.safetensors", ConversionOptions(only: "model.diffusion_model."), to: "unet.safetensors")
        XCTAssertEqual(try CheckpointFile.open(output).tensors.map(\.name), ["model.diffusion_model.out.2.weight"])
        XCTAssertThrowsError(try convert("safetensors/dtypes.safetensors", ConversionOptions(only: "nothing."), to: "x.safetensors")) {
            guard case .noTensorsMatch(_, "nothing.")? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    /// ldm .ckpt renamed to diffusers equals the file diffusers itself saved, tensor for tensor.
    func testLDMCheckpointToDiffusersMatchesDiffusersFile() throws {
        let output = try convert("unet/tiny_unet.ldm.ckpt", ConversionOptions(names: .diffusers, only: "model.diffusion_model."),
                                 to: "unet.safetensors")
        let converted = try CheckpointFile.open(output)
        let expected = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.diffusers.safetensors"))
        XCTAssertEqual(converted.tensors.count, 686)
        XCTAssertEqual(Set(converted.tensors.map(\.name)), Set(expected.tensors.map(\.name)))
        let comparison = try CheckpointComparison(expected, converted, matchingNames: false)
        XCTAssertTrue(comparison.identical)
        XCTAssertEqual(converted.metadata, ["global_step": "1000"])
    }

    /// diffusers → ldm through a .ckpt and back gives the original bytes' values and names.
    func testDiffusersToLDMCheckpointAndBack() throws {
        let ldm = try convert("unet/tiny_unet.diffusers.safetensors", ConversionOptions(names: .ldm), to: "unet.ckpt")
        let expected = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors"))
        let converted = try CheckpointFile.open(ldm)
        XCTAssertEqual(converted.format, .pytorchZip)
        XCTAssertTrue(try CheckpointComparison(expected, converted, matchingNames: false).identical)
    }

    func testRenamingWithoutUNetRefused() throws {
        XCTAssertThrowsError(try convert("pytorch/dtypes.ckpt", ConversionOptions(names: .diffusers), to: "x.safetensors")) {
            guard case .noUNetToRename? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    func testUnsupportedOutputExtension() throws {
        XCTAssertThrowsError(try convert("safetensors/dtypes.safetensors", ConversionOptions(), to: "out.onnx")) {
            guard case .unsupportedOutputExtension? = $0 as? CheckpointError else { return XCTFail("\($0)") }
            XCTAssertTrue("\($0)".hasSuffix("out.onnx: output extension must be .safetensors, .ckpt, .pt, .pth, .bin or .bfq"), "\($0)")
        }
    }

    func testOutputIdenticalWhateverTheChunking() throws {
        // f32 → f16 over a tensor larger than one conversion task, compared with a scalar reference loop.
        let count = 600_000
        var values = [Float](repeating: 0, count: count)
        var state: UInt64 = 42
        for i in 0 ..< count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            values[i] = Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) * 1e-3
        }
        var converted = [UInt16](repeating: 0, count: count)
        values.withUnsafeBytes { input in
            converted.withUnsafeMutableBytes { output in
                ElementConverter.convert(input.baseAddress!, .f32, to: output.baseAddress!, .f16, count: count)
            }
        }
        for i in stride(from: 0, to: count, by: 997) {
            XCTAssertEqual(converted[i], Float16(values[i]).bitPattern)
        }
    }
}
