import Foundation
import XCTest
@testable import BFQCore

/// Every fixture written by real torch.save reads back to the values real safetensors wrote next to it.
final class PyTorchFixtureTests: XCTestCase {
    private func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try XCTUnwrap(try PyTorchFixtures.cases().first { $0.file == name + ".ckpt" }, "no case \(name)")
        let checkpoint = try PyTorchReader.read(MappedFile(path: PyTorchFixtures.path(fixture.file)))
        let expected = try SafeTensorsReader.read(MappedFile(path: PyTorchFixtures.path(try XCTUnwrap(fixture.expected))))
        XCTAssertEqual(checkpoint.format.rawValue, fixture.format, file: file, line: line)
        XCTAssertEqual(checkpoint.tensors.map(\.name), fixture.order, "names in pickle order", file: file, line: line)
        XCTAssertEqual(checkpoint.metadata, fixture.metadata, file: file, line: line)
        let got = try PyTorchFixtures.contents(checkpoint), want = try PyTorchFixtures.contents(expected)
        XCTAssertEqual(Set(got.keys), Set(want.keys), file: file, line: line)
        for (tensor, value) in want {
            guard let actual = got[tensor] else { continue }
            XCTAssertEqual(actual.0, value.0, "\(tensor) dtype", file: file, line: line)
            XCTAssertEqual(actual.1, value.1, "\(tensor) shape", file: file, line: line)
            XCTAssertEqual(actual.2, value.2, "\(tensor) bytes", file: file, line: line)
        }
        for fragment in fixture.warnings {
            XCTAssertTrue(checkpoint.warnings.contains { $0.contains(fragment) }, "warning '\(fragment)' in \(checkpoint.warnings)",
                          file: file, line: line)
        }
        if fixture.warnings.isEmpty { XCTAssertEqual(checkpoint.warnings, [], file: file, line: line) }
    }

    func testStateDictWrapperWithGlobalStep() throws { try check("sd_wrapper") }
    func testDoubleWrapperProtocol4() throws { try check("double_wrapper_p4") }
    func testLightningCheckpointWithUnknownObjects() throws { try check("lightning") }
    func testAllDTypesZeroDimAndEmpty() throws { try check("dtypes") }
    func testFloat8ThroughRebuildTensorV3() throws { try check("float8") }
    func testViewsSharingStorage() throws { try check("views") }
    func testLegacyFormat() throws { try check("legacy") }
    func testLegacyFormatProtocol4() throws { try check("legacy_p4") }
    func testNestedDictsAndLists() throws { try check("nested") }
    func testArchiveRootFolder() throws { try check("archive_root") }
    func testOtherRootFolder() throws { try check("custom_root") }

    func testEveryFixtureIsCovered() throws {
        let tested: Set = ["sd_wrapper", "double_wrapper_p4", "lightning", "dtypes", "float8", "views", "legacy", "legacy_p4",
                           "nested", "archive_root", "custom_root"]
        let all = try PyTorchFixtures.cases().filter { $0.forbidden == nil && $0.error == nil }.map { String($0.file.dropLast(5)) }
        XCTAssertEqual(Set(all), tested)
    }

    /// Quantized, sparse and meta tensors and a whole nn.Module, as torch.save writes them, are refused naming the
    /// tensor and its kind (or suggesting state_dict()).
    func testUnsupportedTensorKindsAndWholeModuleRefused() throws {
        let refused = try PyTorchFixtures.cases().filter { $0.error != nil }
        XCTAssertEqual(refused.map(\.file), ["refused_quantized.ckpt", "refused_sparse.ckpt", "refused_meta.ckpt", "refused_module_whole.ckpt"])
        for fixture in refused {
            let path = PyTorchFixtures.path(fixture.file)
            XCTAssertThrowsError(try PyTorchReader.read(MappedFile(path: path)), fixture.file) { error in
                XCTAssertEqual("\(error)", "\(path): \(fixture.error!)")
            }
        }
        let path = PyTorchFixtures.path("refused_quantized.ckpt")
        XCTAssertThrowsError(try PyTorchReader.read(MappedFile(path: path))) { error in
            XCTAssertEqual(error as? PyTorchError, .unsupportedTensor(path: path, tensor: "q", kind: "quantized tensors (torch._utils._rebuild_qtensor)"))
        }
    }

    func testViewsStayInTheMappingWithStrides() throws {
        let checkpoint = try PyTorchReader.read(MappedFile(path: PyTorchFixtures.path("views.ckpt")))
        let byName = Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0) })
        let base = try XCTUnwrap(byName["base"]), transposed = try XCTUnwrap(byName["transposed"])
        let slice = try XCTUnwrap(byName["slice"]), broadcast = try XCTUnwrap(byName["broadcast"])
        XCTAssertEqual(transposed.storage, base.storage, "one storage, read once")
        XCTAssertEqual(transposed.strides, [1, 6])
        XCTAssertFalse(transposed.isContiguous)
        XCTAssertEqual(slice.storageOffset, 8)
        XCTAssertEqual(slice.strides, [6, 1])
        XCTAssertEqual(broadcast.strides, [0, 1])
        XCTAssertEqual(try XCTUnwrap(byName["flat_tail"]).storageOffset, 17)
    }

    func testLooksLikePyTorch() throws {
        for name in ["sd_wrapper.ckpt", "legacy.ckpt", "legacy_p4.ckpt", "custom_root.ckpt"] {
            let file = try MappedFile(path: PyTorchFixtures.path(name))
            XCTAssertTrue(PyTorchReader.looksLikePyTorch(file.bytes), name)
            XCTAssertTrue(PyTorchReader.looksLikePyTorch(UnsafeRawBufferPointer(rebasing: file.bytes.prefix(64))), name + " prefix")
        }
        let safetensors = try MappedFile(path: PyTorchFixtures.path("sd_wrapper.safetensors"))
        XCTAssertFalse(PyTorchReader.looksLikePyTorch(safetensors.bytes))
        let otherZip = ZipBytes.archive([.init(name: "a/b.txt", data: [1])]).bytes
        otherZip.withUnsafeBytes { XCTAssertFalse(PyTorchReader.looksLikePyTorch($0)) }
        [UInt8]().withUnsafeBytes { XCTAssertFalse(PyTorchReader.looksLikePyTorch($0)) }
    }

    func testPythonFloatRepr() {
        let cases: [(Double, String)] = [(1e-05, "1e-05"), (0.0001, "0.0001"), (1e16, "1e+16"), (9999999999999998.0, "9999999999999998.0"),
                                         (1e15, "1000000000000000.0"), (0.1, "0.1"), (100, "100.0"), (-0.0, "-0.0"),
                                         (.infinity, "inf"), (-.infinity, "-inf"), (.nan, "nan"), (1.5e300, "1.5e+300"),
                                         (-2.5e-7, "-2.5e-07"), (123456789.125, "123456789.125")]
        for (value, text) in cases { XCTAssertEqual(PickleFlattener.pythonRepr(value), text) }
    }
}
