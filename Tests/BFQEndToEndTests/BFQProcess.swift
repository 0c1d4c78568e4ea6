import Foundation
import XCTest
import BFQTestSupport

/// Runs the built `bfq` executable and captures what a user would see.
struct BFQRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum BFQProcess {
    /// The folder holding the built products (the test bundle's folder).
    static let productsDirectory: URL = {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }()

    static func path(_ relative: String) -> String { TestPaths.path(relative) }

    /// Runs `bfq arguments...` (or another built product's) to completion, in `directory` when given, with this
    /// process's environment plus `environment` and less the variables `unsetting` names.
    static func run(_ arguments: [String], environment: [String: String] = [:], unsetting: [String] = [],
                    directory workingDirectory: String? = nil, executable: String = "bfq") throws -> BFQRun {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent(executable)
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            .filter { !unsetting.contains($0.key) }
        // Output goes to files, so a chatty process can never block on a full pipe.
        let directory = try temporaryDirectory()
        let outURL = URL(fileURLWithPath: directory + "/stdout"), errURL = URL(fileURLWithPath: directory + "/stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return BFQRun(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    static func temporaryDirectory() throws -> String { try TestPaths.temporaryDirectory() }
}

extension BFQProcess {
    /// Runs `bfq arguments...` to completion under `bfq-peak-memory`, which reports bfq's own peak resident set size
    /// (wait4's ru_maxrss; a child of this larger process would report this process's instead). Returns the run and
    /// that peak in bytes.
    static func measure(_ arguments: [String]) throws -> (run: BFQRun, peakBytes: Int) {
        let file = try temporaryDirectory() + "/peak"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try run([file, productsDirectory.appendingPathComponent("bfq").path] + arguments, executable: "bfq-peak-memory")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        return (run, try XCTUnwrap(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), text))
    }
}
