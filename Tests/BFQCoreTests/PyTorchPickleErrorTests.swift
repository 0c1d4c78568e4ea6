import Foundation
import XCTest
@testable import BFQCore

/// One literal-byte pickle per error case, inside a torch zip archive; each asserts the exact error.
final class PyTorchPickleErrorTests: XCTestCase {
    /// Reads `pickle` as archive/data.pkl; returns the error and the temporary file's path.
    private func failure(_ pickle: [UInt8], storages: [(String, [UInt8])] = [], file: StaticString = #filePath,
                         line: UInt = #line) throws -> (PyTorchError, String) {
        let path = try TestFiles.write(ZipBytes.checkpoint(pickle: pickle, storages: storages), name: "case.ckpt")
        do {
            let checkpoint = try PyTorchReader.read(MappedFile(path: path))
            XCTFail("read \(checkpoint.tensors.count) tensors, expected an error", file: file, line: line)
            throw XCTSkip("no error")
        } catch let error as PyTorchError {
            XCTAssertEqual(error.description.split(separator: "\n").count, 1, "one line", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
            return (error, path)
        }
    }

    private func str(_ s: String) -> [UInt8] { [0x58] + ZipBytes.le32(s.utf8.count) + Array(s.utf8) }

    func testTruncatedAtEveryOperandOpcode() throws {
        // (opcode and the operand bytes present, name, bytes needed by the failing read, bytes remaining then)
        let cases: [([UInt8], String, Int, Int)] = [
            ([0x4B], "BININT1", 1, 0), ([0x4D, 1], "BININT2", 2, 1), ([0x4A, 1, 2], "BININT", 4, 2), ([0x8A], "LONG1", 1, 0),
            ([0x8A, 4, 1], "LONG1", 4, 1), ([0x8B, 1, 0], "LONG4", 4, 2), ([0x8B, 9, 0, 0, 0, 1], "LONG4", 9, 1),
            ([0x47, 0, 0], "BINFLOAT", 8, 2), ([0x58, 5, 0, 0, 0, 0x61], "BINUNICODE", 5, 1),
            ([0x8C, 3, 0x61], "SHORT_BINUNICODE", 3, 1), ([0x8D, 2, 0, 0, 0, 0, 0, 0, 0], "BINUNICODE8", 2, 0),
            ([0x54, 4, 0, 0, 0], "BINSTRING", 4, 0), ([0x55, 2], "SHORT_BINSTRING", 2, 0), ([0x42, 1, 0], "BINBYTES", 4, 2),
            ([0x43, 1], "SHORT_BINBYTES", 1, 0), ([0x8E, 1, 0, 0], "BINBYTES8", 8, 3),
            ([0x96, 3, 0, 0, 0, 0, 0, 0, 0], "BYTEARRAY8", 3, 0), ([0x4E, 0x71], "BINPUT", 1, 0),
            ([0x4E, 0x72, 0], "LONG_BINPUT", 4, 1), ([0x68], "BINGET", 1, 0), ([0x6A, 0, 0], "LONG_BINGET", 4, 2),
            ([0x95, 0, 0], "FRAME", 8, 2), ([0x95, 99, 0, 0, 0, 0, 0, 0, 0], "FRAME", 99, 0), ([0x80], "PROTO", 1, 0),
        ]
        for (body, name, needed, remaining) in cases {
            let pickle: [UInt8] = (body.first == 0x80 ? [] : [0x80, 0x02]) + body
            let offset = body.first == 0x80 ? 0 : body.first == 0x4E ? 3 : 2
            let (error, path) = try failure(pickle)
            XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: offset, opcode: name, needed: needed, remaining: remaining),
                           "\(name): \(error)")
        }
    }

    func testTruncatedTextOperands() throws {
        for (op, name) in [(0x63, "GLOBAL"), (0x49, "INT"), (0x4C, "LONG"), (0x46, "FLOAT"), (0x53, "STRING"),
                           (0x56, "UNICODE"), (0x50, "PERSID"), (0x67, "GET"), (0x70, "PUT")] as [(UInt8, String)] {
            let (error, path) = try failure([0x80, 0x02, op, 0x31, 0x32])
            XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: 2, opcode: name, needed: 3, remaining: 2))
            XCTAssertTrue(error.description.contains("data.pkl offset 2: \(name) needs 3 bytes but only 2 remain"), error.description)
        }
    }

    func testDeclaredLengthsPastEnd() throws {
        var (error, path) = try failure([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E])
        XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: 2, opcode: "BINUNICODE", needed: 0xFFFF_FFFF, remaining: 1))
        (error, path) = try failure([0x80, 0x04, 0x8E] + [UInt8](repeating: 0xFF, count: 8) + [0x2E])
        XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: 2, opcode: "BINBYTES8", needed: -1, remaining: 1))
        (error, path) = try failure([0x80, 0x02, 0x8B, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 2, opcode: "LONG4", rule: "negative length -1"))
    }

    func testUnknownOpcode() throws {
        let (error, path) = try failure([0x80, 0x02, 0x4E, 0xFF, 0x2E])
        XCTAssertEqual(error, .unknownOpcode(path: path, part: "data.pkl", offset: 3, byte: 0xFF))
        XCTAssertTrue(error.description.hasSuffix("data.pkl offset 3: unknown pickle opcode 0xff"))
    }

    func testUnsupportedOpcodesAndProtocol() throws {
        var (error, path) = try failure([0x80, 0x06, 0x4E, 0x2E])
        XCTAssertEqual(error, .unsupportedOpcode(path: path, part: "data.pkl", offset: 0, opcode: "PROTO", reason: "protocol 6 is newer than 5"))
        (error, path) = try failure([0x80, 0x02, 0x82, 0x01, 0x2E])
        XCTAssertEqual(error, .unsupportedOpcode(path: path, part: "data.pkl", offset: 2, opcode: "EXT1", reason: "the copyreg extension registry is not used by torch"))
        (error, path) = try failure([0x80, 0x05, 0x97, 0x2E])
        XCTAssertEqual(error, .unsupportedOpcode(path: path, part: "data.pkl", offset: 2, opcode: "NEXT_BUFFER", reason: "out-of-band buffers are not used by torch.save"))
    }

    func testMissingStop() throws {
        let (error, path) = try failure([0x80, 0x02, 0x7D, 0x71, 0x00])
        XCTAssertEqual(error, .missingStop(path: path, part: "data.pkl", offset: 5))
    }

    func testStackUnderflowAndMarks() throws {
        var (error, path) = try failure([0x80, 0x02, 0x52, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 2, opcode: "REDUCE", rule: "stack is empty"))
        (error, path) = try failure([0x80, 0x02, 0x4E, 0x28, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 4, opcode: "STOP", rule: "stack is empty above the mark"))
        (error, path) = try failure([0x80, 0x02, 0x4E, 0x74, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 3, opcode: "TUPLE", rule: "no MARK on the stack"))
        (error, path) = try failure([0x80, 0x02, 0x7D, 0x28, 0x4E, 0x75, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 5, opcode: "SETITEMS", rule: "odd number of items"))
        (error, path) = try failure([0x80, 0x02, 0x4E, 0x4E, 0x61, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 4, opcode: "APPEND", rule: "target is a None, not a list"))
        (error, path) = try failure([0x80, 0x02, 0x4B, 0x01, 0x29, 0x52, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 5, opcode: "REDUCE", rule: "a int is not callable"))
    }

    func testMemoIndexMissing() throws {
        let (error, path) = try failure([0x80, 0x02, 0x4E, 0x71, 0x00, 0x68, 0x05, 0x2E])
        XCTAssertEqual(error, .memoMissing(path: path, part: "data.pkl", offset: 5, index: 5))
        XCTAssertTrue(error.description.hasSuffix("data.pkl offset 5: memo index 5 was never stored"))
    }

    func testMarkLimit() throws {
        let (error, path) = try failure([0x80, 0x02] + [UInt8](repeating: 0x28, count: PickleMachine.markLimit + 1) + [0x2E])
        XCTAssertEqual(error, .limitExceeded(path: path, part: "data.pkl", offset: 2 + PickleMachine.markLimit, what: "mark depth", limit: PickleMachine.markLimit))
    }

    func testDeepNestingIsAnErrorNotACrash() throws {
        // A million nested tuples: built without recursion, refused when flattened.
        var (error, path) = try failure([0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E])
        XCTAssertEqual(error, .badStructure(path: path, rule: "nesting deeper than 100 levels at '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0'"))
        // Nested dicts {"a": {"a": ...}} 150 deep.
        var pickle: [UInt8] = [0x80, 0x02]
        for _ in 0 ..< 150 { pickle += [0x7D] + str("a") }
        pickle += [0x4E] + [UInt8](repeating: 0x73, count: 150) + [0x2E]
        (error, path) = try failure(pickle)
        guard case let .badStructure(_, rule) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(rule.hasPrefix("nesting deeper than 100 levels at 'a.a.a."), rule)
    }

    func testCyclicListIsSkippedWithWarning() throws {
        // l = []; l.append(l); {"l": l, "n": 1}
        let pickle: [UInt8] = [0x80, 0x02, 0x7D] + str("l") + [0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x73] + str("n") + [0x4B, 1, 0x73, 0x2E]
        let checkpoint = try PyTorchFixtures.read(ZipBytes.checkpoint(pickle: pickle))
        XCTAssertEqual(checkpoint.metadata, ["n": "1"])
        XCTAssertEqual(checkpoint.warnings.count, 1)
        XCTAssertTrue(checkpoint.warnings[0].contains("'l.0' contains itself"), checkpoint.warnings[0])
    }

    func testStateDictContainingItselfIsAnError() throws {
        // d = {}; d["state_dict"] = d
        let pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x71, 0x00] + str("state_dict") + [0x68, 0x00, 0x73, 0x2E]
        let (error, path) = try failure(pickle)
        XCTAssertEqual(error, .badStructure(path: path, rule: "state_dict nested deeper than 100 levels"))
    }

    func testTopLevelNotADict() throws {
        let (error, path) = try failure([0x80, 0x02, 0x4B, 0x07, 0x2E])
        XCTAssertEqual(error, .badStructure(path: path, rule: "top-level object is a int, not a dict of tensors"))
    }

    func testDuplicateFlattenedName() throws {
        // {"a.b": 1, "a": {"b": 2}}
        let pickle: [UInt8] = [0x80, 0x02, 0x7D] + str("a.b") + [0x4B, 1, 0x73] + str("a") + [0x7D] + str("b") + [0x4B, 2, 0x73, 0x73, 0x2E]
        let (error, path) = try failure(pickle)
        XCTAssertEqual(error, .duplicateName(path: path, name: "a.b"))
    }

    func testForbiddenGlobalsByLiteralBytes() throws {
        let cases: [([UInt8], String, String)] = [
            (Array("cbuiltins\ngetattr\n".utf8), "builtins.getattr", "can reach any attribute"),
            (Array("c__builtin__\neval\n".utf8), "__builtin__.eval", "can execute code"),
            (Array("cos.path\njoin\n".utf8), "os.path.join", "can run commands or control processes"),
            (Array("ctorch._utils\n_rebuild_tensor_v2.__globals__\n".utf8), "torch._utils._rebuild_tensor_v2.__globals__",
             "reaches a dunder attribute, which can lead to any object"),
            (Array("ctorch\nload\n".utf8), "torch.load", "can load another pickle"),
            (Array("cbuiltins\nbreakpoint\n".utf8), "builtins.breakpoint", "starts a debugger"),
            (Array("cbuiltins\nsomething\n".utf8), "builtins.something", "only builtin data types are allowed"),
            ([0x8C, 3] + Array("sys".utf8) + [0x8C, 7] + Array("modules".utf8) + [0x93], "sys.modules", "can import or inspect arbitrary modules"),
        ]
        for (body, global, reason) in cases {
            let (error, path) = try failure([0x80, 0x04, 0x4E] + body + [0x2E])
            let offset = body.first == 0x8C ? 3 + body.count - 1 : 3
            XCTAssertEqual(error, .forbiddenGlobal(path: path, part: "data.pkl", offset: offset, global: global, reason: reason))
        }
        let (error, path) = try failure([0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x2E])
        XCTAssertEqual(error.description, "\(path): data.pkl offset 2: global 'os.system' is forbidden (can run commands or control processes)")
    }

    func testStackGlobalNeedsStrings() throws {
        let (error, path) = try failure([0x80, 0x04, 0x4B, 1, 0x4B, 2, 0x93, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 6, opcode: "STACK_GLOBAL",
                                              rule: "module and name must be strings, found int and int"))
    }

    func testInvalidUTF8String() throws {
        let (error, path) = try failure([0x80, 0x02, 0x8C, 0x02, 0xC3, 0x28, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 2, opcode: "SHORT_BINUNICODE", rule: "string is not valid UTF-8"))
    }

    func testUnknownGlobalWarnsOnceAndScalarsRender() throws {
        // {"a": argparse.Namespace(), "b": argparse.Namespace(), "big": 2**70, "neg": -5, "f": 0.5, "t": True, "s": 'x' (protocol 0 STRING)}
        var pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + str("a") + Array("cargparse\nNamespace\n".utf8) + [0x71, 0x00, 0x29, 0x52]
        pickle += str("b") + [0x68, 0x00, 0x29, 0x52]
        pickle += str("big") + [0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x40]
        pickle += str("neg") + [0x4A] + ZipBytes.le32(-5)
        pickle += str("f") + [0x47, 0x3F, 0xE0, 0, 0, 0, 0, 0, 0] + str("t") + [0x88]
        pickle += str("s") + Array("S'x\\n'\n".utf8) + str("l") + Array("L-123456789012345678901234567890L\n".utf8)
        pickle += [0x75, 0x2E]
        let checkpoint = try PyTorchFixtures.read(ZipBytes.checkpoint(pickle: pickle))
        XCTAssertEqual(checkpoint.metadata, ["big": "1180591620717411303424", "neg": "-5", "f": "0.5", "t": "True", "s": "x\n",
                                             "l": "-123456789012345678901234567890"])
        XCTAssertEqual(checkpoint.warnings.count, 1)
        XCTAssertTrue(checkpoint.warnings[0].hasSuffix("data.pkl offset 10: unknown global 'argparse.Namespace' read as an opaque placeholder"),
                      checkpoint.warnings[0])
    }
}
