import Foundation
import XCTest
import BFQTestSupport
@testable import BFQCore

/// Which BLAS kernels bfq runs, as `bfq --version` reports them, and the environment's say in it.
final class BLASCommandTests: XCTestCase {
    private let model = BFQProcess.path("unet/tiny_unet.ldm.ckpt")
    private let batch2 = BFQProcess.path("unet/forward/sd1_batch2.safetensors")

    private func blasLine(_ run: BFQRun) throws -> String {
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, BFQVersion.string)
        return try XCTUnwrap(lines.first { $0.hasPrefix("BLAS: OpenBLAS ") }, run.stdout)
    }

    /// The kernel set this CPU's features allow (nil off x86-64).
    private func expectedKernels() throws -> String? { try LinuxCPUFlags.openBLASCore() }

    func testVersionNamesTheKernelsBFQChoseFromTheCPUsFeatures() throws {
        let run = try BFQProcess.run(["--version"], unsetting: ["OPENBLAS_CORETYPE"])
        let line = try blasLine(run)
        XCTAssertTrue(line.contains("(libopenblas.so.0)"), line)
        guard let kernels = try expectedKernels() else { throw XCTSkip("not an x86-64 CPU") }
        XCTAssertTrue(line.contains(", \(kernels) kernels"), line)
        XCTAssertTrue(line.contains("chosen by bfq from the CPU's features"), line)
        XCTAssertEqual(run.stderr, "")
    }

    func testTheEnvironmentsCoreTypeIsRespectedAndReported() throws {
        let line = try blasLine(try BFQProcess.run(["--version"], environment: ["OPENBLAS_CORETYPE": "Sandybridge"]))
        XCTAssertTrue(line.contains(", Sandybridge kernels"), line)
        XCTAssertTrue(line.contains("from OPENBLAS_CORETYPE=Sandybridge in the environment"), line)
        if let kernels = try expectedKernels() { XCTAssertTrue(line.contains("allow \(kernels)"), line) }
        // OpenBLAS's other settings are reported too.
        let settings = try blasLine(try BFQProcess.run(["--version"], environment: ["OPENBLAS_NUM_THREADS": "4",
                                                                                   "OPENBLAS_VERBOSE": "1"],
                                                       unsetting: ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]))
        XCTAssertTrue(settings.contains("; the environment also sets OPENBLAS_NUM_THREADS=4, OPENBLAS_VERBOSE=1 (bfq runs"
            + " OpenBLAS on one thread whatever its thread settings say)"), settings)
        // A name this OpenBLAS does not know: it picks by itself, and bfq says so.
        let unknown = try blasLine(try BFQProcess.run(["--version"], environment: ["OPENBLAS_CORETYPE": "NoSuchCore"]))
        XCTAssertTrue(unknown.contains("from OPENBLAS_CORETYPE=NoSuchCore in the environment, which this OpenBLAS does not know"),
                      unknown)
    }

    func testKernelsTheCPUCannotRunAreRefusedNotCrashedOn() throws {
        guard let kernels = try expectedKernels() else { throw XCTSkip("not an x86-64 CPU") }
        guard kernels != "SkylakeX" else { throw XCTSkip("this CPU runs every x86-64 kernel set OpenBLAS 0.3.21 has") }
        let directory = try BFQProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + "/out.safetensors"
        let environment = ["OPENBLAS_CORETYPE": "SkylakeX"]
        let run = try BFQProcess.run(["unet", model, "--input", batch2, "--output", output], environment: environment)
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.hasPrefix("bfq: error: OPENBLAS_CORETYPE=SkylakeX in the environment asks for kernels this"
            + " CPU cannot run (it has "), run.stderr)
        XCTAssertTrue(run.stderr.hasSuffix("): unset it, or name a core type up to \(kernels)\n"), run.stderr)
        XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        let version = try BFQProcess.run(["--version"], environment: environment)
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.contains("\nBLAS: not loaded: OPENBLAS_CORETYPE=SkylakeX"), version.stdout)
        let inspect = try BFQProcess.run(["inspect", model], environment: environment)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
    }

    func testNarrowKernelsWarnOnceAndStillGiveDiffusersOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + "/out.safetensors"
        let run = try BFQProcess.run(["unet", model, "--input", batch2, "--output", output],
                                     environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "bfq: warning: matrix products run on OpenBLAS's Prescott kernels (OPENBLAS_CORETYPE=Prescott"
            + " in the environment): expect them to be several times slower than on AVX2 kernels\n")
        let read = { (file: String) throws -> [Float] in
            let checkpoint = try CheckpointFile.open(file)
            return try checkpoint.floats(of: try XCTUnwrap(checkpoint.tensors.first { $0.name == "noise_pred" }))
        }
        let (actual, expected) = (try read(output), try read(batch2))
        XCTAssertEqual(actual.count, expected.count)
        XCTAssertLessThan(zip(actual, expected).map { abs($0 - $1) }.max()!, 1e-4 * 1.1)
        // Commands that multiply no matrices say nothing about the kernels.
        let inspect = try BFQProcess.run(["inspect", model], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertEqual(inspect.stderr, "")
    }
}
