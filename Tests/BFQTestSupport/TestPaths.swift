import Foundation

/// The repository's test data and a per-process folder for temporary files, shared by the test targets.
public enum TestPaths {
    /// The repository's testdata/ folder.
    public static let testdata = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata")

    /// A file under testdata/.
    public static func path(_ relative: String) -> String { testdata.appendingPathComponent(relative).path }

    /// One folder per test process for every temporary file, removed when the process exits.
    public static let temporaryRoot: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bfq-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: temporaryRoot) }
        return root
    }()

    /// A fresh empty directory under `temporaryRoot`.
    public static func temporaryDirectory() throws -> String {
        let url = temporaryRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }
}
