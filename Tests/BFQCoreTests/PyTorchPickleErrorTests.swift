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
        let cases: [([UInt8], String, UInt64, Int)] = [
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
        XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: 2, opcode: "BINBYTES8", needed: UInt64.max, remaining: 1))
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
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 4, opcode: "APPEND", rule: "target is None, not a list"))
        (error, path) = try failure([0x80, 0x02, 0x4B, 0x01, 0x29, 0x52, 0x2E])
        XCTAssertEqual(error, .malformedPickle(path: path, part: "data.pkl", offset: 5, opcode: "REDUCE", rule: "an int is not callable"))
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
        // 200,000 nested tuples: built without recursion, refused when flattened.
        var (error, path) = try failure([0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 200_000) + [0x2E])
        XCTAssertEqual(error, .badStructure(path: path, rule: "nesting deeper than 100 levels at '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0'"))
        // Nested dicts {"a": {"a": ...}} 150 deep.
        var pickle: [UInt8] = [0x80, 0x02]
        for _ in 0 ..< 150 { pickle += [0x7D] + str("a") }
        pickle += [0x4E] + [UInt8](repeating: 0x73, count: 150) + [0x2E]
        (error, path) = try failure(pickle)
        guard case let .badStructure(_, rule) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(rule.hasPrefix("nesting deeper than 100 levels at 'a.a.a."), rule)
    }

    func testObjectFloodsAreHeldToAMemoryBudgetOfTheirSize() throws {
        // One-byte opcodes that each build something: a million nested tuples, four million memo entries. Their
        // estimated memory passes 16 x the file's size + 64 MiB before the caps on counts are reached.
        let floods: [(UInt8, Int, Int)] = [(0x85, 1_000_000, PickleMachine.objectCost + PickleMachine.itemCost),
                                           (0x94, 4_000_000, PickleMachine.memoCost)]
        for (opcode, count, cost) in floods {
            let pickle: [UInt8] = [0x80, 0x04, 0x4E] + [UInt8](repeating: opcode, count: count) + [0x2E]
            let (error, path) = try failure(pickle)
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            let budget = 16 * size + (64 << 20)
            let what = "estimated memory of the objects built (16 x the file's size + 64 MiB, in bytes)"
            // Refused at the first opcode whose object passes the budget.
            XCTAssertEqual(error, .limitExceeded(path: path, part: "data.pkl", offset: 3 + budget / cost, what: what, limit: budget))
        }
        // The same pickle cut to a tenth is within its (smaller) budget: the tuples reach the flattener.
        let (error, _) = try failure([0x80, 0x04, 0x4E] + [UInt8](repeating: 0x85, count: 100_000) + [0x2E])
        guard case .badStructure = error else { return XCTFail("\(error)") }
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

    func testCheckPicklesRunsPicklesBackToBackAndRefusesGlobals() throws {
        let five: [UInt8] = [0x80, 0x02, 0x4B, 0x05, 0x2E, 0x80, 0x02, 0x4E, 0x2E]  // 5, then None
        XCTAssertNoThrow(try five.withUnsafeBytes { try PyTorchReader.checkPickles($0, path: "two") })
        let system: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x2E]
        XCTAssertThrowsError(try system.withUnsafeBytes { try PyTorchReader.checkPickles($0, path: "p") }) { error in
            XCTAssertEqual(error as? PyTorchError, .forbiddenGlobal(path: "p", part: "file", offset: 2, global: "os.system",
                                                                  reason: "can run commands or control processes"))
        }
    }

    func testTopLevelNotADict() throws {
        let (error, path) = try failure([0x80, 0x02, 0x4B, 0x07, 0x2E])
        XCTAssertEqual(error, .badStructure(path: path, rule: "top-level object is an int, not a dict of tensors"))
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
            (Array("cbuiltins\nsomething\n".utf8), "builtins.something", "is not a builtin data type"),
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

    func testForbiddenGlobalsReachedByAttributePathsAndPython2Names() throws {
        func short(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
        let system = "resolves to 'os.system', which can run commands or control processes"
        let pickleLoads = "resolves to 'pickle.loads', which can load another pickle"
        // (module, name, written as protocol 2 GLOBAL rather than STACK_GLOBAL, reason)
        let cases: [(String, String, Bool, String)] = [
            ("torch", "os.system", false, system), ("posixpath", "os.system", false, system),
            ("torch.nn", "modules.module.torch.os.system", false, system),
            ("torch.serialization", "pickle.loads", false, pickleLoads), ("cPickle", "loads", true, pickleLoads),
            ("numpy", "load", false, "can load another pickle"), ("torch", "hub.load", false, "can open network connections"),
            ("torch", "jit.load", false, "can execute code"),
            ("torch.serialization", "torch.load", false, "resolves to 'torch.load', which can load another pickle"),
            ("torch", "sys.modules.get", false, "resolves to 'sys.modules.get', which can import or inspect arbitrary modules"),
            ("torch.utils.cpp_extension", "load_inline", false, "can execute code"),
            ("torch.testing._internal.common_utils", "shell", false, "can execute code"),
            ("torch.package.package_importer", "PackageImporter", false, "can load another pickle"),
            ("SocketServer", "TCPServer", true, "resolves to 'socketserver.TCPServer', which can open network connections"),
            ("__builtin__", "intern", true, "is not a builtin data type"),
            ("numpy", "save", false, "can read or write files"), ("torch", "save", false, "can read or write files"),
            ("gzip", "open", false, "can read or write files"), ("pathlib", "PosixPath.write_text", false, "can read or write files"),
            ("pathlib._local", "Path.touch", false, "can read or write files"),
        ]
        for (module, name, text, reason) in cases {
            let body = text ? Array("c\(module)\n\(name)\n".utf8) : short(module) + short(name) + [0x93]
            let (error, path) = try failure([0x80, text ? 0x02 : 0x04, 0x4E] + body + [0x2E])
            XCTAssertEqual(error, .forbiddenGlobal(path: path, part: "data.pkl", offset: text ? 3 : 2 + body.count, global: "\(module).\(name)",
                                                   reason: reason))
        }
        // Legitimate globals stay modelled or unknown (a warning), Python 2 names included.
        let allowed: [(String, String, PickleGlobal.Kind)] = [
            ("collections", "OrderedDict", .orderedDict), ("torch._utils", "_rebuild_tensor_v2", .rebuildTensorV2),
            ("_codecs", "encode", .codecsEncode), ("__builtin__", "set", .builtinSet), ("copy_reg", "_reconstructor", .unknown),
            ("torch._utils", "_rebuild_qtensor", .unsupportedTensor), ("torch._C._nn", "gelu", .unknown),
            ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", .unknown), ("pathlib", "PosixPath", .unknown),
            ("numpy.core.multiarray", "_reconstruct", .unknown), ("torch.serialization", "_get_layout", .unknown),
        ]
        for (module, name, kind) in allowed {
            XCTAssertEqual(try? PickleGlobal.classify(module: module, name: name).get(), kind, "\(module).\(name)")
        }
    }

    func testWideIntegersIgnoredOnceAndSharedBigIntsRenderedOnce() throws {
        // {"wide": <1024-byte LONG4>, "l": [wide] * 100_000, "big": 2**70, "big2": [big] * 1000, "text": <200-digit LONG>,
        //  "huge": <4 MB LONG4>}: one warning, each big int rendered once, no quadratic work on the wide ones.
        var pickle: [UInt8] = [0x80, 0x04, 0x7D, 0x28] + str("wide")
        let wideOffset = pickle.count
        pickle += [0x8B] + ZipBytes.le32(1024) + [UInt8](repeating: 0x7F, count: 1024) + [0x94]
        pickle += str("l") + [0x5D, 0x28] + [UInt8](repeating: 0, count: 200_000).enumerated().map { $0.offset % 2 == 0 ? 0x68 : 0x00 } + [0x65]
        pickle += str("big") + [0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x94]
        pickle += str("big2") + [0x5D, 0x28] + [UInt8](repeating: 0, count: 2000).enumerated().map { $0.offset % 2 == 0 ? 0x68 : 0x01 } + [0x65]
        pickle += str("text") + Array("L\(String(repeating: "9", count: 200))L\n".utf8)
        pickle += str("huge") + [0x8B] + ZipBytes.le32(4 << 20) + [UInt8](repeating: 0x01, count: 4 << 20) + [0x75, 0x2E]
        let path = try TestFiles.write(ZipBytes.checkpoint(pickle: pickle), name: "case.ckpt")
        let checkpoint = try PyTorchReader.read(MappedFile(path: path))
        XCTAssertEqual(checkpoint.warnings, ["\(path): data.pkl offset \(wideOffset): integers wider than 64 bytes are ignored"])
        XCTAssertEqual(checkpoint.metadata.count, 1001)
        XCTAssertEqual(checkpoint.metadata["big"], "1180591620717411303424")
        XCTAssertEqual(checkpoint.metadata["big2.999"], "1180591620717411303424")
        // A declared length is checked against the file before anything is read.
        let (error, errorPath) = try failure([0x80, 0x02, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x2E])
        XCTAssertEqual(error, .truncated(path: errorPath, part: "data.pkl", offset: 2, opcode: "LONG4", needed: 0x7FFF_FFFF, remaining: 2))
    }

    func testNamesAndMetadataFromSharedObjectsAreBounded() throws {
        func ints(_ count: Int) -> [UInt8] { [0x5D, 0x28] + [UInt8](repeating: 0, count: 2 * count).enumerated().map { $0.offset % 2 == 0 ? 0x4B : 1 } + [0x65] }
        // A memoized 1 MB key as the key of 98 nested dicts: refused as soon as a name passes 4096 bytes.
        var pickle: [UInt8] = [0x80, 0x04, 0x58] + ZipBytes.le32(1 << 20) + [UInt8](repeating: 0x6B, count: 1 << 20) + [0x94, 0x30]
        for _ in 0 ..< 98 { pickle += [0x7D, 0x68, 0x00] }
        pickle += ints(30) + [UInt8](repeating: 0x73, count: 98) + [0x2E]
        var (error, path) = try failure(pickle)
        XCTAssertEqual(error, .badStructure(path: path, rule: "name '\(String(repeating: "k", count: 80))…' is longer than 4096 bytes"))

        // A memoized 70,000-int list under two keys: 65,536 metadata entries, then one warning.
        pickle = [0x80, 0x04] + ints(70_000) + [0x94, 0x30, 0x7D, 0x28] + str("a") + [0x68, 0x00] + str("b") + [0x68, 0x00, 0x75, 0x2E]
        path = try TestFiles.write(ZipBytes.checkpoint(pickle: pickle), name: "case.ckpt")
        var checkpoint = try PyTorchReader.read(MappedFile(path: path))
        XCTAssertEqual(checkpoint.metadata.count, 65_536)
        XCTAssertEqual(checkpoint.warnings, ["\(path): dropped 74464 metadata value(s) beyond 65536 entries or 16 MB"])

        // A memoized 1 MB string listed 20 times: 15 fit in 16 MB of metadata.
        pickle = [0x80, 0x04, 0x7D] + str("l") + [0x5D, 0x28, 0x58] + ZipBytes.le32(1 << 20) + [UInt8](repeating: 0x73, count: 1 << 20) + [0x94]
        pickle += [UInt8](repeating: 0, count: 38).enumerated().map { $0.offset % 2 == 0 ? 0x68 : 0x00 } + [0x65, 0x73, 0x2E]
        path = try TestFiles.write(ZipBytes.checkpoint(pickle: pickle), name: "case.ckpt")
        checkpoint = try PyTorchReader.read(MappedFile(path: path))
        XCTAssertEqual(checkpoint.metadata.count, 15)
        XCTAssertEqual(checkpoint.warnings, ["\(path): dropped 5 metadata value(s) beyond 65536 entries or 16 MB"])

        // A memoized 300,000-int list under four keys needs more than the visit limit.
        pickle = [0x80, 0x04] + ints(300_000) + [0x94, 0x30, 0x7D, 0x28] + ["a", "b", "c", "d"].flatMap { str($0) + [0x68, 0x00] } + [0x75, 0x2E]
        (error, path) = try failure(pickle)
        XCTAssertEqual(error, .badStructure(path: path, rule: "object graph needs over 1000000 visits (shared containers?)"))
    }

    func testHugeDeclaredLengthsReportedUnsigned() throws {
        var (error, path) = try failure([0x80, 0x04, 0x8D] + ZipBytes.le64(Int.min) + [0x2E])
        XCTAssertEqual(error, .truncated(path: path, part: "data.pkl", offset: 2, opcode: "BINUNICODE8", needed: 1 << 63, remaining: 1))
        XCTAssertTrue(error.description.hasSuffix("data.pkl offset 2: BINUNICODE8 needs 9223372036854775808 bytes but only 1 remain"))
        (error, path) = try failure([0x80, 0x04, 0x95] + ZipBytes.le64(-5) + [0x2E])
        XCTAssertEqual(error.description, "\(path): data.pkl offset 2: FRAME needs 18446744073709551611 bytes but only 1 remain")
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
