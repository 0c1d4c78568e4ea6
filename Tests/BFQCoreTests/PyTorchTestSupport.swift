import Foundation
import XCTest
@testable import BFQCore

/// Fixtures of testdata/pytorch (made by tools/testdata/pytorch_cases.py) and helpers for literal-byte cases.
enum PyTorchFixtures {
    struct Case {
        let file: String
        let expected: String?
        let format: String?
        let order: [String]
        let metadata: [String: String]
        let warnings: [String]
        let forbidden: String?
        /// The message after "<path>: " of a file torch writes but bfq refuses.
        let error: String?
    }

    static func path(_ name: String) -> String { TestFiles.path("pytorch/" + name) }

    static func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("manifest.json")))
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return rows.map { row in
            Case(file: row["file"] as! String, expected: row["expected"] as? String, format: row["format"] as? String,
                 order: row["order"] as? [String] ?? [], metadata: row["metadata"] as? [String: String] ?? [:],
                 warnings: row["warnings"] as? [String] ?? [], forbidden: row["forbidden"] as? String,
                 error: row["error"] as? String)
        }
    }

    /// Every tensor of a checkpoint as (dtype, shape, contiguous bytes), by name.
    static func contents(_ checkpoint: Checkpoint) throws -> [String: (DType, [Int], [UInt8])] {
        var result: [String: (DType, [Int], [UInt8])] = [:]
        for tensor in checkpoint.tensors {
            result[tensor.name] = (tensor.dtype, tensor.shape, try checkpoint.withContiguousBytes(of: tensor) { Array($0) })
        }
        return result
    }

    /// Reads `bytes` written to a temporary file; returns the error it throws, or fails.
    static func error(reading bytes: [UInt8], name: String = "case.ckpt", file: StaticString = #filePath, line: UInt = #line) -> PyTorchError? {
        do {
            let path = try TestFiles.write(bytes, name: name)
            _ = try PyTorchReader.read(MappedFile(path: path))
            XCTFail("no error", file: file, line: line)
        } catch let error as PyTorchError {
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return nil
    }

    static func read(_ bytes: [UInt8], name: String = "case.ckpt") throws -> Checkpoint {
        try PyTorchReader.read(MappedFile(path: try TestFiles.write(bytes, name: name)))
    }
}

/// Builds zip archives and torch pickles byte by byte for the error-case tests.
enum ZipBytes {
    struct Record {
        var name: String
        var data: [UInt8]
        var method: UInt16 = 0
    }

    static func le16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, Array.init) }
    static func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, Array.init) }
    static func le64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(truncatingIfNeeded: v).littleEndian, Array.init) }

    /// A plain zip (no data descriptors); `zip64` adds the zip64 end record and locator.
    static func archive(_ records: [Record], zip64: Bool = false) -> (bytes: [UInt8], centralOffset: Int, localOffsets: [Int]) {
        var out: [UInt8] = []
        var central: [UInt8] = []
        var offsets: [Int] = []
        for record in records {
            offsets.append(out.count)
            let name = Array(record.name.utf8)
            let header = le16(20) + le16(0) + le16(Int(record.method)) + le16(0) + le16(0x21) + le32(0)
                + le32(record.data.count) + le32(record.data.count) + le16(name.count)
            out += le32(0x0403_4b50) + header + le16(0) + name + record.data
            central += le32(0x0201_4b50) + le16(45) + header + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
                + le32(offsets.last!) + name
        }
        let centralOffset = out.count
        out += central
        if zip64 {
            let end64 = out.count
            out += le32(0x0606_4b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
                + le64(records.count) + le64(records.count) + le64(central.count) + le64(centralOffset)
            out += le32(0x0706_4b50) + le32(0) + le64(end64) + le32(1)
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(-1) + le32(-1) + le16(0)
        } else {
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(records.count) + le16(records.count)
                + le32(central.count) + le32(centralOffset) + le16(0)
        }
        return (out, centralOffset, offsets)
    }

    /// A torch zip checkpoint holding `pickle` as archive/data.pkl and the given storages as archive/data/<key>.
    static func checkpoint(pickle: [UInt8], storages: [(String, [UInt8])] = [], zip64: Bool = false) -> [UInt8] {
        archive([Record(name: "archive/data.pkl", data: pickle)] + storages.map { Record(name: "archive/data/\($0.0)", data: $0.1) }
                + [Record(name: "archive/byteorder", data: Array("little".utf8))], zip64: zip64).bytes
    }

    /// Pickle bytes of {name: _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, shape, stride, False, OrderedDict())}.
    static func tensorPickle(name: String = "w", storageClass: String = "FloatStorage", key: String = "0", numel: Int,
                             offset: Int = 0, shape: [Int], stride: [Int]) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x58] + le32(s.utf8.count) + Array(s.utf8) }
        func int(_ v: Int) -> [UInt8] { [0x4A] + le32(v) }
        func tuple(_ items: [Int]) -> [UInt8] { [0x28] + items.flatMap(int) + [0x74] }
        var p: [UInt8] = [0x80, 0x02, 0x7D] + str(name)
        p += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [0x28]
        p += [0x28] + str("storage") + Array("ctorch\n\(storageClass)\n".utf8) + str(key) + str("cpu") + int(numel) + [0x74, 0x51]
        p += int(offset) + tuple(shape) + tuple(stride) + [0x89] + Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52]
        p += [0x74, 0x52, 0x73, 0x2E]
        return p
    }

    /// Four float32 values 1, 2, 3, 4.
    static let fourFloats: [UInt8] = [Float(1), 2, 3, 4].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
}
