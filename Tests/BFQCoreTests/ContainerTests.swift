import Foundation
import XCTest
@testable import BFQCore
import CBFQShims

/// The .bfq container: lossless round trips, determinism, and one test per reader invariant (spec/bfq.md section 8).
final class ContainerTests: XCTestCase {
    /// Converts a fixture to .bfq with `--dtype` and returns the output path.
    private func containerize(_ relative: String = "safetensors/dtypes.safetensors", dtype: TargetDType = .keep) throws -> String {
        let checkpoint = try CheckpointFile.open(TestFiles.path(relative))
        let output = try TestFiles.temporaryDirectory() + "/out.bfq"
        try ConversionPlan(checkpoint, options: ConversionOptions(dtype: dtype), outputPath: output).write(to: output)
        return output
    }

    func testLosslessRoundTripKeepsValuesMetadataAndOrder() throws {
        let source = try CheckpointFile.open(TestFiles.path("safetensors/dtypes.safetensors"))
        let container = try CheckpointFile.open(try containerize())
        XCTAssertEqual(container.format, .bfq)
        XCTAssertEqual(container.metadata, source.metadata)
        XCTAssertEqual(container.tensors.map(\.name), source.tensors.map(\.name))
        XCTAssertTrue(try CheckpointComparison(source, container, matchingNames: false).identical)
        for tensor in source.tensors {
            let original = try source.withContiguousBytes(of: tensor) { Array($0) }
            let decoded = try container.withContiguousBytes(of: container.tensors.first { $0.name == tensor.name }!) { Array($0) }
            XCTAssertEqual(original, decoded, tensor.name)
        }
    }

    func testUNetRoundTripCompressesAndRecordsSourceTypes() throws {
        let path = try containerize("unet/tiny_unet.ldm.safetensors", dtype: .f32)
        let reader = try ContainerReader(MappedFile(path: path))
        XCTAssertEqual(reader.manifest.tensors.count, 686)
        XCTAssertTrue(reader.manifest.tensors.allSatisfy { $0.sourceType == .f16 && $0.encoding == .raw(dtype: .f32) })
        XCTAssertTrue(reader.sections.contains { $0.compression == .zstd }, "f16 values widened to f32 compress")
        let source = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors"))
        let comparison = try CheckpointComparison(source, try CheckpointFile.open(path), matchingNames: false)
        XCTAssertTrue(comparison.pairs.allSatisfy { $0.difference?.noiseEnergy == 0 })
    }

    func testSameInputSameBytes() throws {
        let first = try Data(contentsOf: URL(fileURLWithPath: try containerize("unet/tiny_unet.ldm.safetensors")))
        let second = try Data(contentsOf: URL(fileURLWithPath: try containerize("unet/tiny_unet.ldm.safetensors")))
        XCTAssertEqual(first, second)
    }

    func testHeaderLayout() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: try containerize())))
        XCTAssertEqual(Array(bytes[0 ..< 8]), [0x89, 0x42, 0x46, 0x51, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(bytes[8], 1)
        XCTAssertEqual(ContainerFixtures.u64(bytes, 48), UInt64(bytes.count))
        XCTAssertEqual(ContainerFixtures.u32(bytes, 64), bfq_crc32(0, bytes, 64))
        XCTAssertEqual(ContainerFixtures.u64(bytes, 16) % 64, 0)
        XCTAssertTrue(bytes[68 ..< 128].allSatisfy { $0 == 0 })
    }
}

final class ContainerSourceTests: XCTestCase {
    /// The manifest records the source's name, size and SHA-256 (checked against the digest of the same bytes
    /// computed independently here, and against a known SHA-256 test vector).
    func testSourceNameSizeAndSHA256() throws {
        let directory = try TestFiles.temporaryDirectory()
        let abc = directory + "/abc.txt"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: abc))
        XCTAssertEqual(SourceDigest.sha256(of: try MappedFile(path: abc)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let sourcePath = TestFiles.path("safetensors/dtypes.safetensors")
        let checkpoint = try CheckpointFile.open(sourcePath)
        let output = directory + "/out.bfq"
        try ConversionPlan(checkpoint, options: ConversionOptions(), outputPath: output).write(to: output)
        let source = try XCTUnwrap(try ContainerReader(MappedFile(path: output)).manifest.source)
        XCTAssertEqual(source.name, "dtypes.safetensors")
        XCTAssertEqual(source.size, checkpoint.fileBytes)
        XCTAssertEqual(source.sha256, SourceDigest.sha256(of: checkpoint.files[0]))
    }
}

final class ZstdTests: XCTestCase {
    /// A section larger than several zstd jobs compresses to the same bytes with 1 or 3 workers, and back.
    func testSameFrameWhateverTheWorkerCountAndBoundedDecompression() throws {
        var state: UInt64 = 99
        let input = (0 ..< 24_000_000).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1
            return UInt8(truncatingIfNeeded: (state >> 60) * 17)
        }
        let one = try input.withUnsafeBytes { try Zstd.compress($0, level: 3, workers: 1) }
        let three = try input.withUnsafeBytes { try Zstd.compress($0, level: 3, workers: 3) }
        XCTAssertEqual(one, three)
        XCTAssertLessThan(one.count, input.count * 6 / 10)  // 16 distinct byte values: about 4 bits each
        // The code setting (jobs of 512 KiB for its 128 KiB window) too, and its Huffman-only output is that small.
        let codesOne = try input.withUnsafeBytes { try Zstd.compressCodes($0, workers: 1) }
        XCTAssertEqual(codesOne, try input.withUnsafeBytes { try Zstd.compressCodes($0, workers: 3) })
        XCTAssertLessThan(codesOne.count, input.count * 52 / 100)
        var codesBack = [UInt8](repeating: 0, count: input.count)
        try codesOne.withUnsafeBytes { stored in try codesBack.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) } }
        XCTAssertEqual(codesBack, input)
        var output = [UInt8](repeating: 0, count: input.count)
        try one.withUnsafeBytes { stored in try output.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) } }
        XCTAssertEqual(output, input)
        var short = [UInt8](repeating: 0, count: input.count - 1)
        XCTAssertThrowsError(try one.withUnsafeBytes { stored in try short.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) } }) {
            XCTAssertEqual($0 as? ZstdError, .contentSizeMismatch(declared: UInt64(input.count), expected: input.count - 1))
        }
    }
}
