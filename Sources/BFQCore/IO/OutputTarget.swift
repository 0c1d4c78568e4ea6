#if canImport(Glibc)
import Glibc
#endif

/// Where and how a writer puts its file: the path, the input files it must not replace, and whether the data
/// must reach the disk (fsync) before the file is renamed into place.
public struct OutputTarget: Sendable {
    public var path: String
    public var inputs: [MappedFile]
    /// The path `inputs` were opened as, when they are one checkpoint of several files (a shard index or folder).
    public var inputPath: String?
    /// The folder the file is part of, placed with it when the folder is complete.
    public var folder: AtomicFolderWriter?
    /// With `true` (the default), survive power loss too: fsync the file before the rename and the folder after it.
    /// Without, the output is still complete or absent whatever happens to the process, but not to the machine.
    public var durable: Bool

    public init(path: String, inputs: [MappedFile] = [], inputPath: String? = nil, durable: Bool = true,
                folder: AtomicFolderWriter? = nil) {
        self.path = path
        self.inputs = inputs
        self.inputPath = inputPath
        self.folder = folder
        self.durable = durable
    }

    /// Checks, before any work, what writing would check: the target is none of `inputs` and its folder takes files.
    public func check() throws {
        try AtomicFileWriter.refuseInputs(path: path, inputs: inputs)
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? "."
        guard access(directory, W_OK | X_OK) == 0 else { throw FileError.cannotWrite(path: path, errno: errno) }
    }

    /// Creates the temporary file the output is written to.
    public func open() throws -> AtomicFileWriter {
        try AtomicFileWriter(path: path, inputs: inputs, durable: durable, folder: folder)
    }
}
