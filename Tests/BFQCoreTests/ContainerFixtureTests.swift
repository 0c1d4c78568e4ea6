import Foundation
import XCTest
@testable import BFQCore

/// The committed .bfq fixtures (tools/testdata/bfq_cases.sh) still decode to the committed expected values, so the
/// format cannot drift; every damaged copy is refused. tools/test_bfq_loader.py checks the same files in Python.
final class ContainerFixtureTests: XCTestCase {
    func testFixturesDecodeToExpectedValues() throws {
        for name in ["encodings", "dtypes", "packing"] {
            let container = try CheckpointFile.open(TestFiles.path("bfq/\(name).bfq"))
            let expected = try CheckpointFile.open(TestFiles.path("bfq/\(name).expected.safetensors"))
            XCTAssertEqual(container.tensors.map(\.name).sorted(), expected.tensors.map(\.name).sorted())
            for tensor in expected.tensors {
                let decoded = try XCTUnwrap(container.tensors.first { $0.name == tensor.name })
                XCTAssertEqual(decoded.dtype, tensor.dtype, tensor.name)
                XCTAssertEqual(try container.withContiguousBytes(of: decoded) { Array($0) },
                               try expected.withContiguousBytes(of: tensor) { Array($0) }, "\(name): \(tensor.name)")
            }
            XCTAssertNoThrow(try ContainerVerification(path: TestFiles.path("bfq/\(name).bfq")))
        }
    }

    func testEncodingsFixtureHoldsEveryEncodingAndTheTimeCache() throws {
        let reader = try ContainerReader(MappedFile(path: TestFiles.path("bfq/encodings.bfq")))
        let levels = Set(reader.manifest.tensors.compactMap(\.levels))
        XCTAssertEqual(levels, [2, 3, 4, 5, 7, 9, 16, 17, 257])
        XCTAssertEqual(reader.manifest.timeFeatures?.timesteps, [1, 501, 981])
        XCTAssertEqual(reader.manifest.timeFeatures?.layers.map(\.width), [4, 6])
        XCTAssertEqual(try reader.timeFeatureValues(), (0 ..< 30).map { Float($0) / 16 })
        XCTAssertTrue(reader.sections.contains { $0.compression == .zstd })
        XCTAssertTrue(reader.sections.contains { $0.compression == .none })
        let totals = try XCTUnwrap(reader.manifest.totals)
        // Paper accounting by hand: log2(L) x elements for quantized tensors, 32 x 512 for the raw f32 matrix,
        // 16 x 30 cached features; N_w adds the 96 weights the cache replaced. Side information (section 7):
        // grid.b2.groups 4 x 3 extra f32 scales + 4 f16 offsets = 448 bits, grid.b3 5 f32 offsets = 160,
        // grid.plain.b2 3 x 1 extra f16 scale = 48, palette.row 4 x 6 extra entries x 16 = 384, palette.tensor
        // (16 - 3) x 16 = 208: 1248 bits.
        let quantized = reader.manifest.tensors.compactMap { t in t.levels.map { log2(Double($0)) * Double(t.elementCount) } }
        let weights = reader.manifest.tensors.filter { $0.shape.count >= 2 }.reduce(0) { $0 + $1.elementCount } + 96
        XCTAssertEqual(totals.weights, weights)
        XCTAssertEqual(totals.averageBits, (quantized.reduce(0, +) + 1248 + 32 * 512 + 16 * 30) / Double(weights),
                       accuracy: 1e-12)
        XCTAssertEqual(totals.fileBitsPerWeight, 8 * Double(reader.file.count) / Double(totals.weights))
    }

    /// packing.bfq: byte-packed grids and palettes with every shape of byte group (G = 5, 3, 2, 1, and 2 bytes per
    /// code), a radix tensor beside them, and one the writer chose; flag bit 0 and version 1.1 in the header.
    func testPackingFixtureHoldsEveryByteLayout() throws {
        let reader = try ContainerReader(MappedFile(path: TestFiles.path("bfq/packing.bfq")))
        let layouts = try reader.manifest.tensors.filter { $0.packing == .bytes }.map {
            try CodeLayout(levels: $0.levels!, packing: .bytes)
        }
        XCTAssertEqual(Set(layouts.map { [$0.codesPerGroup, $0.bitsPerGroup] }), [[5, 8], [3, 8], [2, 8], [1, 8], [1, 16]])
        XCTAssertTrue(reader.manifest.tensors.contains { $0.packing == .radix })
        XCTAssertEqual(reader.manifest.tensors.last?.name, "chosen.b3")
        XCTAssertEqual(reader.manifest.tensors.last?.packing, .bytes)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestFiles.path("bfq/packing.bfq")))[8 ..< 16])
        XCTAssertEqual(bytes, [1, 0, 1, 0, 1, 0, 0, 0]) // major 1, minor 1, flags 1
        // The same file with flag bit 0 cleared: what a 1.0 writer could not have made, and a 1.0 reader refuses.
        XCTAssertThrowsError(try ContainerReader(MappedFile(path: TestFiles.path("bfq/packing.corrupt-flag.bfq")))) {
            guard case .encodingInvalid(_, "bytes.b1", _)? = $0 as? ContainerError else { return XCTFail("\($0)") }
        }
    }

    func testDamagedCopiesAreRefused() throws {
        for name in ["encodings", "dtypes", "packing"] {
            for damage in ["header", "table", "manifest", "section", "truncated"] {
                let path = TestFiles.path("bfq/\(name).corrupt-\(damage).bfq")
                XCTAssertThrowsError(try ContainerVerification(path: path), path) { XCTAssertTrue($0 is ContainerError, "\($0)") }
            }
        }
    }

    /// Any change to a code stream is caught: by the section CRC, or, with CRCs recomputed, by the code checks.
    func testInvalidRadixGroupRefusedEvenWithValidChecksums() throws {
        let layout = try CodeLayout(levels: 3)
        XCTAssertEqual(layout.groupLimit, 243)
        let packed: [UInt8] = [243]  // one ternary group: 243 is not below 3^5
        XCTAssertThrowsError(try CodePacker.unpack(packed.withUnsafeBytes { $0 }, rows: 1, columns: 5, levels: 3))
    }
}
