import Foundation
import XCTest
@testable import BFQCore
import BFQTestSupport

/// Files declaring up to 2^63 bytes in every field a reader sizes something by (testdata/oversized/, made by
/// tools/testdata/oversized_cases.py from valid bases an independent reader loads): each is refused, by a full read,
/// with its reader's one-line error naming the field; the bases read. AllocationBoundTests measures bfq's memory on them.
final class OversizedDeclarationTests: XCTestCase {
    func testEveryOversizedFileIsRefusedNamingTheField() throws {
        let files = try OversizedFile.all()
        XCTAssertEqual(Set(files.map(\.reader)), ["safetensors", "pytorch", "bfq", "gguf"])
        XCTAssertGreaterThanOrEqual(files.filter { $0.error != nil }.count, 30)
        for file in files {
            let name = (file.path as NSString).lastPathComponent
            guard let expected = file.error else {
                XCTAssertNoThrow(try FullRead.checkpoint(file.path), name)
                continue
            }
            XCTAssertThrowsError(try FullRead.checkpoint(file.path), name) { error in
                XCTAssertTrue(FullRead.isReaderError(error), "\(name): \(error)")
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(file.path + ": "), text)
                XCTAssertTrue(text.contains(expected), "\(name): \(text) does not contain \(expected)")
                XCTAssertFalse(text.contains("\n"), text)
            }
            // The files bfq reads as UNet inputs or importance pass the refusal on (the others are refused as they open).
            if !file.opens {
                XCTAssertThrowsError(try LayerImportance(path: file.path)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
                XCTAssertThrowsError(try UNetInput.load(file.path)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
            }
        }
    }

    /// A bomb stops at the declared size: decoding into a buffer of the section's 4096 bytes fails at once, whatever
    /// the frame would produce.
    func testDecompressionBombsStopAtTheDeclaredSize() throws {
        for name in ["bomb_content_size.bfq", "bomb_no_content_size.bfq", "bomb_lying_content_size.bfq"] {
            let reader = try ContainerReader(MappedFile(path: TestPaths.path("oversized/" + name)))
            XCTAssertEqual(reader.sections[0].decodedSize, 4096)
            let stored = reader.file.bytes(in: Int(reader.sections[0].offset) ..< Int(reader.sections[0].offset + reader.sections[0].storedSize))
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
            defer { output.deallocate() }
            XCTAssertThrowsError(try Zstd.decompress(stored, into: output), name) { error in
                switch error as? ZstdError {
                case .contentSizeMismatch(let declared, 4096)?:
                    XCTAssertTrue(declared == 1 << 30 || declared == UInt64.max, "\(name): \(error)")  // ZSTD_CONTENTSIZE_UNKNOWN
                case .library?: XCTAssertEqual(name, "bomb_lying_content_size.bfq")
                default: XCTFail("\(name): \(error)")
                }
            }
        }
    }

    /// A plan (or any JSON) of small values is refused before json-c builds a tree of hundreds of times its size.
    func testPlanOfTinyValuesIsRefusedBeforeParsing() throws {
        let path = try TestFiles.temporaryDirectory() + "/plan.json"
        let text = #"{"format":"bfq-plan","layers":["# + Array(repeating: "{}", count: 65_000).joined(separator: ",") + "]}"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try QuantizationPlan.load(path)) { error in
            guard case .invalidPlan(path, let reason)? = error as? QuantizationError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("JSON text of \(text.utf8.count) bytes holds so many values"), reason)
        }
    }
}
