import Foundation

/// testdata/oversized/ (made by tools/testdata/oversized_cases.py): files whose declared counts, lengths and sizes
/// exceed the bytes they hold, decompression bombs, texts that would parse into huge trees, and the valid bases
/// they were made from.
public struct OversizedFile: Sendable {
    public let path: String
    /// "safetensors", "pytorch" or "bfq".
    public let reader: String
    /// A fragment of the one-line error the reader must give; nil for a valid file.
    public let error: String?
    /// Bytes a reader trusting the file would allocate, where one field says so.
    public let declared: UInt64?
    /// The structure holds (`bfq inspect` shows it); the file is refused when its tensors are read.
    public let opens: Bool
    public let what: String

    public static func all() throws -> [OversizedFile] {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.path("oversized/manifest.json")))
        guard let rows = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return rows.map { row in
            OversizedFile(path: TestPaths.path("oversized/" + (row["file"] as! String)), reader: row["reader"] as! String,
                          error: row["error"] as? String, declared: (row["declared"] as? NSNumber)?.uint64Value,
                          opens: row["opens"] as? Bool ?? false, what: row["what"] as! String)
        }
    }
}
