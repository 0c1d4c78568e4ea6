import XCTest
@testable import BFQCore

/// Truncated and corrupted fixtures never crash the reader: each read succeeds or throws a PyTorchError.
final class PyTorchMutationTests: XCTestCase {
    func testTruncationsAndByteFlipsOnlyThrowPyTorchErrors() throws {
        let files = ["sd_wrapper.ckpt", "legacy.ckpt", "views.ckpt", "float8.ckpt", "lightning.ckpt", "legacy_p4.ckpt"]
        let outcomes = try Mutations.outcomes(of: files.map { "pytorch/" + $0 }, truncationStep: 13, flips: 300,
                                              refusedWith: PyTorchError.self) { path, _ in
            let checkpoint = try PyTorchReader.read(MappedFile(path: path))
            for tensor in checkpoint.tensors { _ = try checkpoint.withContiguousBytes(of: tensor) { $0.count } }
        }
        XCTAssertGreaterThan(outcomes.refused, 500)
        XCTAssertGreaterThan(outcomes.read, 10, "flips in tensor data still read")
    }
}
