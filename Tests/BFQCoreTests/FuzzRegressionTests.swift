import BFQFuzzing
import Foundation
import XCTest

/// Replays every input kept in testdata/fuzz/<target>/ (inputs that once crashed a fuzz target or broke its limits,
/// see Fuzz/README.md) through the target's entry; each must now be refused with an error.
final class FuzzRegressionTests: XCTestCase {
    func testKeptInputsAreRefused() throws {
        let root = TestFiles.path("fuzz")
        let folders = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0 != "README.md" }
        let targets = Set(FuzzEntry.allCases.map(\.rawValue))
        for folder in folders.sorted() {
            guard let entry = FuzzEntry(rawValue: folder) else {
                XCTFail("testdata/fuzz/\(folder) is not a fuzz target (\(targets.sorted().joined(separator: ", ")))")
                continue
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: root + "/" + folder).sorted() {
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/" + folder + "/" + name)))
                XCTAssertThrowsError(try bytes.withUnsafeBytes { try entry.run($0) }, "\(folder)/\(name)")
            }
        }
    }
}
