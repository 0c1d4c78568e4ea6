import XCTest
@testable import BFQCore
import BFQTestSupport

/// TimestepSchedule against the timesteps real diffusers schedulers return (tools/testdata/time_features.py).
final class TimestepScheduleTests: XCTestCase {
    /// The fixture's scheduler lists by spec ("50", "ddim:7", ...), as diffusers returned them.
    private static func references() throws -> [(spec: String, timesteps: [Int])] {
        let checkpoint = try CheckpointFile.open(TestFiles.path("unet/time_features.safetensors"))
        return try checkpoint.tensors.filter { $0.name.hasPrefix("schedule.") }.map { entry in
            XCTAssertEqual(entry.dtype, .i32, entry.name)
            let values = try checkpoint.withContiguousBytes(of: entry) { $0.bindMemory(to: Int32.self).map(Int.init) }
            return (String(entry.name.dropFirst("schedule.".count)), values)
        }
    }

    func testSchedulesMatchDiffusers() throws {
        let references = try Self.references()
        XCTAssertEqual(references.count, 1 + 4 * 16, "fixture lists")
        var refused = 0
        for (spec, diffusers) in references {
            let expected = Array(Set(diffusers)).sorted()
            if diffusers.allSatisfy({ (0 ... 999).contains($0) }) {
                XCTAssertEqual(try TimestepSchedule.parse(spec), expected, spec)
            } else {
                // diffusers itself steps outside the trained range here (leading:1000 reaches 1000, trailing:61 -1).
                let bad = diffusers.first { !(0 ... 999).contains($0) }!
                XCTAssertThrowsError(try TimestepSchedule.parse(spec), spec) { error in
                    XCTAssertEqual(error as? TimeFeatureCacheError, .timestepOutOfRange(bad, source: spec))
                }
                refused += 1
            }
            if let colon = spec.firstIndex(of: ":"), spec.hasPrefix("ddim") == false {
                let spacing = try XCTUnwrap(TimestepSchedule.Spacing(rawValue: String(spec[..<colon])))
                let steps = try XCTUnwrap(Int(spec[spec.index(after: colon)...]))
                XCTAssertEqual(try TimestepSchedule.timesteps(spacing, steps: steps), diffusers, "\(spec) in order")
            }
        }
        XCTAssertGreaterThan(refused, 1, "the fixture holds diffusers' out-of-range schedules")
    }

    /// PNDM's PLMS repeats 961; the unique set is the DDIM one, and "50" is SD-v1.5's 1, 21, ..., 981.
    func testDefaultIsSD15Leading() throws {
        let fifty = try TimestepSchedule.parse("50")
        XCTAssertEqual(fifty, Array(stride(from: 1, through: 981, by: 20)))
        XCTAssertEqual(try TimestepSchedule.parse("ddim:50"), fifty)
        XCTAssertEqual(try TimestepSchedule.parse(" DDIM : 50 "), fifty)
    }

    func testExplicitLists() throws {
        XCTAssertEqual(try TimestepSchedule.parse("981,1,21"), [1, 21, 981])
        XCTAssertEqual(try TimestepSchedule.parse(" 0 , 999 "), [0, 999])
        XCTAssertEqual(try TimestepSchedule.parse("500,"), [500])
    }

    func testRefusals() {
        let cases: [(String, TimeFeatureCacheError)] = [
            ("", .scheduleSyntax("")), ("fifty", .scheduleSyntax("fifty")), ("ddim:", .scheduleSyntax("ddim:")),
            ("a:b:3", .scheduleSyntax("a:b:3")), ("euler:20", .unknownSpacing("euler")),
            ("0", .stepCountOutOfRange(0)), ("1001", .stepCountOutOfRange(1001)), ("linspace:-3", .stepCountOutOfRange(-3)),
            ("1,,2", .notATimestep("")), ("1,x", .notATimestep("x")), (",", .notATimestep("")),
            ("1,1000", .timestepOutOfRange(1000, source: "1,1000")), ("-1,5", .timestepOutOfRange(-1, source: "-1,5")),
            ("5,3,5", .duplicateTimestep(5)),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TimestepSchedule.parse(text), text) { error in
                XCTAssertEqual(error as? TimeFeatureCacheError, expected, text)
            }
        }
        XCTAssertTrue(TimeFeatureCacheError.timestepOutOfRange(1000, source: "leading:1000").description
            .contains("outside 0...999"))
    }

    func testValidate() throws {
        XCTAssertNoThrow(try TimestepSchedule.validate([0, 1, 999]))
        let cases: [([Int], TimeFeatureCacheError)] = [
            ([], .timestepsNotIncreasing(index: 0)), ([3, 3], .timestepsNotIncreasing(index: 1)),
            ([1, 5, 2], .timestepsNotIncreasing(index: 2)), ([1, 1000], .timestepOutOfRange(1000, source: "1,1000")),
        ]
        for (timesteps, expected) in cases {
            XCTAssertThrowsError(try TimestepSchedule.validate(timesteps)) { error in
                XCTAssertEqual(error as? TimeFeatureCacheError, expected, "\(timesteps)")
            }
        }
    }
}
