import Foundation
import XCTest

/// Killing `bfq convert` or `bfq quantize` at random moments (SIGKILL, SIGTERM, SIGINT) leaves under the output name
/// either nothing, the previous file intact, or the complete new file, and nothing else in the folder.
/// The moments are drawn over the measured length of a complete run, so they cover every phase on any machine.
final class InterruptionTests: XCTestCase {
    /// A safetensors file of 64 Mi f16 zeros, sparse on disk, so it costs nothing to make; f32 output is 256 MiB.
    private func largeSparseInput(in directory: String) throws -> String {
        let path = directory + "/zeros.safetensors"
        try BFQProcess.sparseSafetensors(path, tensors: [("zeros", 1 << 26)])
        return path
    }

    /// Runs `arguments` (which write `output`) once to completion for the finished bytes and its duration, then
    /// kills it `rounds` times while it runs, each after a random part of the shortest complete run seen, with and
    /// without a previous file at `output`. A run that ends before its signal counts as complete and shortens the
    /// span the moments are drawn from (a first run pays for cold caches).
    private func killAtRandomMoments(_ arguments: [String], output: String, rounds: Int,
                                     signals: [Int32] = [SIGKILL, SIGTERM, SIGINT], environment: [String: String] = [:],
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = (output as NSString).deletingLastPathComponent
        let outputName = (output as NSString).lastPathComponent
        let others = Set(try FileManager.default.contentsOfDirectory(atPath: directory)).subtracting([outputName])
        let began = Date()
        let complete = try BFQProcess.start(arguments, environment: environment)
        complete.waitUntilExit()
        var duration = Date().timeIntervalSince(began)
        XCTAssertEqual(complete.terminationStatus, 0, file: file, line: line)
        let finished = try Data(contentsOf: URL(fileURLWithPath: output))
        let previous = Data("the previous file".utf8)
        var generator = SystemRandomNumberGenerator()
        var outcomes: [String: Int] = [:]
        var interrupted = 0, attempt = 0
        while interrupted < rounds, attempt < 4 * rounds {
            let hadPrevious = attempt % 2 == 0
            try? FileManager.default.removeItem(atPath: output)
            if hadPrevious { try previous.write(to: URL(fileURLWithPath: output)) }
            let signal = signals[interrupted % signals.count]
            let delay = Double.random(in: 0 ..< duration, using: &generator)
            let (running, elapsed) = try BFQProcess.interrupt(arguments, after: delay, with: signal, environment: environment)
            if running { interrupted += 1 } else { duration = min(duration, elapsed) }
            attempt += 1
            let context = "signal \(signal) after \(String(format: "%.3f", delay)) s (\(running ? "running" : "finished"))"
            let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory)).subtracting(others)
            XCTAssertTrue(left.isSubset(of: [outputName]), "\(context): left \(left.sorted())", file: file, line: line)
            let now = try? Data(contentsOf: URL(fileURLWithPath: output))
            let outcome = now == nil ? "none" : now == previous ? "previous" : now == finished ? "complete" : "partial"
            XCTAssertNotEqual(outcome, "partial", context, file: file, line: line)
            if outcome == "none" { XCTAssertFalse(hadPrevious, "\(context): the previous file was removed", file: file, line: line) }
            outcomes[outcome, default: 0] += 1
        }
        XCTAssertEqual(interrupted, rounds, "runs interrupted while running: \(outcomes)", file: file, line: line)
    }

    func testConvertKilledAtRandomMoments() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = try largeSparseInput(in: directory)
        try killAtRandomMoments(["convert", input, directory + "/out.safetensors", "--dtype", "f32"],
                                output: directory + "/out.safetensors", rounds: 9)
    }

    func testQuantizeKilledAtRandomMoments() throws {
        let directory = try BFQProcess.temporaryDirectory()
        try killAtRandomMoments(["quantize", BFQProcess.path("unet/tiny_unet.ldm.safetensors"), directory + "/out.bfq",
                                 "--bits", "2", "--cache-timesteps", "ddim:4"],
                                output: directory + "/out.bfq", rounds: 9)
    }

    func testConvertWithNamedTemporaryFilesInterruptedAtRandomMoments() throws {
        // The fallback for file systems without unnamed files: a hidden temporary file that SIGTERM and SIGINT remove.
        let directory = try BFQProcess.temporaryDirectory()
        let input = try largeSparseInput(in: directory)
        try killAtRandomMoments(["convert", input, directory + "/out.safetensors", "--dtype", "f32"],
                                output: directory + "/out.safetensors", rounds: 8, signals: [SIGTERM, SIGINT],
                                environment: ["BFQ_TEMPORARY_FILES": "named"])
    }
}
