import Foundation
import XCTest
@testable import BFQCore

/// One test per reader invariant of spec/bfq.md section 8, from a small container edited byte by byte, and a test
/// that every single-byte change anywhere in a file is detected.
final class ContainerInvariantTests: XCTestCase {
    /// A small container: a compressible raw tensor (zstd section), an incompressible one (stored section), an empty one.
    private func sample() throws -> [UInt8] {
        let path = try TestFiles.temporaryDirectory() + "/sample.bfq"
        let writer = try ContainerWriter(target: OutputTarget(path: path, durable: false))
        let zeros = [Float](repeating: 0.25, count: 512)
        var state: UInt32 = 7
        let noise: [UInt16] = (0 ..< 37).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt16(truncatingIfNeeded: state >> 9)
        }
        let a = try zeros.withUnsafeBytes { try writer.addSection($0) }
        let b = try noise.withUnsafeBytes { try writer.addSection($0) }
        let c = try [UInt8]().withUnsafeBytes { try writer.addSection($0) }
        try writer.finish(manifest: ContainerManifest(tensors: [
            ContainerTensor(name: "a", shape: [16, 32], sourceType: .f32, encoding: .raw(dtype: .f32), sections: ["data": a]),
            ContainerTensor(name: "b", shape: [37], sourceType: .f16, encoding: .raw(dtype: .f16), sections: ["data": b]),
            ContainerTensor(name: "c", shape: [0, 3], sourceType: .bf16, encoding: .raw(dtype: .bf16), sections: ["data": c]),
        ], metadata: ["k": "v"]))
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func expect(_ bytes: [UInt8], _ check: (ContainerError) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let error = try ContainerFixtures.error(reading: bytes)
        guard let error else { return XCTFail("accepted", file: file, line: line) }
        XCTAssertTrue(check(error), "wrong error: \(error)", file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
    }

    func testSampleReads() throws {
        let bytes = try sample()
        XCTAssertNil(try ContainerFixtures.error(reading: bytes))
        let reader = try ContainerReader(MappedFile(path: try TestFiles.write(bytes, name: "s.bfq")))
        XCTAssertEqual(reader.sections.map(\.compression), [.zstd, .none, .none])
        XCTAssertEqual(try reader.withSection(0) { Array($0.bindMemory(to: Float.self)) }, [Float](repeating: 0.25, count: 512))
    }

    func test1MagicAndLength() throws {
        var bytes = try sample()
        bytes[1] = 0x43
        try expect(bytes) { if case .notBFQ = $0 { true } else { false } }
        try expect(Array(try sample()[..<100])) { if case .notBFQ = $0 { true } else { false } }
    }

    func test2MajorVersion() throws {
        var bytes = try sample()
        ContainerFixtures.set(UInt16(2), in: &bytes, at: 8)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .unsupportedVersion(_, 2, 1) = $0 { true } else { false } }
    }

    func test3HeaderChecksumFlagsAndReserved() throws {
        var bytes = try sample()
        bytes[20] ^= 1
        try expect(bytes) { if case .headerChecksum = $0 { true } else { false } }
        bytes = try sample()
        bytes[100] = 1
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .reservedNotZero(_, 100) = $0 { true } else { false } }
        bytes = try sample()
        ContainerFixtures.set(UInt32(2), in: &bytes, at: 12)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .reservedNotZero(_, 12) = $0 { true } else { false } }
        // Flag bit 0 (byte packing) is known, but holds only when some tensor has byte-packed codes (invariant 11).
        bytes = try sample()
        ContainerFixtures.set(UInt32(1), in: &bytes, at: 12)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .manifestInvalid(_, let rule) = $0 { rule.contains("flag bit 0") } else { false } }
    }

    func test4FileSize() throws {
        try expect(try sample() + [0]) { if case .fileSizeMismatch = $0 { true } else { false } }
        let bytes = try sample()
        try expect(Array(bytes.dropLast())) { if case .fileSizeMismatch = $0 { true } else { false } }
    }

    func test5TableBounds() throws {
        var bytes = try sample()
        ContainerFixtures.set(UInt64(2_000_000), in: &bytes, at: 24)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .tableOutOfBounds = $0 { true } else { false } }
        bytes = try sample()
        ContainerFixtures.set(ContainerFixtures.u64(bytes, 16) + 8, in: &bytes, at: 16)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .tableOutOfBounds = $0 { true } else { false } }
    }

    func test6TableChecksum() throws {
        var bytes = try sample()
        bytes[Int(ContainerFixtures.u64(bytes, 16)) + 3] ^= 0x10
        try expect(bytes) { if case .tableChecksum = $0 { true } else { false } }
    }

    func test7SectionBounds() throws {
        let table = { (bytes: [UInt8]) in Int(ContainerFixtures.u64(bytes, 16)) }
        var bytes = try sample()
        ContainerFixtures.set(UInt64(130), in: &bytes, at: table(bytes))
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .sectionBounds(_, 0, _) = $0 { true } else { false } }
        bytes = try sample()
        bytes[table(bytes) + 40 + 32] = 2
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .sectionBounds(_, 1, _) = $0 { true } else { false } }
        bytes = try sample()
        let stored = ContainerFixtures.u64(bytes, table(bytes) + 8)
        ContainerFixtures.set(stored * 65_536 + 1, in: &bytes, at: table(bytes) + 16)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .sectionBounds(_, 0, let rule) = $0 { rule.contains("65,536") } else { false } }
        bytes = try sample()
        ContainerFixtures.set(UInt64(1 << 40), in: &bytes, at: table(bytes) + 16)
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .sectionBounds(_, 0, let rule) = $0 { rule.contains("4 GiB") } else { false } }
        bytes = try sample()
        bytes[table(bytes) + 35] = 1
        ContainerFixtures.reseal(&bytes)
        try expect(bytes) { if case .reservedNotZero = $0 { true } else { false } }
    }

    func test8ManifestChecksumAndJSON() throws {
        var bytes = try sample()
        bytes[bytes.count - 2] ^= 0x01
        try expect(bytes) { if case .manifestChecksum = $0 { true } else { false } }
        bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: "{\"format\":\"bfq\",\"format\":\"bfq\"}")
        try expect(bytes) { if case .manifestInvalid(_, let rule) = $0 { rule.contains("twice") } else { false } }
        bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"tool\"", with: "\"toot\""))
        try expect(bytes) { if case .manifestInvalid(_, let rule) = $0 { rule.contains("missing \"tool\"") } else { false } }
    }

    func test9PaddingIsZero() throws {
        var bytes = try sample()
        let reader = try ContainerReader(MappedFile(path: try TestFiles.write(bytes, name: "p.bfq")))
        let gap = Int(reader.sections[0].offset + reader.sections[0].storedSize)
        bytes[gap] = 0xAA
        try expect(bytes) { if case .reservedNotZero(_, gap) = $0 { true } else { false } }
    }

    func test10NamesAndReferences() throws {
        var bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"name\":\"b\"", with: "\"name\":\"a\""))
        try expect(bytes) { if case .manifestInvalid(_, let rule) = $0 { rule.contains("two tensors are named a") } else { false } }
        bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"index\":1", with: "\"index\":0"))
        try expect(bytes) { if case .sectionReference = $0 { true } else { false } }
    }

    func test10ElementLimit() throws {
        var bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"shape\":[16,32]", with: "\"shape\":[32768,32769]"))
        try expect(bytes) { if case .manifestInvalid(_, let rule) = $0 { rule.contains("2^30") } else { false } }
    }

    func test11EncodingAndSizes() throws {
        var bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"shape\":[16,32]", with: "\"shape\":[16,33]"))
        try expect(bytes) { if case .sectionSize(_, "a", "data", 2048, 2112) = $0 { true } else { false } }
        bytes = try sample()
        ContainerFixtures.replaceManifest(&bytes, with: ContainerFixtures.manifestText(bytes).replacingOccurrences(of: "\"raw_dtype\":\"F32\"", with: "\"raw_dtype\":\"Q4\""))
        try expect(bytes) { if case .manifestInvalid = $0 { true } else { false } }
    }

    func test12SectionChecksumsAndFrames() throws {
        var bytes = try sample()
        let reader = try ContainerReader(MappedFile(path: try TestFiles.write(bytes, name: "c.bfq")))
        bytes[Int(reader.sections[1].offset)] ^= 0x40
        try expect(bytes) { if case .sectionChecksum(_, 1, "stored", _, _) = $0 { true } else { false } }
    }

    /// Every single-byte change is detected: the reader refuses the file or a section, never returns other values.
    func testEveryByteFlipIsDetected() throws {
        let original = try sample()
        for position in original.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = original
                bytes[position] ^= flip
                XCTAssertNotNil(try ContainerFixtures.error(reading: bytes), "flip \(flip) at \(position) went unnoticed")
            }
        }
    }
}

/// Hostile manifests with valid checksums: sizes that would overflow, frames that are not zstd frames, names that
/// differ only in Unicode normalisation.
final class ContainerHostileManifestTests: XCTestCase {
    private func container(_ build: (ContainerWriter) throws -> ContainerManifest) throws -> String {
        let path = try TestFiles.temporaryDirectory() + "/hostile.bfq"
        let writer = try ContainerWriter(target: OutputTarget(path: path, durable: false))
        try writer.finish(manifest: try build(writer))
        return path
    }

    func testHugeRowsWithAZeroDimensionRefusedWithoutOverflow() throws {
        let path = try container { writer in
            let codes = try [UInt8]().withUnsafeBytes { try writer.addSection($0) }
            let scales = try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try writer.addSection($0) }
            return ContainerManifest(tensors: [ContainerTensor(
                name: "w", shape: [1 << 62, 0], sourceType: .f32,
                encoding: .grid(levels: 3, balanced: true, scaleType: .f32, groupSize: nil, offsetType: nil),
                sections: ["codes": codes, "scales": scales])])
        }
        XCTAssertThrowsError(try ContainerReader(MappedFile(path: path))) {
            guard case .manifestInvalid(_, let rule)? = $0 as? ContainerError else { return XCTFail("\($0)") }
            XCTAssertTrue(rule.contains("2^30"), rule)
        }
    }

    func testWideTimeFeaturesRefusedWithoutOverflow() throws {
        let path = try container { writer in
            let features = try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try writer.addSection($0) }
            return ContainerManifest(tensors: [], timeFeatures: ContainerManifest.TimeFeatures(
                timesteps: [0, 1], layers: [("a", (1 << 61) + 5)], features: features))
        }
        XCTAssertThrowsError(try ContainerReader(MappedFile(path: path))) {
            guard case .encodingInvalid(_, "time_features", _)? = $0 as? ContainerError else { return XCTFail("\($0)") }
        }
    }

    func testSkippableFrameIsNotASection() throws {
        var skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0] + Array("abcd".utf8)
        XCTAssertThrowsError(try skippable.withUnsafeMutableBytes { stored in
            try Zstd.decompress(UnsafeRawBufferPointer(stored), into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }) { XCTAssertEqual($0 as? ZstdError, .notOneFrame(storedSize: 12)) }
        XCTAssertThrowsError(try Zstd.decompress(UnsafeRawBufferPointer(start: nil, count: 0),
                                                 into: UnsafeMutableRawBufferPointer(start: nil, count: 0)))
    }

    func testNamesDifferingOnlyInNormalisationAreDistinctTensors() throws {
        let path = try container { writer in
            let a = try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try writer.addSection($0) }
            let b = try [UInt8](repeating: 1, count: 4).withUnsafeBytes { try writer.addSection($0) }
            return ContainerManifest(tensors: [
                ContainerTensor(name: "\u{E9}", shape: [1], sourceType: .f32, encoding: .raw(dtype: .f32), sections: ["data": a]),
                ContainerTensor(name: "e\u{301}", shape: [1], sourceType: .f32, encoding: .raw(dtype: .f32), sections: ["data": b]),
            ])
        }
        XCTAssertEqual(try ContainerReader(MappedFile(path: path)).manifest.tensors.count, 2)
        let checkpoint = try CheckpointFile.open(path)
        let values = try checkpoint.tensors.map { tensor in try checkpoint.withContiguousBytes(of: tensor) { Array($0) } }
        XCTAssertEqual(values, [[0, 0, 0, 0], [1, 1, 1, 1]])
        XCTAssertEqual(CheckpointSummary(checkpoint).tensors.count, 2)
    }
}
