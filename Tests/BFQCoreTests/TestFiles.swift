import Foundation
import XCTest
@testable import BFQCore
import BFQTestSupport

/// Paths, temporary files and literal files for the tests.
enum TestFiles {
    static func path(_ relative: String) -> String { TestPaths.path(relative) }

    static func temporaryDirectory() throws -> String { try TestPaths.temporaryDirectory() }

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

    func emit(_ index: Int, to out: ByteSink) throws {
        try checkpoint.withContiguousBytes(of: checkpoint.tensors[index]) { try out.write($0) }
    }
}

/// Damaged copies of real files: truncations (every few bytes, or at each 1/64th) and random flips of one to three bytes
/// (seeded).
enum Mutations {
    /// Reads every damaged copy of each file with `read`; counts the reads and the refusals with an `E`.
    /// Any other error fails the test by propagating.
    static func outcomes<E: Error>(of files: [String], truncationStep: Int, flips: Int, refusedWith _: E.Type,
                                   read: (String, [UInt8]) throws -> Void) throws -> (read: Int, refused: Int) {
        var outcomes = (read: 0, refused: 0)
        for name in files {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: TestFiles.path(name))))
            try forEachCopy(variants(of: original, truncationStep: truncationStep, flips: flips), of: name) { path, bytes in
                do {
                    try read(path, bytes)
                    outcomes.read += 1
                } catch {
                    guard error is E else { throw error }
                    outcomes.refused += 1
                }
            }
        }
        return outcomes
    }

    static func variants(of original: [UInt8], truncationStep: Int, flips: Int, seed: UInt64 = 0x5EED) -> [[UInt8]] {
        var generator = SeededGenerator(seed: seed)
        var variants: [[UInt8]] = stride(from: 0, to: original.count, by: truncationStep).map { Array(original[..<$0]) }
        for _ in 0 ..< flips {
            var bytes = original
            for _ in 0 ..< 1 + Int(generator.next() % 3) {
                bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            variants.append(bytes)
        }
        return variants
    }

    /// `original` cut to k x size / `parts` bytes for k = 0 ..< parts.
    static func truncations(of original: [UInt8], parts: Int = 64) -> [[UInt8]] {
        (0 ..< parts).map { Array(original[..<(original.count * $0 / parts)]) }
    }

    /// Writes each variant of `name` to a temporary file of the same name (a damaged file keeps its extension, which
    /// the format detection falls back on) and calls `body` with its path; the file is removed afterwards.
    static func forEachCopy(_ variants: [[UInt8]], of name: String, _ body: (String, [UInt8]) throws -> Void) throws {
        let directory = try TestFiles.temporaryDirectory()
        let path = directory + "/" + (name as NSString).lastPathComponent
        for bytes in variants {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            try body(path, bytes)
        }
    }
}
