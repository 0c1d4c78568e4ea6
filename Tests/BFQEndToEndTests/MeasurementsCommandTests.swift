import Foundation
import XCTest
@testable import BFQCore

/// `--save-measurements`, `--measurements` and `--curve` as a user runs them.
final class MeasurementsCommandTests: XCTestCase {
    private let model = BFQProcess.path("unet/tiny_unet.ldm.safetensors")

    func testQuantizingFromMeasurementsWritesTheBytesMeasuringWrites() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let measurements = directory + "/m.json", direct = directory + "/direct.bfq", reused = directory + "/reused.bfq"
        var run = try BFQProcess.run(["quantize", model, direct, "--bits", "2.2", "--save-measurements", measurements])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try BFQProcess.run(["quantize", model, reused, "--measurements", measurements, "--bits", "2.2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: direct)), try Data(contentsOf: URL(fileURLWithPath: reused)))

        // The curve: a header, then target, average and SQNR rows; the SVG draws it.
        let svg = directory + "/curve.svg"
        run = try BFQProcess.run(["plan", model, "--measurements", measurements, "--curve", "--svg", svg])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").drop { !$0.hasPrefix("curve (predicted weight SQNR)") }
        let rows = lines.dropFirst(2).map { $0.split(separator: " ").compactMap { Double($0) } }
        // From the smallest plan's first target on (conv_in and conv_out at 8 bits put the tiny UNet's above 1.5).
        XCTAssertEqual(rows.map { $0[0] }, Array(CurveChart.targets.suffix(rows.count)))
        XCTAssertGreaterThan(rows.count, 20)
        for row in rows { XCTAssertLessThanOrEqual(row[1], row[0]) }
        XCTAssertTrue(try String(contentsOfFile: svg, encoding: .utf8).contains("<polyline points="))
    }

    func testOptionsThatDisagreeWithTheFileAreUsageErrors() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let measurements = directory + "/m.json"
        XCTAssertEqual(try BFQProcess.run(["plan", model, "--no-palettes", "--save-measurements", measurements]).status, 0)
        for (arguments, message) in [
            (["--sensitivity", "output"], "--sensitivity output disagrees with \(measurements), measured with --sensitivity weight"),
            (["--calibration-size", "8x8"], "--calibration-size disagrees with \(measurements), measured in weight space (no calibration)"),
            (["--importance", measurements], "--importance and --measurements exclude each other"),
            (["--plan", "uniform:2"], "--plan and --measurements exclude each other"),
        ] {
            let run = try BFQProcess.run(["plan", model, "--measurements", measurements, "--no-palettes"] + arguments)
            XCTAssertEqual(run.status, 64, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
        // A file from another candidate set, naming or model: status 2, one line naming what differs.
        for (arguments, message) in [
            ([model], "another candidate set: asked for 1-bit palette, 2-bit palette, 3-bit palette, not measured"),
            ([BFQProcess.path("unet/tiny_unet.diffusers.safetensors"), "--no-palettes"], "measured on ldm names"),
            ([BFQProcess.path("unet/tiny_unet.ldm.ckpt"), "--no-palettes"], "measured on another model"),
        ] {
            let run = try BFQProcess.run(["plan"] + arguments + ["--measurements", measurements])
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("bfq: error: \(measurements): these measurements do not fit: \(message)"), run.stderr)
        }
        // A damaged file: refused before any work.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: measurements)))
        let digit = try XCTUnwrap(bytes.lastIndex { (0x31 ... 0x38).contains($0) })
        bytes[digit] += 1
        try Data(bytes).write(to: URL(fileURLWithPath: measurements))
        let run = try BFQProcess.run(["plan", model, "--measurements", measurements, "--no-palettes"])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: \(measurements): not a usable measurements file: checksum mismatch: "
            + "the file is damaged or was edited\n")
    }
}
