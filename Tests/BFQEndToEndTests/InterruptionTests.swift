import Foundation
import XCTest
@testable import BFQCore

/// An interrupted conversion leaves neither the output nor its temporary file.
final class InterruptionTests: XCTestCase {
    /// A 2 GiB safetensors file of zeros, sparse on disk, so it costs nothing to make.
    private func largeSparseInput(in directory: String) throws -> String {
        let path = directory + "/zeros.safetensors"
        let elements = 1 << 30
        var header = Array(#"{"zeros":{"dtype":"F16","shape":[\#(elements)],"data_offsets":[0,\#(elements * 2)]}}"#.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        bytes.reserveCapacity(bytes.count)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(bytes.count + elements * 2))
        try handle.close()
        return path
    }

    func testSignalDuringConvertLeavesNothing() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = try largeSparseInput(in: directory)
        for signal in [SIGTERM, SIGINT] {
            let process = Process()
            process.executableURL = BFQProcess.productsDirectory.appendingPathComponent("bfq")
            process.arguments = ["convert", input, directory + "/out.safetensors", "--dtype", "f32"]
            try process.run()
            // Wait until the temporary file exists, then interrupt.
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning, Date() < deadline,
                  !(try FileManager.default.contentsOfDirectory(atPath: directory)).contains(where: { $0.contains(".tmp-") }) {
                usleep(2000)
            }
            guard process.isRunning else { throw XCTSkip("conversion finished before it could be interrupted") }
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 128 + signal)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["zeros.safetensors"])
        }
    }
}
