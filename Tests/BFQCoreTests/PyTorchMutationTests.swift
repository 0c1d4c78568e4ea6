import Foundation
import XCTest
@testable import BFQCore

/// Truncated and corrupted fixtures never crash the reader: each read succeeds or throws a PyTorchError.
final class PyTorchMutationTests: XCTestCase {
    func testTruncationsAndByteFlipsOnlyThrowPyTorchErrors() throws {
        let directory = try TestFiles.temporaryDirectory()
        var generator = SplitMix(state: 0x5EED)
        var outcomes = (read: 0, refused: 0)
        for name in ["sd_wrapper.ckpt", "legacy.ckpt", "views.ckpt", "float8.ckpt", "lightning.ckpt", "legacy_p4.ckpt"] {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: PyTorchFixtures.path(name))))
            var variants: [[UInt8]] = stride(from: 0, to: original.count, by: 13).map { Array(original[..<$0]) }
            for _ in 0 ..< 300 {
                var bytes = original
                for _ in 0 ..< 1 + Int(generator.next() % 3) {
                    bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                variants.append(bytes)
            }
            for (index, bytes) in variants.enumerated() {
                let path = "\(directory)/\(index).ckpt"
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                do {
                    let checkpoint = try PyTorchReader.read(MappedFile(path: path))
                    for tensor in checkpoint.tensors { _ = checkpoint.withContiguousBytes(of: tensor) { $0.count } }
                    outcomes.read += 1
                } catch is PyTorchError {
                    outcomes.refused += 1
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        XCTAssertGreaterThan(outcomes.refused, 500)
        XCTAssertGreaterThan(outcomes.read, 10, "flips in tensor data still read")
    }

    private struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
