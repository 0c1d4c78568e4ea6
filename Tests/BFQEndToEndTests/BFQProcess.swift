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

    /// Runs `bfq arguments...` to completion, in `directory` when given.
    static func run(_ arguments: [String], environment: [String: String] = [:], directory workingDirectory: String? = nil) throws -> BFQRun {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("bfq")
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
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
