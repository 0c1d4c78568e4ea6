import Foundation
import XCTest

/// Killing `bfq convert` while it writes a folder of shards (SIGKILL, SIGTERM, SIGINT, at random moments) leaves under
/// the output name nothing, the previous folder intact, or the complete new folder, never part of one; SIGTERM and
/// SIGINT leave nothing else beside it, and SIGKILL at most the hidden folder of a commit it interrupted.
final class FolderInterruptionTests: XCTestCase {
    /// A safetensors file of `tensors` tensors of `elements` f16 zeros each, sparse on disk.
    private func sparseInput(in directory: String, tensors: Int, elements: Int) throws -> String {
        let path = directory + "/zeros.safetensors"
        try BFQProcess.sparseSafetensors(path, tensors: (0 ..< tensors).map { ("t\($0)", elements) })
        return path
    }

    /// The files of the folder `path` and their bytes; nil when there is nothing there.
    private func snapshot(_ path: String) throws -> [String: Data]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: path + "/" + name))
        }
        return files
    }

    /// Runs `arguments` (which write the folder `output`) once to completion for the finished files and its duration,
    /// then kills it `rounds` times while it runs, each after a random part of the shortest complete run seen, with
    /// and without the folder `previous` (a complete output of another conversion) copied to `output` first. A run
    /// that ends before its signal counts as complete and shortens the span the moments are drawn from.
    /// Returns how many SIGKILLs left a hidden temporary folder (allowed only for SIGKILL: its commit was cut short).
    @discardableResult
    private func killAtRandomMoments(_ arguments: [String], output: String, previous: String, rounds: Int,
                                     signals: [Int32] = [SIGKILL, SIGTERM, SIGINT], environment: [String: String] = [:],
                                     file: StaticString = #filePath, line: UInt = #line) throws -> (hidden: Int, outcomes: [String: Int], files: [String]) {
        let fileManager = FileManager.default
        let directory = (output as NSString).deletingLastPathComponent
        let outputName = (output as NSString).lastPathComponent
        let others = Set(try fileManager.contentsOfDirectory(atPath: directory)).subtracting([outputName])
        let began = Date()
        let complete = try BFQProcess.start(arguments, environment: environment)
        complete.waitUntilExit()
        var duration = Date().timeIntervalSince(began)
        XCTAssertEqual(complete.terminationStatus, 0, file: file, line: line)
        let finished = try XCTUnwrap(try snapshot(output), file: file, line: line)
        let previousFiles = try XCTUnwrap(try snapshot(previous), file: file, line: line)
        XCTAssertNotEqual(finished, previousFiles, file: file, line: line)
        var generator = SystemRandomNumberGenerator()
        var outcomes: [String: Int] = [:]
        var interrupted = 0, attempt = 0, hidden = 0
        while interrupted < rounds, attempt < 4 * rounds {
            let hadPrevious = attempt % 2 == 0
            try? fileManager.removeItem(atPath: output)
            if hadPrevious { try fileManager.copyItem(atPath: previous, toPath: output) }
            let signal = signals[interrupted % signals.count]
            let delay = Double.random(in: 0 ..< duration, using: &generator)
            let (running, elapsed) = try BFQProcess.interrupt(arguments, after: delay, with: signal, environment: environment)
            if running { interrupted += 1 } else { duration = min(duration, elapsed) }
            attempt += 1
            let context = "signal \(signal) after \(String(format: "%.3f", delay)) s (\(running ? "running" : "finished")), "
                + (hadPrevious ? "with" : "without") + " a previous folder"
            let left = Set(try fileManager.contentsOfDirectory(atPath: directory)).subtracting(others).subtracting([outputName])
            if signal == SIGKILL, running {
                // Only the commit's own hidden folder (new files before the swap, the previous ones after it).
                let stray = left.filter { !$0.hasPrefix("." + outputName + ".tmp-") }
                XCTAssertEqual(stray.sorted(), [], "\(context): left \(left.sorted())", file: file, line: line)
                if !left.isEmpty { hidden += 1 }
                for name in left { try fileManager.removeItem(atPath: directory + "/" + name) }
            } else {
                XCTAssertEqual(left.sorted(), [], "\(context): left beside the output", file: file, line: line)
            }
            let now = try snapshot(output)
            let outcome = now == nil ? "none" : now == previousFiles ? "previous" : now == finished ? "complete" : "partial"
            XCTAssertNotEqual(outcome, "partial", "\(context): \(now.map { $0.keys.sorted() } ?? [])", file: file, line: line)
            if outcome == "none" { XCTAssertFalse(hadPrevious, "\(context): the previous folder was removed", file: file, line: line) }
            outcomes[outcome, default: 0] += 1
        }
        XCTAssertEqual(interrupted, rounds, "runs interrupted while running: \(outcomes)", file: file, line: line)
        print("\(name): outcomes \(outcomes.sorted { $0.key < $1.key }), hidden folders left by SIGKILL: \(hidden)")
        return (hidden, outcomes, finished.keys.sorted())
    }

    /// A previous output folder for `killAtRandomMoments`, in a folder of its own: the tiny SDXL UNet in 3 shards.
    private func previousFolder() throws -> String {
        let previous = try BFQProcess.temporaryDirectory() + "/previous"
        let run = try BFQProcess.run(["convert", BFQProcess.path("sdxl/tiny_base.diffusers.safetensors"), previous, "--shard-size", "25KB"])
        XCTAssertEqual(run.status, 0, run.stderr)
        return previous
    }

    /// 8 tensors of 8 Mi f16 zeros (128 MiB, sparse), written as f32 (256 MiB) in 8 shards of 32 MiB and their index.
    func testShardedConvertKilledAtRandomMoments() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = try sparseInput(in: directory, tensors: 8, elements: 8 << 20)
        let output = directory + "/out"
        let result = try killAtRandomMoments(["convert", input, output, "--dtype", "f32", "--shard-size", "40MB"],
                                             output: output, previous: try previousFolder(), rounds: 18)
        XCTAssertEqual(result.files, (1 ... 8).map { "model-0000\($0)-of-00008.safetensors" } + ["model.safetensors.index.json"])
    }

    /// The same with hidden temporary files (file systems without unnamed files), which SIGTERM and SIGINT remove.
    func testShardedConvertWithNamedTemporaryFilesInterruptedAtRandomMoments() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = try sparseInput(in: directory, tensors: 8, elements: 8 << 20)
        let output = directory + "/out"
        try killAtRandomMoments(["convert", input, output, "--dtype", "f32", "--shard-size", "40MB"],
                                output: output, previous: try previousFolder(), rounds: 6, signals: [SIGTERM, SIGINT],
                                environment: ["BFQ_TEMPORARY_FILES": "named"])
    }

    /// With hidden temporary files, every shard waits under its hidden name until the folder is complete; a SIGTERM
    /// once more than 16 of them exist (InterruptCleanup's slots) must still remove them all.
    func testSIGTERMRemovesEveryHiddenShardOfALargeFolder() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = try sparseInput(in: directory, tensors: 24, elements: 4 << 20)
        let output = directory + "/out"
        let process = try BFQProcess.start(["convert", input, output, "--dtype", "f32", "--shard-size", "20MB"],
                                environment: ["BFQ_TEMPORARY_FILES": "named"])
        // Waits until 20 shards wait under hidden names, then interrupts.
        var hiddenShards = 0
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning, hiddenShards < 20, Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            hiddenShards = names.filter { $0.hasPrefix(".model-") && $0.contains(".tmp-") }.count
            if hiddenShards < 20 { usleep(500) }
        }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        guard hiddenShards >= 20 else { throw XCTSkip("the run ended before 20 shards were written (\(hiddenShards) seen)") }
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["zeros.safetensors"])
    }
}
