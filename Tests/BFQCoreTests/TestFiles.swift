import Foundation
import XCTest
@testable import BFQCore

/// Paths and temporary files for the tests.
enum TestFiles {
    /// The repository's testdata/ folder.
    static let testdata = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata")

    static func path(_ relative: String) -> String { testdata.appendingPathComponent(relative).path }

    /// One folder per test process for every temporary file, removed when the process exits.
    static let temporaryRoot: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bfq-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: temporaryRoot) }
        return root
    }()

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory() throws -> String {
        let url = temporaryRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// Writes `bytes` to a new temporary file and returns its path.
    static func write(_ bytes: [UInt8], name: String = "case.safetensors") throws -> String {
        let path = try temporaryDirectory() + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A safetensors file from a header text and data bytes (header length taken from the text as given).
    static func safetensors(header: String, data: [UInt8] = []) -> [UInt8] {
        let json = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
    }
}

/// Supplies every tensor of a checkpoint unchanged, in the checkpoint's order.
struct CopyingSource: TensorByteSource {
    let checkpoint: Checkpoint

    func emit(_ index: Int, to out: AtomicFileWriter) throws {
        try checkpoint.withContiguousBytes(of: checkpoint.tensors[index]) { try out.write($0) }
    }
}
