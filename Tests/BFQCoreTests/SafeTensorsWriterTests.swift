import Foundation
import XCTest
@testable import BFQCore

/// The writer must reproduce Python safetensors' bytes exactly.
final class SafeTensorsWriterTests: XCTestCase {
    private func rewrite(_ relative: String) throws -> (written: Data, original: Data) {
        let source = try SafeTensorsReader.read(MappedFile(path: TestFiles.path(relative)))
        let output = try TestFiles.temporaryDirectory() + "/out.safetensors"
        let tensors = source.tensors.map { OutputTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        try SafeTensorsWriter.write(to: OutputTarget(path: output, inputs: source.files), tensors: tensors, metadata: source.metadata, source: CopyingSource(checkpoint: source))
        return (try Data(contentsOf: URL(fileURLWithPath: output)), try Data(contentsOf: URL(fileURLWithPath: TestFiles.path(relative))))
    }

    func testSameBytesAsPythonSafetensors() throws {
        let (written, original) = try rewrite("safetensors/dtypes.nometa.safetensors")
        XCTAssertEqual(written, original)
    }

    func testSameBytesWithOneMetadataKey() throws {
        let (written, original) = try rewrite("safetensors/dtypes.safetensors")
        XCTAssertEqual(written, original)
    }

    func testHeaderPaddedToEightAndMetadataSorted() throws {
        let header = SafeTensorsWriter.headerBytes([OutputTensor(name: "x", dtype: .f16, shape: [3])], order: [0],
                                                   metadata: ["b": "2", "a": "1/é"])
        XCTAssertEqual(header.count % 8, 0)
        let text = String(decoding: header, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix(#"{"__metadata__":{"a":"1/é","b":"2"},"x":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}"#), text)
        XCTAssertTrue(text.hasSuffix(" ") || text.hasSuffix("}"))
    }

    func testReservedAndDuplicateNamesRefused() {
        XCTAssertThrowsError(try SafeTensorsWriter.layoutOrder([OutputTensor(name: "__metadata__", dtype: .f32, shape: [])], path: "o")) {
            XCTAssertEqual($0 as? SafeTensorsError, .reservedName(path: "o"))
        }
        let twice = [OutputTensor(name: "a", dtype: .f32, shape: []), OutputTensor(name: "a", dtype: .f16, shape: [])]
        XCTAssertThrowsError(try SafeTensorsWriter.layoutOrder(twice, path: "o")) {
            XCTAssertEqual($0 as? SafeTensorsError, .duplicateTensor(path: "o", tensor: "a"))
        }
    }

    func testFailedWriteLeavesNothing() throws {
        struct Failing: TensorByteSource {
            struct Boom: Error {}
            func emit(_ index: Int, to out: ByteSink) throws {
                try out.write([1, 2, 3, 4])
                throw Boom()
            }
        }
        let directory = try TestFiles.temporaryDirectory()
        let output = directory + "/out.safetensors"
        XCTAssertThrowsError(try SafeTensorsWriter.write(to: OutputTarget(path: output), tensors: [OutputTensor(name: "a", dtype: .f32, shape: [1])],
                                                         metadata: [:], source: Failing()))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    func testRefusesToOverwriteInput() throws {
        let directory = try TestFiles.temporaryDirectory()
        let path = directory + "/in.safetensors"
        try FileManager.default.copyItem(atPath: TestFiles.path("safetensors/dtypes.safetensors"), toPath: path)
        let input = try MappedFile(path: path)
        XCTAssertThrowsError(try AtomicFileWriter(path: path, inputs: [input])) {
            XCTAssertEqual($0 as? FileError, .wouldOverwriteInput(path: path))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["in.safetensors"])
    }
}
