import Foundation
import XCTest
@testable import BFQCore

/// Truncated and corrupted real files never crash the reader: each read succeeds or throws a SafeTensorsError,
/// and a file that reads has every tensor inside the file.
final class SafeTensorsMutationTests: XCTestCase {
    func testTruncationsAndByteFlipsOnlyThrowSafeTensorsErrors() throws {
        let directory = try TestFiles.temporaryDirectory()
        var outcomes = (read: 0, refused: 0)
        for name in ["safetensors/dtypes.safetensors", "pytorch/views.safetensors"] {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: TestFiles.path(name))))
            // Flips land mostly in the header, where they matter: it is most of these small files.
            for (index, bytes) in Mutations.variants(of: original, truncationStep: 7, flips: 600).enumerated() {
                let path = "\(directory)/\(index).safetensors"
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                do {
                    let checkpoint = try SafeTensorsReader.read(MappedFile(path: path))
                    for tensor in checkpoint.tensors {
                        XCTAssertLessThanOrEqual(tensor.storage.upperBound, bytes.count)
                        _ = checkpoint.withContiguousBytes(of: tensor) { $0.count }
                    }
                    outcomes.read += 1
                } catch is SafeTensorsError {
                    outcomes.refused += 1
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        XCTAssertGreaterThan(outcomes.refused, 800)
        XCTAssertGreaterThan(outcomes.read, 5, "flips in tensor data or padding still read")
    }
}
