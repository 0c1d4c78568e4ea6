import Foundation
import XCTest
@testable import BFQCore
import BFQTestSupport

/// The checkpoints of testdata/hostile, whose payloads torch.load runs (os.system, eval, exec, getattr, __import__
/// named by GLOBAL, STACK_GLOBAL or INST and called by REDUCE, INST, OBJ, NEWOBJ or NEWOBJ_EX, alone or 24 levels
/// deep in a state_dict, zip and legacy): each is refused for the global its payload names first, at the opcode that
/// names it; the controls, the deep structure without a payload, are read in full.
final class PyTorchHostileTests: XCTestCase {
    func testEveryHostileFileIsRefusedForItsGlobalWhereItIsNamed() throws {
        let hostile = try HostileFixture.all().filter { $0.forbidden != nil }
        XCTAssertEqual(hostile.count, 104)
        XCTAssertEqual(Set(hostile.map(\.container)), ["zip", "legacy"])
        for fixture in hostile {
            XCTAssertThrowsError(try PyTorchReader.read(MappedFile(path: fixture.path)), fixture.file) { error in
                guard case let .forbiddenGlobal(path, part, offset, global, _)? = error as? PyTorchError else {
                    return XCTFail("\(fixture.file): \(error)")
                }
                XCTAssertEqual(path, fixture.path)
                XCTAssertEqual(global, fixture.forbidden, fixture.file)
                XCTAssertEqual(part, fixture.part, fixture.file)
                XCTAssertEqual(offset, fixture.offset, fixture.file)
            }
        }
    }

    /// The deep structure itself is readable: the reader reaches the payload's depth and only the payload stops it.
    func testControlsAreReadDownToThePayloadsPlace() throws {
        let controls = try HostileFixture.all().filter { $0.tensors != nil }
        XCTAssertEqual(controls.map(\.container), ["zip", "legacy"])
        for control in controls {
            let checkpoint = try PyTorchReader.read(MappedFile(path: control.path))
            XCTAssertEqual(checkpoint.tensors.map(\.name), control.tensors, control.file)
            XCTAssertEqual(checkpoint.metadata, control.metadata, control.file)
            XCTAssertEqual(control.metadata?.first?.key.split(separator: ".").count, 2 + 24, "model.deep + 24 levels")
        }
    }

    func testEveryFileInTheFolderIsInTheManifest() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: HostileFixture.directory).filter { $0.hasSuffix(".ckpt") }
        XCTAssertEqual(Set(files), Set(try HostileFixture.all().map(\.file)))
    }
}
