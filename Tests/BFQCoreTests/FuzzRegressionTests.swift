import BFQFuzzing
import Foundation
import XCTest

/// Replays every input kept in testdata/fuzz/<target>/ (inputs that once crashed a fuzz target) through the
/// target's entry; each must now be refused with an error.
final class FuzzRegressionTests: XCTestCase {
    func testKeptInputsAreRefused() throws {
        var replayed = 0
        for entry in FuzzEntry.allCases {
            let folder = TestFiles.path("fuzz/\(entry.rawValue)")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for name in names.sorted() where !name.hasPrefix(".") && name != "README.md" {
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
                XCTAssertThrowsError(try bytes.withUnsafeBytes { try entry.run($0) }, "\(entry.rawValue)/\(name)")
                replayed += 1
            }
        }
        XCTAssertGreaterThan(replayed, 0, "no inputs under testdata/fuzz")
    }
}
