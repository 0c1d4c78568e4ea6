import Foundation
import XCTest
import BFQTestSupport

/// No file makes bfq allocate more than a small multiple of its own size: `bfq inspect`, `bfq convert` and (for .bfq)
/// `bfq verify` run on every file of testdata/oversized/ (declared sizes up to 2^63 bytes, decompression bombs, a
/// header that would parse into a huge tree) as child processes, and each one's peak resident set (wait4's ru_maxrss)
/// stays within `bfq inspect`'s on a tiny valid file + 8 x the file's size + 16 MiB, while refusing with exit status 2
/// and one line naming the field. A valid file that decodes to 64 MiB shows the measurement catches what is allocated.
final class AllocationBoundTests: XCTestCase {
    /// 16 MiB, and 8 MiB more when the tests run under AddressSanitizer or ThreadSanitizer (their runtime's own
    /// bookkeeping per allocation shows in the peak: 65,536 small tuples cost about 2 MiB more under TSan).
    static let allowance = (16 << 20) + (sanitized ? 8 << 20 : 0)

    /// True when this process (and so the bfq built with it) carries a sanitizer runtime.
    static let sanitized = ["__asan_init", "__tsan_init"].contains { (name: String) in dlsym(nil, name) != nil }

    func testPeakMemoryStaysWithinABoundOfTheFileSize() throws {
        let baseline = try BFQProcess.measure(["inspect", BFQProcess.path("oversized/base.safetensors")])
        XCTAssertEqual(baseline.run.status, 0, baseline.run.stderr)
        let output = try BFQProcess.temporaryDirectory() + "/out.safetensors"
        for file in try OversizedFile.all() {
            let name = (file.path as NSString).lastPathComponent
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
            let margin = 8 * size + Self.allowance
            if let declared = file.declared, file.error != nil {
                XCTAssertGreaterThan(declared, UInt64(margin), "\(name): a reader allocating the declared size must exceed the bound")
            }
            for command in [["inspect", file.path], ["convert", file.path, output]] + (file.reader == "bfq" ? [["verify", file.path]] : []) {
                let (run, peak) = try BFQProcess.measure(command)
                let label = "bfq \(command[0]) \(name): peak \(peak >> 10) KiB, baseline \(baseline.peakBytes >> 10) KiB + \(margin >> 10) KiB"
                let wroteOutput = FileManager.default.fileExists(atPath: output)
                try? FileManager.default.removeItem(atPath: output)
                if name == "expanding.bfq", command[0] != "inspect" {
                    // The control: 736 bytes that honestly decode to 64 MiB of f32 must show as more than the bound.
                    XCTAssertEqual(run.status, 0, "\(label): \(run.stderr)")
                    XCTAssertGreaterThan(peak, baseline.peakBytes + margin + (32 << 20), label)
                    continue
                }
                XCTAssertLessThanOrEqual(peak, baseline.peakBytes + margin, label)
                guard let expected = file.error, !(file.opens && command[0] == "inspect") else {
                    XCTAssertEqual(run.status, 0, "\(label): \(run.stderr)")
                    continue
                }
                XCTAssertEqual(run.status, 2, label)
                XCTAssertTrue(run.stderr.hasPrefix("bfq: error: \(file.path): "), "\(label): \(run.stderr)")
                XCTAssertTrue(run.stderr.contains(expected), "\(label): \(run.stderr)")
                XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, "\(label): \(run.stderr)")
                XCTAssertEqual(run.stdout, "", label)
                XCTAssertFalse(wroteOutput, "\(label) left an output")
            }
        }
    }
}
