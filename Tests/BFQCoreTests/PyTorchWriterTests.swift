import Foundation
import XCTest
@testable import BFQCore
import BFQTestSupport

/// The writer's output opens in real torch (weights_only=True) with the same values, and reads back in bfq.
final class PyTorchWriterTests: XCTestCase {
    /// Emits `count` zero bytes per tensor in chunks, for large outputs.
    private struct Zeros: TensorByteSource {
        let tensors: [OutputTensor]
        func emit(_ index: Int, to out: ByteSink) throws {
            var remaining = tensors[index].byteCount
            let chunk = [UInt8](repeating: 0, count: 1 << 22)
            while remaining > 0 {
                let n = min(remaining, chunk.count)
                try chunk.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0 ..< n])) }
                remaining -= n
            }
        }
    }

    private func rewrite(_ fixture: String, to name: String = "out.ckpt", zip64Threshold: Int = 0xFFFF_FFFF) throws -> (Checkpoint, Checkpoint, String) {
        let source = try PyTorchReader.read(MappedFile(path: PyTorchFixtures.path(fixture)))
        let output = try TestFiles.temporaryDirectory() + "/" + name
        let tensors = source.tensors.map { OutputTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        try PyTorchWriter.write(to: OutputTarget(path: output, inputs: source.files), tensors: tensors, metadata: source.metadata, source: CopyingSource(checkpoint: source), zip64Threshold: zip64Threshold)
        return (source, try PyTorchReader.read(MappedFile(path: output)), output)
    }

    private func torchCheck(_ file: String, _ expected: String) throws {
        guard run(["python3", "-c", "import torch, safetensors"]).status == 0 else { throw XCTSkip("python3 with torch and safetensors not available") }
        let script = TestPaths.testdata.deletingLastPathComponent().appendingPathComponent("tools/check_torch_load.py").path
        let result = run(["python3", script, file, expected])
        XCTAssertEqual(result.status, 0, result.output)
    }

    private func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testRoundTripThroughBFQ() throws {
        for fixture in ["sd_wrapper.ckpt", "dtypes.ckpt", "float8.ckpt", "views.ckpt", "legacy.ckpt", "nested.ckpt"] {
            let (source, written, _) = try rewrite(fixture)
            XCTAssertEqual(written.format, .pytorchZip)
            XCTAssertEqual(written.tensors.map(\.name), source.tensors.map(\.name), fixture)
            XCTAssertEqual(written.metadata, source.metadata, fixture)
            XCTAssertEqual(written.warnings, [], fixture)
            for (a, b) in zip(source.tensors, written.tensors) {
                XCTAssertEqual(a.dtype, b.dtype)
                XCTAssertEqual(a.shape, b.shape)
                XCTAssertTrue(b.isContiguous)
                XCTAssertEqual(b.storage.lowerBound % 64, 0, "\(fixture) \(b.name) aligned")
                XCTAssertEqual(try source.withContiguousBytes(of: a) { Array($0) }, try written.withContiguousBytes(of: b) { Array($0) }, "\(fixture) \(a.name)")
            }
        }
    }

    func testTorchLoadsOutputWithSameValues() throws {
        for name in ["sd_wrapper", "dtypes", "float8", "views", "legacy", "nested", "lightning"] {
            let (_, _, output) = try rewrite(name + ".ckpt")
            try torchCheck(output, PyTorchFixtures.path(name + ".safetensors"))
        }
    }

    func testForcedZip64IsReadByTorchAndBFQ() throws {
        let (source, written, output) = try rewrite("dtypes.ckpt", zip64Threshold: 0)
        XCTAssertEqual(written.tensors.map(\.name), source.tensors.map(\.name))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: output))
        XCTAssertTrue(bytes.suffix(98).starts(with: [0x50, 0x4B, 0x06, 0x06]), "zip64 end record present")
        try torchCheck(output, PyTorchFixtures.path("dtypes.safetensors"))
    }

    func testDeterministicBytesAndRootFolderFromFileStem() throws {
        let (_, first, path1) = try rewrite("views.ckpt", to: "my.model.ckpt")
        let (_, _, path2) = try rewrite("views.ckpt", to: "my.model.ckpt")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path1)), try Data(contentsOf: URL(fileURLWithPath: path2)))
        let archive = try ZipArchive(path: path1, bytes: first.files[0].bytes)
        XCTAssertEqual(archive.entries.map(\.name).prefix(4), ["my.model/data.pkl", "my.model/.format_version",
                                                               "my.model/.storage_alignment", "my.model/byteorder"])
        XCTAssertEqual(archive.entries.suffix(2).map(\.name), ["my.model/version", "my.model/.data/serialization_id"])
        let id = try archive.dataRange(of: XCTUnwrap(archive.entry(named: "my.model/.data/serialization_id")))
        XCTAssertEqual(id.count, 40)
        XCTAssertEqual(PyTorchWriter.archiveName("/a/b/model.ckpt"), "model")
        XCTAssertEqual(PyTorchWriter.archiveName("noext"), "noext")
        XCTAssertEqual(PyTorchWriter.archiveName(".ckpt"), "archive")
    }

    func testMetadataWrittenAsStrings() throws {
        let (_, written, output) = try rewrite("sd_wrapper.ckpt")
        XCTAssertEqual(written.metadata, ["global_step": "470000", "epoch": "6"])
        let archive = try ZipArchive(path: output, bytes: written.files[0].bytes)
        let pickle = try archive.dataRange(of: XCTUnwrap(archive.entry(named: "out/data.pkl")))
        let text = Array(written.files[0].bytes(in: pickle))
        let needle = Array("X\u{6}\0\0\0470000".utf8)
        XCTAssertTrue(text.indices.contains { text[$0...].starts(with: needle) }, "global_step stored as the str '470000'")
    }

    func testDuplicateNameRefused() throws {
        let output = try TestFiles.temporaryDirectory() + "/dup.ckpt"
        let tensors = [OutputTensor(name: "a", dtype: .f32, shape: [1])]
        XCTAssertThrowsError(try PyTorchWriter.write(to: OutputTarget(path: output), tensors: tensors, metadata: ["a": "1"],
                                                     source: Zeros(tensors: tensors))) { error in
            XCTAssertEqual(error as? PyTorchError, .cannotWrite(path: output, tensor: "a", rule: "name used twice (tensor or metadata key)"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    func testSourceWritingWrongByteCountFails() throws {
        struct Short: TensorByteSource {
            func emit(_ index: Int, to out: ByteSink) throws { try out.write([1, 2]) }
        }
        let output = try TestFiles.temporaryDirectory() + "/short.ckpt"
        XCTAssertThrowsError(try PyTorchWriter.write(to: OutputTarget(path: output), tensors: [OutputTensor(name: "w", dtype: .f32, shape: [2])],
                                                     metadata: [:], source: Short())) { error in
            XCTAssertEqual(error as? PyTorchError, .cannotWrite(path: output, tensor: "short/data/0", rule: "source wrote 2 bytes, expected 8"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    /// Writes a 4.3 GB checkpoint (one tensor over 4 GiB); set BFQ_BIG_TESTS=1 to run.
    func testOver4GiBUsesZip64() throws {
        guard ProcessInfo.processInfo.environment["BFQ_BIG_TESTS"] == "1" else { throw XCTSkip("set BFQ_BIG_TESTS=1") }
        let output = try TestFiles.temporaryDirectory() + "/big.ckpt"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let tensors = [OutputTensor(name: "small", dtype: .f16, shape: [3]),
                       OutputTensor(name: "big", dtype: .f32, shape: [1_100_000_000]),
                       OutputTensor(name: "after", dtype: .f32, shape: [2])]
        try PyTorchWriter.write(to: OutputTarget(path: output), tensors: tensors, metadata: ["global_step": "1"], source: Zeros(tensors: tensors))
        let checkpoint = try PyTorchReader.read(MappedFile(path: output))
        XCTAssertEqual(checkpoint.tensors.map(\.name), ["small", "big", "after"])
        XCTAssertEqual(checkpoint.tensors[1].byteCount, 4_400_000_000)
        XCTAssertGreaterThan(checkpoint.tensors[2].storage.lowerBound, 1 << 32)
        XCTAssertEqual(checkpoint.tensors[2].storage.lowerBound % 64, 0)
        let result = run(["python3", "-c", """
            import torch, sys
            d = torch.load(sys.argv[1], weights_only=True, mmap=True)
            assert d['big'].shape == (1100000000,) and d['after'].tolist() == [0.0, 0.0] and d['global_step'] == '1'
            """, output])
        XCTAssertEqual(result.status, 0, result.output)
    }
}
