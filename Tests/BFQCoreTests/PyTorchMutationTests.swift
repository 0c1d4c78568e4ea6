import Foundation
import XCTest
@testable import BFQCore

/// Truncated and corrupted fixtures never crash the reader: each read succeeds or throws a PyTorchError.
final class PyTorchMutationTests: XCTestCase {
    func testTruncationsAndByteFlipsOnlyThrowPyTorchErrors() throws {
        let directory = try TestFiles.temporaryDirectory()
        var outcomes = (read: 0, refused: 0)
        for name in ["sd_wrapper.ckpt", "legacy.ckpt", "views.ckpt", "float8.ckpt", "lightning.ckpt", "legacy_p4.ckpt"] {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: PyTorchFixtures.path(name))))
            for (index, bytes) in Mutations.variants(of: original, truncationStep: 13, flips: 300).enumerated() {
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
}
