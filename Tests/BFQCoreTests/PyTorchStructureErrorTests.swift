import Foundation
import XCTest
@testable import BFQCore

/// Zip container, storage, tensor and legacy-framing errors from literal bytes, and the hostile fixtures.
final class PyTorchStructureErrorTests: XCTestCase {
    private func failure(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> (PyTorchError, String) {
        let path = try TestFiles.write(bytes, name: "case.ckpt")
        do {
            _ = try PyTorchReader.read(MappedFile(path: path))
        } catch let error as PyTorchError {
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
            return (error, path)
        }
        XCTFail("no error", file: file, line: line)
        throw XCTSkip("no error")
    }

    private func tensorFile(numel: Int, storage: [UInt8] = ZipBytes.fourFloats, storageClass: String = "FloatStorage",
                            key: String = "0", offset: Int = 0, shape: [Int], stride: [Int]) -> [UInt8] {
        ZipBytes.checkpoint(pickle: ZipBytes.tensorPickle(storageClass: storageClass, key: key, numel: numel, offset: offset,
                                                          shape: shape, stride: stride), storages: [("0", storage)])
    }

    // MARK: - Valid literal files

    func testLiteralTensorReadsWithAndWithoutZip64() throws {
        for zip64 in [false, true] {
            let bytes = ZipBytes.checkpoint(pickle: ZipBytes.tensorPickle(numel: 4, offset: 1, shape: [3], stride: [1]),
                                            storages: [("0", ZipBytes.fourFloats)], zip64: zip64)
            let checkpoint = try PyTorchFixtures.read(bytes)
            XCTAssertEqual(checkpoint.tensors.map(\.name), ["w"])
            XCTAssertEqual(try checkpoint.withContiguousBytes(of: checkpoint.tensors[0]) { Array($0) }, Array(ZipBytes.fourFloats[4...]))
        }
    }

    // MARK: - Zip

    func testCompressedEntry() throws {
        var records = [ZipBytes.Record(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])]
        records[0].method = 8
        let (error, path) = try failure(ZipBytes.archive(records).bytes)
        XCTAssertEqual(error, .compressedEntry(path: path, entry: "archive/data.pkl", method: 8))
        XCTAssertTrue(error.description.hasSuffix("zip entry 'archive/data.pkl' is compressed (method 8); torch checkpoints store records uncompressed"))
    }

    func testCompressedStorageRecord() throws {
        let pickle = ZipBytes.tensorPickle(numel: 4, shape: [4], stride: [1])
        let records = [ZipBytes.Record(name: "archive/data.pkl", data: pickle),
                       ZipBytes.Record(name: "archive/data/0", data: ZipBytes.fourFloats, method: 12)]
        let (error, path) = try failure(ZipBytes.archive(records).bytes)
        XCTAssertEqual(error, .compressedEntry(path: path, entry: "archive/data/0", method: 12))
    }

    func testTruncatedCentralDirectory() throws {
        let (bytes, centralOffset, _) = ZipBytes.archive([.init(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])])
        // Keep the end record but cut the central directory in half.
        let end = Array(bytes.suffix(22))
        let cut = Array(bytes[..<(centralOffset + 20)])
        var patched = end
        patched.replaceSubrange(16 ..< 20, with: ZipBytes.le32(centralOffset))
        let (error, path) = try failure(cut + patched)
        XCTAssertEqual(error, .zip(path: path, entry: "", offset: centralOffset,
                                   rule: "central directory (\(bytes.count - 22 - centralOffset) bytes at \(centralOffset)) runs past the end of the file (\(cut.count + 22) bytes)"))
    }

    func testCentralDirectoryEntryCutShort() throws {
        var (bytes, centralOffset, _) = ZipBytes.archive([.init(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])])
        let eocd = bytes.count - 22
        bytes.replaceSubrange(eocd + 12 ..< eocd + 16, with: ZipBytes.le32(50))  // directory size: 46 + 4 of the 16-byte name
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .zip(path: path, entry: "", offset: centralOffset, rule: "central directory truncated"))
    }

    func testLocalHeaderOffsetPastEnd() throws {
        var (bytes, centralOffset, _) = ZipBytes.archive([.init(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])])
        bytes.replaceSubrange(centralOffset + 42 ..< centralOffset + 46, with: ZipBytes.le32(1_000_000))
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .zip(path: path, entry: "archive/data.pkl", offset: centralOffset,
                                   rule: "local header offset 1000000 is past the end of the file (\(bytes.count) bytes)"))
    }

    func testEntryDataPastEnd() throws {
        var (bytes, centralOffset, _) = ZipBytes.archive([.init(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])])
        bytes.replaceSubrange(centralOffset + 20 ..< centralOffset + 28, with: ZipBytes.le32(0xFFFF_FFF0) + ZipBytes.le32(0xFFFF_FFF0))
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .zip(path: path, entry: "archive/data.pkl", offset: 46,
                                   rule: "data (4294967280 bytes at 46) runs past the end of the file (\(bytes.count) bytes)"))
    }

    func testZip64LocatorPointingNowhere() throws {
        var (bytes, _, _) = ZipBytes.archive([.init(name: "archive/data.pkl", data: [0x80, 0x02, 0x7D, 0x2E])], zip64: true)
        let locator = bytes.count - 22 - 20
        bytes.replaceSubrange(locator + 8 ..< locator + 16, with: ZipBytes.le64(Int.max))
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .zip(path: path, entry: "", offset: locator, rule: "ZIP64 locator points to \(Int.max), which holds no ZIP64 end record"))
    }

    func testNoEndRecordAndNoDataPickle() throws {
        var (error, path) = try failure([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 40))
        XCTAssertEqual(error, .zip(path: path, entry: "", offset: 44, rule: "no end-of-central-directory record"))
        (error, path) = try failure(ZipBytes.archive([.init(name: "archive/other.pkl", data: [0x2E])]).bytes)
        XCTAssertEqual(error, .notPyTorch(path: path, reason: "zip archive has no <folder>/data.pkl entry"))
        (error, path) = try failure(Array("hello world".utf8))
        XCTAssertEqual(error, .notPyTorch(path: path, reason: "neither a zip archive nor a legacy torch.save file"))
    }

    func testEntriesOutsideTheRootFolderRefused() throws {
        // torch takes the root folder from the first entry and refuses any other: A/data.pkl would be read, B/ ignored.
        let pickle = ZipBytes.tensorPickle(numel: 4, shape: [4], stride: [1])
        let (twoRoots, _, offsets) = ZipBytes.archive([.init(name: "A/data.pkl", data: pickle), .init(name: "A/data/0", data: ZipBytes.fourFloats),
                                                       .init(name: "B/data.pkl", data: pickle), .init(name: "B/data/0", data: ZipBytes.fourFloats)])
        var (error, path) = try failure(twoRoots)
        XCTAssertEqual(error, .zip(path: path, entry: "B/data.pkl", offset: offsets[2],
                                   rule: "is outside the root folder 'A/' of the first entry; torch refuses such archives"))
        let (loose, _, _) = ZipBytes.archive([.init(name: "version", data: [0x33]), .init(name: "A/data.pkl", data: pickle)])
        (error, path) = try failure(loose)
        XCTAssertEqual(error.description, "\(path): zip entry 'version' offset 0: is not in a folder; torch keeps every record under one root folder")
    }

    // MARK: - Storages and tensors

    func testBadStorageKey() throws {
        let bytes = ZipBytes.checkpoint(pickle: ZipBytes.tensorPickle(key: "7", numel: 4, shape: [4], stride: [1]),
                                        storages: [("0", ZipBytes.fourFloats)])
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .badStorage(path: path, key: "7", rule: "no record 'archive/data/7' in the archive"))
    }

    func testStorageNumelDisagreesWithRecordSize() throws {
        let (error, path) = try failure(tensorFile(numel: 5, shape: [4], stride: [1]))
        XCTAssertEqual(error, .badStorage(path: path, key: "0", rule: "declares 5 elements of 4 bytes but its record holds 16 bytes"))
    }

    func testViewPastStorageEnd() throws {
        let (error, path) = try failure(tensorFile(numel: 4, offset: 1, shape: [2, 2], stride: [2, 1]))
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "view (offset 1, shape [2, 2], stride [2, 1]) reaches past the end of storage '0' (4 elements)"))
    }

    func testNegativeStride() throws {
        let (error, path) = try failure(tensorFile(numel: 4, offset: 3, shape: [4], stride: [-1]))
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "negative stride in [-1]"))
    }

    func testExpandedViewLargerThanFileRefused() throws {
        let bytes = tensorFile(numel: 4, shape: [1 << 20, 1 << 20], stride: [0, 0])
        let (error, path) = try failure(bytes)
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "view (shape [1048576, 1048576], stride [0, 0]) repeats its storage into 4398046511104 bytes, more than the \(bytes.count)-byte file"))
    }

    func testSmallExpandedViewReadsAsRepeatedValues() throws {
        let checkpoint = try PyTorchFixtures.read(tensorFile(numel: 4, offset: 1, shape: [2, 3], stride: [0, 1]))
        let tensor = try XCTUnwrap(checkpoint.tensors.first)
        let values = try checkpoint.withContiguousBytes(of: tensor) { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(values, [2, 3, 4, 2, 3, 4])
    }

    func testShapeAndStrideRankMismatchAndNegativeSize() throws {
        var (error, path) = try failure(tensorFile(numel: 4, shape: [2, 2], stride: [1]))
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "shape [2, 2] has 2 dimensions but stride [1] has 1"))
        (error, path) = try failure(tensorFile(numel: 4, shape: [-2], stride: [1]))
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "negative size in shape [-2]"))
        (error, path) = try failure(tensorFile(numel: 4, shape: [1 << 22, 1 << 22, 1 << 22], stride: [0, 0, 0]))
        XCTAssertEqual(error, .badTensor(path: path, tensor: "w", rule: "shape [4194304, 4194304, 4194304] overflows"))
    }

    func testUnsupportedDTypeNamesTheTensor() throws {
        let (error, path) = try failure(tensorFile(numel: 2, storageClass: "ComplexFloatStorage", shape: [2], stride: [1]))
        XCTAssertEqual(error, .unsupportedDType(path: path, tensor: "w", dtype: "torch.ComplexFloatStorage"))
        XCTAssertTrue(error.description.hasSuffix("tensor 'w': unsupported dtype torch.ComplexFloatStorage"))
    }

    func testNotAStorageClass() throws {
        let (error, path) = try failure(tensorFile(numel: 4, storageClass: "Size", shape: [4], stride: [1]))
        guard case let .malformedPickle(p, part, _, opcode, rule) = error else { return XCTFail("\(error)") }
        XCTAssertEqual([p, part, opcode, rule], [path, "data.pkl", "BINPERSID", "storage type 'torch.Size' is not a torch storage class"])
    }

    // MARK: - Legacy framing

    private func legacy(version: Int = 1001, object: [UInt8], keys: [String], storages: [(Int, [UInt8])]) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x58] + ZipBytes.le32(s.utf8.count) + Array(s.utf8) }
        var bytes: [UInt8] = [0x80, 0x02, 0x8A, 0x0A] + PyTorchReader.legacyMagic + [0x2E]
        bytes += [0x80, 0x02, 0x4D] + ZipBytes.le16(version) + [0x2E]
        bytes += [0x80, 0x02, 0x7D] + str("little_endian") + [0x88, 0x73, 0x2E]
        bytes += object
        bytes += [0x80, 0x02, 0x5D, 0x28] + keys.flatMap(str) + [0x65, 0x2E]
        for (count, data) in storages { bytes += ZipBytes.le64(count) + data }
        return bytes
    }

    /// {"w": tensor} with a 6-field persistent id, as legacy torch.save writes it.
    private func legacyObject(numel: Int, view: [UInt8] = [0x4E]) -> [UInt8] {
        var pickle = ZipBytes.tensorPickle(numel: numel, shape: [2], stride: [1])
        let persid = pickle.firstIndex(of: 0x51)!  // BINPERSID follows TUPLE; add the view field before TUPLE
        pickle.insert(contentsOf: view, at: persid - 1)
        return pickle
    }

    func testLegacyReadsAndChecksFraming() throws {
        let good = legacy(object: legacyObject(numel: 4), keys: ["0"], storages: [(4, ZipBytes.fourFloats)])
        let checkpoint = try PyTorchFixtures.read(good)
        XCTAssertEqual(checkpoint.format, .pytorchLegacy)
        XCTAssertEqual(try checkpoint.withContiguousBytes(of: checkpoint.tensors[0]) { Array($0) }, Array(ZipBytes.fourFloats[..<8]))

        var (error, path) = try failure(legacy(version: 1000, object: legacyObject(numel: 4), keys: ["0"], storages: [(4, ZipBytes.fourFloats)]))
        XCTAssertEqual(error, .legacy(path: path, offset: 15, rule: "protocol version is not 1001"))
        (error, path) = try failure(legacy(object: legacyObject(numel: 4), keys: ["0"], storages: [(3, ZipBytes.fourFloats)]))
        XCTAssertEqual(error, .badStorage(path: path, key: "0", rule: "holds 3 elements but is referenced with 4"))
        (error, path) = try failure(legacy(object: legacyObject(numel: 4), keys: ["0", "1"], storages: [(4, ZipBytes.fourFloats)]))
        XCTAssertEqual(error, .badStorage(path: path, key: "1", rule: "listed but never referenced"))
        (error, path) = try failure(legacy(object: legacyObject(numel: 4), keys: [], storages: []))
        XCTAssertEqual(error, .badStorage(path: path, key: "0", rule: "referenced but missing from the storage list"))
        let short = legacy(object: legacyObject(numel: 4), keys: ["0"], storages: [(4, Array(ZipBytes.fourFloats[..<10]))])
        (error, path) = try failure(short)
        XCTAssertEqual(error, .legacy(path: path, offset: short.count - 18, rule: "storage '0' (4 elements of 4 bytes) runs past the end of the file"))
    }

    func testLegacyViewMetadata() throws {
        // view ('v', 1, 2): elements 1 and 2 of the root storage
        let view: [UInt8] = [0x58, 1, 0, 0, 0, 0x76, 0x4B, 1, 0x4B, 2, 0x87]
        let checkpoint = try PyTorchFixtures.read(legacy(object: legacyObject(numel: 4, view: view), keys: ["0"], storages: [(4, ZipBytes.fourFloats)]))
        XCTAssertEqual(try checkpoint.withContiguousBytes(of: checkpoint.tensors[0]) { Array($0) }, Array(ZipBytes.fourFloats[4 ..< 12]))
        let past: [UInt8] = [0x58, 1, 0, 0, 0, 0x76, 0x4B, 3, 0x4B, 2, 0x87]
        let (error, path) = try failure(legacy(object: legacyObject(numel: 4, view: past), keys: ["0"], storages: [(4, ZipBytes.fourFloats)]))
        XCTAssertEqual(error, .badStorage(path: path, key: "0", rule: "view of 2 elements at 3 exceeds 4 elements"))
    }

    // MARK: - Hostile fixtures

    func testHostileFixturesRefusedWithTheGlobalNamed() throws {
        let hostile = try PyTorchFixtures.cases().filter { $0.forbidden != nil }
        XCTAssertEqual(hostile.count, 16)
        for fixture in hostile {
            let path = PyTorchFixtures.path(fixture.file)
            XCTAssertThrowsError(try PyTorchReader.read(MappedFile(path: path)), fixture.file) { error in
                guard case let .forbiddenGlobal(p, _, _, global, _)? = error as? PyTorchError else { return XCTFail("\(fixture.file): \(error)") }
                XCTAssertEqual(p, path)
                XCTAssertEqual(global, fixture.forbidden, fixture.file)
                XCTAssertTrue("\(error)".contains("global '\(fixture.forbidden!)' is forbidden"), "\(error)")
            }
        }
    }
}
