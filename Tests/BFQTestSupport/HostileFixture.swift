import Foundation

/// A row of testdata/hostile/manifest.json (written by tools/testdata/hostile_pickles.py): a checkpoint whose pickle
/// runs code under torch.load, which the script proves, or a control holding the deep structure without a payload.
public struct HostileFixture: Decodable, Sendable {
    public let file: String
    /// "zip" or "legacy".
    public let container: String
    /// The global the payload names first, as the pickle writes it; bfq must refuse the file for it.
    public let forbidden: String?
    /// True when the payload sits 24 levels down in a state_dict of real tensors (the controls' structure).
    public let deep: Bool?
    /// Where bfq reports the global: "data.pkl" (offsets in that record) or "file" (absolute offsets).
    public let part: String?
    /// The offset of the GLOBAL, STACK_GLOBAL or INST opcode that names the global.
    public let offset: Int?
    /// The file the payload creates in the current directory when Python unpickles it.
    public let marker: String?
    /// A control's tensor names in pickle order, and its metadata (the harmless string at the payload's place).
    public let tensors: [String]?
    public let metadata: [String: String]?

    public static let directory = TestPaths.path("hostile")

    public var path: String { HostileFixture.directory + "/" + file }

    /// Every row of the manifest.
    public static func all() throws -> [HostileFixture] {
        try JSONDecoder().decode([HostileFixture].self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/manifest.json")))
    }
}
