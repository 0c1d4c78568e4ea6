/// Reads a small text file; writes one (a plan, a chart) atomically: to a temporary file renamed into place.
public enum TextFile {
    /// Writes `text` to `path`; `inputs` are files it must not overwrite.
    public static func write(_ text: String, to path: String, inputs: [MappedFile] = []) throws {
        try write(text, to: OutputTarget(path: path, inputs: inputs))
    }

    /// The text of the file at `path` (invalid UTF-8 replaced).
    public static func read(_ path: String) throws -> String {
        let file = try MappedFile(path: path)
        return withExtendedLifetime(file) { String(decoding: file.bytes, as: UTF8.self) }
    }

    /// Writes `text` to `target`.
    public static func write(_ text: String, to target: OutputTarget) throws {
        let out = try target.open()
        try Array(text.utf8).withUnsafeBytes { try out.write($0) }
        try out.commit()
    }
}
