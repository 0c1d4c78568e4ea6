import Foundation
import Synchronization
import XCTest
import BFQTestSupport

/// Every command that reads a checkpoint, on every file of testdata/hostile (pickles that torch.load runs, each
/// creating a marker file in the current directory, see tools/testdata/hostile_pickles.py), run in an empty
/// directory: it fails with status 2 and one line naming the file and the global, and leaves the directory empty.
final class HostilePickleCommandTests: XCTestCase {
    /// A command on one fixture, run in its own empty directory.
    struct Job {
        let fixture: HostileFixture
        let arguments: [String]
        let directory: String
        var name: String { "\(arguments[0]) \(fixture.file)" }
    }

    func testNoCommandRunsAHostilePickle() throws {
        let fixtures = try HostileFixture.all().filter { $0.forbidden != nil }
        XCTAssertEqual(fixtures.count, 104)
        let fixtureFiles = try FileManager.default.contentsOfDirectory(atPath: HostileFixture.directory).sorted()
        let container = BFQProcess.path("bfq/dtypes.bfq"), reference = BFQProcess.path("pytorch/sd_wrapper.ckpt")
        let jobs = try fixtures.flatMap { fixture in
            let file = fixture.path
            return try [["inspect", file], ["convert", file, "out.safetensors"], ["stats", file], ["diff", reference, file],
                        ["verify", container, "--against", file], ["quantize", file, "out.bfq"], ["plan", file, "-o", "plan.json"]]
                .map { Job(fixture: fixture, arguments: $0, directory: try BFQProcess.temporaryDirectory()) }
        }
        for (job, run) in zip(jobs, try runAll(jobs)) {
            let fixture = job.fixture
            let expected = "bfq: error: \(fixture.path): \(fixture.part!) offset \(fixture.offset!): global '\(fixture.forbidden!)' is forbidden ("
            XCTAssertEqual(run.status, 2, job.name)
            XCTAssertEqual(run.stdout, "", job.name)
            XCTAssertTrue(run.stderr.hasPrefix(expected) && run.stderr.hasSuffix(")\n"), "\(job.name): \(run.stderr)")
            XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, "\(job.name): \(run.stderr)")
            try assertNothingRan(job)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: HostileFixture.directory).sorted(), fixtureFiles)
    }

    /// The directory is empty: no marker, no stray file. The marker is the name the payload would create
    /// (it is written in the pickle), and it is absent from the fixture folder too.
    private func assertNothingRan(_ job: Job) throws {
        let marker = try XCTUnwrap(job.fixture.marker)
        XCTAssertNotNil(try Data(contentsOf: URL(fileURLWithPath: job.fixture.path)).range(of: Data(marker.utf8)), job.name)
        XCTAssertFalse(FileManager.default.fileExists(atPath: job.directory + "/" + marker), job.name)
        XCTAssertFalse(FileManager.default.fileExists(atPath: HostileFixture.directory + "/" + marker), job.name)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: job.directory), [], job.name)
    }

    /// Runs every job, several at a time (each run mostly waits on process start-up); the runs in job order.
    private func runAll(_ jobs: [Job]) throws -> [BFQRun] {
        let runs = Mutex<[Result<BFQRun, any Error>?]>(Array(repeating: nil, count: jobs.count))
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            let run = Result { try BFQProcess.run(jobs[index].arguments, directory: jobs[index].directory) }
            runs.withLock { $0[index] = run }
        }
        return try runs.withLock { try $0.map { try $0!.get() } }
    }
}
