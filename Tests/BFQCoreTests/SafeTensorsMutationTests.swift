import XCTest
@testable import BFQCore

/// Truncated and corrupted real files never crash the reader: each read succeeds or throws a SafeTensorsError,
/// and a file that reads has every tensor inside the file.
final class SafeTensorsMutationTests: XCTestCase {
    func testTruncationsAndByteFlipsOnlyThrowSafeTensorsErrors() throws {
        // Flips land mostly in the header, where they matter: it is most of these small files.
        let outcomes = try Mutations.outcomes(of: ["safetensors/dtypes.safetensors", "pytorch/views.safetensors"],
                                              truncationStep: 7, flips: 600, refusedWith: SafeTensorsError.self) { path, bytes in
            let checkpoint = try SafeTensorsReader.read(MappedFile(path: path))
            for tensor in checkpoint.tensors {
                XCTAssertLessThanOrEqual(tensor.storage.upperBound, bytes.count)
                _ = try checkpoint.withContiguousBytes(of: tensor) { $0.count }
            }
        }
        XCTAssertGreaterThan(outcomes.refused, 800)
        XCTAssertGreaterThan(outcomes.read, 5, "flips in tensor data or padding still read")
    }
}
