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

    /// Starts `bfq arguments` with its output discarded, for tests that signal it while it runs.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("bfq")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Starts `bfq arguments`, sends it `signal` after `delay` seconds and waits for it; whether it was still running
    /// when signalled, and how long it ran.
    static func interrupt(_ arguments: [String], after delay: Double, with signal: Int32,
                          environment: [String: String] = [:]) throws -> (running: Bool, elapsed: TimeInterval) {
        let began = Date()
        let process = try start(arguments, environment: environment)
        usleep(UInt32(delay * 1e6))
        let running = process.isRunning
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return (running, Date().timeIntervalSince(began))
    }

    /// Writes a safetensors file of 1-D f16 tensors (name, element count) of zeros, sparse on disk, so large inputs
    /// cost nothing to make.
    static func sparseSafetensors(_ path: String, tensors: [(String, Int)]) throws {
        var offset = 0
        var members: [String] = []
        for (name, count) in tensors {
            members.append(#""\#(name)":{"dtype":"F16","shape":[\#(count)],"data_offsets":[\#(offset),\#(offset + 2 * count)]}"#)
            offset += 2 * count
        }
        var header = Array(("{" + members.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header).write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(8 + header.count + offset))
        try handle.close()
    }
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
