import Foundation
import XCTest
@testable import BFQCore

/// Byte-packed codes in containers: the writer's choice between packings, the header flag that keeps 1.0 readers
/// from misreading them, the `packing` key, hostile byte-packed rows, and the side information section 7 counts.
final class ContainerPackingTests: XCTestCase {
    /// Codes of rounded Student-t-like weights: far from uniform, as real quantized codes are.
    private static func peakedCodes(_ count: Int, levels: Int, seed: UInt64) -> [UInt16] {
        var random = SeededGenerator(seed: seed)
        let half = Double(levels / 2)
        return (0 ..< count).map { _ in
            let u = Double.random(in: 0 ..< 1, using: &random), v = Double.random(in: 0 ..< 1, using: &random)
            let gaussian = (-2 * log(1 - u)).squareRoot() * cos(2 * .pi * v)
            return UInt16(min(max((gaussian * half / 3).rounded() + half, 0), 2 * half))
        }
    }

    private static func uniformCodes(_ count: Int, levels: Int, seed: UInt64) -> [UInt16] {
        var random = SeededGenerator(seed: seed)
        return (0 ..< count).map { _ in UInt16.random(in: 0 ..< UInt16(levels), using: &random) }
    }

    /// Writes one grid tensor per `(levels, codes)` through `addCodes` and returns the file's bytes and the choices.
    private func write(_ tensors: [(levels: Int, codes: [UInt16])], rows: Int, columns: Int,
                       name: String = "packing.bfq") throws -> (path: String, packings: [CodePacking]) {
        let path = try TestFiles.temporaryDirectory() + "/" + name
        let writer = try ContainerWriter(target: OutputTarget(path: path, durable: false))
        var entries: [ContainerTensor] = []
        for (index, (levels, codes)) in tensors.enumerated() {
            let (packing, section) = try writer.addCodes(codes, rows: rows, columns: columns, levels: levels)
            let scales = try [Float](repeating: 0.5, count: rows).withUnsafeBytes { try writer.addSection($0) }
            entries.append(ContainerTensor(name: "w\(index)", shape: [rows, columns], sourceType: .f32,
                                           encoding: .grid(levels: levels, balanced: true, scaleType: .f32, groupSize: nil,
                                                           offsetType: nil, packing: packing),
                                           sections: ["codes": section, "scales": scales]))
        }
        try writer.finish(manifest: ContainerManifest(tensors: entries))
        return (path, entries.map { $0.packing! })
    }

    /// Stored bytes of `codes` packed as `packing` and compressed as the writer does (stored as is when not smaller).
    private func storedSize(_ codes: [UInt16], rows: Int, columns: Int, levels: Int, _ packing: CodePacking) throws -> Int {
        let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels, packing: packing)
        return min(packed.count, try packed.withUnsafeBytes { try Zstd.compressCodes($0) }.count)
    }

    func testWriterKeepsTheSmallerPackingAndDecodesBothBitForBit() throws {
        let (rows, columns) = (48, 576)
        let tensors: [(levels: Int, codes: [UInt16])] = [
            (5, Self.peakedCodes(rows * columns, levels: 5, seed: 1)), (9, Self.peakedCodes(rows * columns, levels: 9, seed: 2)),
            (17, Self.peakedCodes(rows * columns, levels: 17, seed: 3)), (3, Self.peakedCodes(rows * columns, levels: 3, seed: 5)),
        ]
        let (path, packings) = try write(tensors, rows: rows, columns: columns)
        // Peaked codes pay for whole symbols per byte; L = 3 packs the same bytes either way.
        XCTAssertEqual(packings, [.bytes, .bytes, .bytes, .radix])
        let reader = try ContainerReader(MappedFile(path: path))
        for ((levels, codes), tensor) in zip(tensors, reader.manifest.tensors) {
            let radix = try storedSize(codes, rows: rows, columns: columns, levels: levels, .radix)
            let bytes = try storedSize(codes, rows: rows, columns: columns, levels: levels, .bytes)
            XCTAssertEqual(tensor.sections["codes"]!.storedSize, min(radix, bytes), "L = \(levels)")
            let decoded = try reader.withSection(tensor.sections["codes"]!.index) {
                try CodePacker.unpack($0, rows: rows, columns: columns, levels: levels, packing: tensor.packing!)
            }
            XCTAssertEqual(decoded, codes, "L = \(levels)")
        }
        // Decoded weights are s x (c - L/2), whichever packing holds the codes.
        let checkpoint = try CheckpointFile.open(path)
        for ((levels, codes), tensor) in zip(tensors, checkpoint.tensors) {
            let values = try checkpoint.withContiguousBytes(of: tensor) { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(values, codes.map { 0.5 * Float(Int($0) - levels / 2) + 0 }, tensor.name)
        }
        // The header carries version 1.1 and flag bit 0 because a tensor is byte-packed.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual([ContainerFixtures.u32(bytes, 8), ContainerFixtures.u32(bytes, 12)], [1 | 1 << 16, 1])
        XCTAssertTrue(ContainerFixtures.manifestText(bytes).contains(",\"packing\":\"bytes\",\"sections\":"))
    }

    /// 40 uniform codes of 5 levels: 14 bytes packed as bytes, 12 as radix, and zstd saves nothing on either.
    func testRadixOnlyFileHasNoFlagAndNoPackingKey() throws {
        let (path, packings) = try write([(5, Self.uniformCodes(8 * 40, levels: 5, seed: 9))], rows: 8, columns: 40)
        XCTAssertEqual(packings, [.radix])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(ContainerFixtures.u32(bytes, 12), 0)
        XCTAssertFalse(ContainerFixtures.manifestText(bytes).contains("packing"))
        // A 1.0 header (minor version 0) holding the same file reads the same.
        var old = bytes
        ContainerFixtures.set(UInt16(0), in: &old, at: 10)
        ContainerFixtures.reseal(&old)
        XCTAssertNil(try ContainerFixtures.error(reading: old))
    }

    func testBytePackingNeedsTheFlagAndAKnownKey() throws {
        let (path, packings) = try write([(9, Self.peakedCodes(48 * 576, levels: 9, seed: 7))], rows: 48, columns: 576)
        XCTAssertEqual(packings, [.bytes])
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        var bytes = original
        ContainerFixtures.set(UInt32(0), in: &bytes, at: 12) // what a writer ignorant of the flag would leave
        ContainerFixtures.reseal(&bytes)
        guard case .encodingInvalid(_, "w0", let flagRule)? = try ContainerFixtures.error(reading: bytes) else { return XCTFail() }
        XCTAssertEqual(flagRule, "packing \"bytes\" without header flag bit 0 (byte packing)")
        bytes = original
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes)
            .replacingOccurrences(of: "\"packing\":\"bytes\"", with: "\"packing\":\"nibbles\""))
        guard case .manifestInvalid(_, let rule)? = try ContainerFixtures.error(reading: bytes) else { return XCTFail() }
        XCTAssertEqual(rule, "tensor w0: \"packing\" is not \"radix\" or \"bytes\"")
        // Read as radix, the byte-packed section has the wrong size: 48 rows of 288 bytes, where radix needs 48 of 232.
        bytes = original
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes)
            .replacingOccurrences(of: ",\"packing\":\"bytes\"", with: ""))
        guard case .sectionSize(_, "w0", "codes", 13_824, 11_136)? = try ContainerFixtures.error(reading: bytes) else { return XCTFail() }
    }

    /// A byte-packed codes section whose bytes break invariant 13 opens, and fails when decoded, naming the tensor.
    func testHostileBytePackedCodesRefusedWhenDecoded() throws {
        for (codes, rule) in [([0x00, 0x7D, 0x01, 0x00] as [UInt8], "row 0, group 1: value 125 is not below L^G = 125"),
                              ([0x00, 0x00, 0x01, 0x05], "row 1: padding after the last code is not zero")] {
            let path = try TestFiles.temporaryDirectory() + "/hostile-bytes.bfq"
            let writer = try ContainerWriter(target: OutputTarget(path: path, durable: false))
            let section = try codes.withUnsafeBytes { try writer.addSection($0, compress: false) }
            let palette = try [UInt8](repeating: 0, count: 10).withUnsafeBytes { try writer.addSection($0) }
            try writer.finish(manifest: ContainerManifest(tensors: [ContainerTensor(
                name: "p", shape: [2, 4], sourceType: .f16, encoding: .palette(levels: 5, perRow: false, packing: .bytes),
                sections: ["codes": section, "palette": palette])]))
            XCTAssertThrowsError(try ContainerVerification(path: path)) {
                XCTAssertEqual($0 as? ContainerError, .codeInvalid(path: path, tensor: "p", rule: rule))
            }
        }
    }

    /// Section 7 with side information: group scales past the first, offsets, palette entries past one per row.
    func testAverageBitsCountSideInformation() {
        let none = ContainerTensor.SectionReference(index: 0, storedSize: 0, decodedSize: 0, crc32: 0)
        func tensor(_ shape: [Int], _ encoding: ContainerTensor.Encoding) -> ContainerTensor {
            ContainerTensor(name: "t", shape: shape, sourceType: .f32, encoding: encoding, sections: ["codes": none])
        }
        let manifest = ContainerManifest(tensors: [
            tensor([4, 100], .grid(levels: 5, balanced: true, scaleType: .f32, groupSize: 32, offsetType: .f16, packing: .bytes)),
            tensor([3, 64], .grid(levels: 9, balanced: true, scaleType: .f16, groupSize: nil, offsetType: nil)),
            tensor([4, 2, 5], .palette(levels: 7, perRow: true)),
            tensor([3, 33], .palette(levels: 16, perRow: false)),
            tensor([40, 2], .palette(levels: 16, perRow: false)),
            tensor([64, 8], .raw(dtype: .f16)),
            tensor([6], .raw(dtype: .f32)),
        ])
        let accounting = ContainerAccounting(manifest: manifest, fileSize: 1000)
        let bits = log2(5.0) * 400 + 4 * 3 * 32 + 4 * 16  // 4 groups per row: 3 extra f32 scales; an f16 offset per row
            + log2(9.0) * 192                           // one scale per row: free
            + log2(7.0) * 40 + 4 * 6 * 16               // 7 entries per row: 6 extra at 16 bits
            + 4 * 99 + (16 - 3) * 16                    // one table of 16 for 3 rows: 13 extra
            + 4 * 80                                    // one table of 16 for 40 rows: none extra
            + 16 * 512
        XCTAssertEqual(accounting.weights, 400 + 192 + 40 + 99 + 80 + 512)
        XCTAssertEqual(accounting.averageBits, bits / 1323, accuracy: 1e-12)
    }
}
