import Foundation
import XCTest
@testable import BFQCore

/// Hand-made GGUF files breaking one rule each: refused with one line naming the field (and its byte offset) and the
/// rule; and truncated or byte-flipped real files never read anything but a GGUFError.
final class GGUFHostileTests: XCTestCase {
    /// Little-endian GGUF pieces.
    struct Bytes {
        var data: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data += Array(s.utf8) }
        mutating func raw(_ bytes: [UInt8]) { data += bytes }
    }

    /// A file with `kv` raw metadata records (`kvCount` of them) and tensors (name, dims, type, offset) over `payload`.
    static func file(version: UInt32 = 3, kvCount: UInt64 = 0, kv: (inout Bytes) -> Void = { _ in },
                     tensors: [(String, [UInt64], UInt32, UInt64)] = [("t", [2, 2], 0, 0)], alignment: Int = 32,
                     payload: [UInt8] = [UInt8](repeating: 0, count: 16)) -> [UInt8] {
        var b = Bytes()
        b.raw(Array("GGUF".utf8))
        b.u32(version)
        b.u64(UInt64(tensors.count))
        b.u64(kvCount)
        kv(&b)
        for (name, dims, type, offset) in tensors {
            b.string(name)
            b.u32(UInt32(dims.count))
            dims.forEach { b.u64($0) }
            b.u32(type)
            b.u64(offset)
        }
        b.raw([UInt8](repeating: 0, count: (alignment - b.data.count % alignment) % alignment))
        return b.data + payload
    }

    private func refusal(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try TestFiles.temporaryDirectory() + "/case.gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try FullRead.checkpoint(path), file: file, line: line) { error in
            XCTAssertTrue(error is GGUFError, "\(error)", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path + ": "), text, file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "\(text) does not contain \(fragment)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
        }
    }

    func testTheBaseFileReads() throws {
        let path = try TestFiles.temporaryDirectory() + "/base.gguf"
        try Data(Self.file(payload: [0, 0, 128, 63] + [UInt8](repeating: 0, count: 12))).write(to: URL(fileURLWithPath: path))
        let checkpoint = try CheckpointFile.open(path)
        XCTAssertEqual(checkpoint.tensors.map(\.shape), [[2, 2]])
        XCTAssertEqual(try checkpoint.floats(of: checkpoint.tensors[0]), [1, 0, 0, 0])
        // Version 2 (the same layout) and a 64-byte alignment read too: the data starts at the next multiple of 64.
        let other = try TestFiles.temporaryDirectory() + "/v2.gguf"
        try Data(Self.file(version: 2, kvCount: 1, kv: { $0.string("general.alignment"); $0.u32(4); $0.u32(64) }, alignment: 64,
                           payload: [0, 0, 0, 64] + [UInt8](repeating: 0, count: 12))).write(to: URL(fileURLWithPath: other))
        let gguf = try GGUFReader.parse(MappedFile(path: other))
        XCTAssertEqual(gguf.version, 2)
        XCTAssertEqual(gguf.alignment, 64)
        XCTAssertEqual(gguf.dataStart, 128)
        let v2 = try CheckpointFile.open(other)
        XCTAssertEqual(try v2.floats(of: v2.tensors[0]), [2, 0, 0, 0])
    }

    func testHeader() throws {
        try refusal(Array("GGUG".utf8) + Self.file().dropFirst(4), "magic at byte 0: the file does not start with \"GGUF\"")
        try refusal(Self.file(version: 1), "version at byte 4: version 1 is not 2 or 3")
        try refusal(Self.file(version: 0x0300_0000), "the file is big-endian")
        try refusal(Array(Self.file().prefix(12)), "tensor_count at byte 8: needs 8 bytes but the file ends 4 bytes later")
    }

    func testMetadata() throws {
        try refusal(Self.file(kvCount: 1) { $0.string("a"); $0.u32(13) }, "value type of a at byte 33: 13 is not a GGUF value type")
        try refusal(Self.file(kvCount: 1) { $0.string("flag"); $0.u32(7); $0.raw([2]) }, "flag at byte 40: BOOL value 2 is neither 0 nor 1")
        try refusal(Self.file(kvCount: 2) { b in
            for _ in 0 ..< 2 { b.string("k"); b.u32(4); b.u32(1) }
        }, "declares two metadata keys named k")
        try refusal(Self.file(kvCount: 1) { $0.u64(2); $0.raw([0xC3, 0x28]); $0.u32(4); $0.u32(1) }, "metadata key at byte 24: is not valid UTF-8")
        try refusal(Self.file(kvCount: 2) { b in
            b.u64(2); b.raw([0xC3, 0xA9]); b.u32(4); b.u32(1)        // "é" precomposed
            b.u64(3); b.raw([0x65, 0xCC, 0x81]); b.u32(4); b.u32(1)  // "e" + combining acute
        }, "declares two metadata keys (equal after Unicode normalisation) named")
        try refusal(Self.file(kvCount: 1) { $0.string("nest"); $0.u32(9); $0.u32(9); $0.u64(1); $0.u32(4); $0.u64(1); $0.u32(1) },
                    "an array inside an array")
        try refusal(Self.file(kvCount: 1) { $0.string("general.alignment"); $0.u32(5); $0.u32(32) },
                    "general.alignment at byte 24: must be a UINT32 power of two (holds INT32 32)")
        try refusal(Self.file(kvCount: 1) { $0.string("general.alignment"); $0.u32(4); $0.u32(24) },
                    "must be a UINT32 power of two (holds UINT32 24)")
        try refusal(Self.file(kvCount: 1) { $0.string("general.alignment"); $0.u32(4); $0.u32(0) }, "power of two (holds UINT32 0)")
        try refusal(Self.file(kvCount: 1) { $0.u64(65536); $0.raw([UInt8](repeating: 97, count: 65536)); $0.u32(4); $0.u32(1) },
                    "metadata key at byte 24: is 65536 bytes long; the limit is 65535")
    }

    func testTensorDeclarations() throws {
        try refusal(Self.file(tensors: [("t", [2, 2], 0, 0), ("t", [2, 2], 0, 32)], payload: .init(repeating: 0, count: 48)),
                    "declares two tensors named t")
        try refusal(Self.file(tensors: [("", [4], 0, 0)]), "tensor name at byte 24: is empty")
        try refusal(Self.file(tensors: [("t", [1, 1, 1, 1, 4], 0, 0)]), "GGUF tensor t: 5 dimensions; GGUF tensors have at most 4")
        try refusal(Self.file(tensors: [("t", [UInt64.max, 1], 0, 0)]), "dimension 0 is 18446744073709551615")
        try refusal(Self.file(tensors: [("t", [4], 4, 0)]), "type of t at byte 45: 4 is not a ggml type id (retired or unknown)")
        try refusal(Self.file(tensors: [("t", [4], 99, 0)]), "99 is not a ggml type id")
        try refusal(Self.file(tensors: [("t", [256], 16, 0)], payload: .init(repeating: 0, count: 66)),
                    "GGUF tensor t: type IQ2_XXS is not supported")
        try refusal(Self.file(tensors: [("t", [48, 2], 2, 0)], payload: .init(repeating: 0, count: 64)),
                    "rows of 48 elements are not a multiple of Q4_0's block of 32")
        try refusal(Self.file(tensors: [("t", [2, 2], 0, 8)], payload: .init(repeating: 0, count: 32)),
                    "offset of t at byte 57: 8 is not a multiple of the alignment 32")
        // Found by the fuzzer: an empty tensor in a file that ends before its data section would start.
        try refusal(Array(Self.file(tensors: [("t", [0, 0], 0, 0)], payload: []).prefix(78)),
                    "data section at byte 65: starts at byte 96 (the header padded to 32), past the end of the 78-byte file")
        try refusal(Self.file(tensors: [("t", [2, 2], 0, 0)], payload: .init(repeating: 0, count: 15)),
                    "its 16 bytes at data offset 0 run past the end of the 15-byte data section")
        try refusal(Self.file(tensors: [("a", [16], 0, 0), ("b", [4], 0, 32)], payload: .init(repeating: 0, count: 64)),
                    "GGUF tensor b: its data (from data offset 32) overlaps tensor a's (to 64)")
    }

    /// Found by the fuzzer: an empty tensor whose other dimensions multiply past Int.max (in PyTorch's order the zero
    /// comes last, after the product has overflowed) is refused like any other overflowing shape.
    func testEmptyTensorWithHugeDimensionsIsRefused() throws {
        try refusal(Self.file(tensors: [("t", [0, 1 << 40, 1 << 40], 0, 0)], payload: []), "GGUF tensor t: its element count overflows")
    }

    func testComfyOriginalShape() throws {
        let shape = { (values: [Int32]) in { (b: inout Bytes) in
            b.string("comfy.gguf.orig_shape.t"); b.u32(9); b.u32(5); b.u64(UInt64(values.count))
            values.forEach { b.u32(UInt32(bitPattern: $0)) }
        } }
        try refusal(Self.file(kvCount: 1, kv: shape([3, 2])), "comfy.gguf.orig_shape.t [3, 2] holds 6 elements but the tensor has 4")
        try refusal(Self.file(kvCount: 1, kv: shape([-4, -1])), "comfy.gguf.orig_shape.t holds -4, not a size")
        let path = try TestFiles.temporaryDirectory() + "/shape.gguf"
        try Data(Self.file(kvCount: 1, kv: shape([4, 1, 1]))).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try CheckpointFile.open(path).tensors[0].shape, [4, 1, 1])
    }

    func testTruncationsAndByteFlipsOnlyThrowGGUFErrors() throws {
        let outcomes = try Mutations.outcomes(of: ["gguf/types.gguf", "gguf/kquants.q5_K.gguf"], truncationStep: 5, flips: 600,
                                              refusedWith: GGUFError.self) { path, bytes in
            let checkpoint = try GGUFReader.read(MappedFile(path: path))
            for tensor in checkpoint.tensors {
                XCTAssertLessThanOrEqual(tensor.storage.upperBound, bytes.count)
                if tensor.dtype.isFloatingPoint { _ = try checkpoint.floats(of: tensor) }
            }
        }
        XCTAssertGreaterThan(outcomes.refused, 1500)
        XCTAssertGreaterThan(outcomes.read, 100, "flips in tensor data still read")
    }
}
