#if canImport(Glibc)
import Glibc
#endif
import CBFQShims
import Foundation

/// Writes a folder of files that appears under its name only complete. Each file is written unnamed (O_TMPFILE, as
/// `AtomicFileWriter` does) in the folder's parent and kept open; `commit()` links them all into a hidden new folder
/// and swaps it with the existing folder in one step (renameat2 RENAME_EXCHANGE; where the file system cannot, the old
/// folder is renamed away first), then removes the old one. So an interrupted run leaves the previous folder or
/// nothing: while files are written nothing is named, and in the moments of `commit()` SIGINT, SIGTERM and SIGHUP
/// remove the hidden folder (`InterruptCleanup`); only SIGKILL or power loss in those moments can leave it behind.
/// A folder of more than `openFiles` files (open descriptors are limited) links finished files into the hidden
/// folder as it goes, so for those, a SIGKILL while writing can leave the hidden folder too.
///
/// An existing folder is replaced only when every entry in it is a file `replaceable` accepts and none is an input,
/// so pointing the output at a folder of other things is refused rather than emptied.
public final class AtomicFolderWriter: @unchecked Sendable {
    public let path: String
    /// The folder holding `path`, with a trailing slash ("" for the current folder).
    let parent: String
    private let inputs: [MappedFile]
    private let durable: Bool
    /// Finished files waiting to be linked, with their names.
    private var files: [(writer: AtomicFileWriter, name: String)] = []
    /// The hidden folder the files are linked into, once made.
    private var temporary: String?
    /// Finished files kept open (unnamed) at most; more are linked into the hidden folder as they finish.
    static let openFiles = 32

    /// Checks the target; nothing is created until the files are written.
    public init(path: String, inputs: [MappedFile], durable: Bool, replaceable: (String) -> Bool) throws {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self.path = trimmed
        self.inputs = inputs
        self.durable = durable
        parent = trimmed.lastIndex(of: "/").map { String(trimmed[...$0]) } ?? ""
        // The folder is replaced by renaming: "." , ".." and "/" cannot be.
        guard ![".", "..", "/"].contains(trimmed.split(separator: "/").last.map(String.init) ?? "/") else {
            throw AssemblyError.outputFolderUnnamed(path: path)
        }
        try Self.checkReplaceable(trimmed, inputs: inputs, replaceable: replaceable)
        guard access(parent.isEmpty ? "." : parent, W_OK | X_OK) == 0 else { throw FileError.cannotWrite(path: trimmed, errno: errno) }
    }

    /// Where to write the file `name` of the folder.
    public func target(_ name: String) -> OutputTarget {
        OutputTarget(path: path + "/" + name, inputs: inputs, durable: durable, folder: self)
    }

    deinit {
        if let temporary { discard(temporary) }
    }

    /// Takes a finished file (from `AtomicFileWriter.commit()`).
    func adopt(_ writer: AtomicFileWriter) throws {
        files.append((writer, writer.path.split(separator: "/").last.map(String.init) ?? writer.path))
        if files.count > Self.openFiles { try link() }
    }

    /// Links the finished files into the hidden folder, making it first.
    private func link() throws {
        let temporary = try self.temporary ?? makeTemporary()
        self.temporary = temporary
        for (writer, name) in files { try writer.place(at: temporary + "/" + name) }
        files = []
    }

    private func makeTemporary() throws -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var template = Array((parent + "." + base + ".tmp-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FileError.cannotWrite(path: path, errno: errno)
        }
        let temporary = String(cString: made)
        InterruptCleanup.register(temporary)
        // mkdtemp makes the folder private; the output gets the mode a new folder would (0777 less the umask).
        let mask = umask(0)
        umask(mask)
        chmod(temporary, 0o777 & ~mask)
        return temporary
    }

    /// Puts the complete folder, with every file written so far, in place of any previous one.
    public func commit() throws {
        try link()
        let temporary = self.temporary!
        var placed = false
        defer {
            if !placed { discard(temporary) }
            self.temporary = nil
        }
        if durable { Self.sync(temporary) }
        var info = stat()
        if lstat(path, &info) != 0 {
            guard rename(temporary, path) == 0 else { throw FileError.cannotRename(from: temporary, to: path, errno: errno) }
            placed = true
            InterruptCleanup.unregister(temporary)
        } else if bfq_exchange_paths(temporary, path) == 0 {
            // The temporary name now holds the previous folder.
            placed = true
            discard(temporary)
        } else {
            // No exchange here: move the old folder aside, then the new one in; between the two, nothing is there.
            let aside = temporary + ".old"
            InterruptCleanup.register(aside)
            guard rename(path, aside) == 0 else {
                InterruptCleanup.unregister(aside)
                throw FileError.cannotRename(from: path, to: aside, errno: errno)
            }
            guard rename(temporary, path) == 0 else {
                let code = errno
                if rename(aside, path) == 0 { InterruptCleanup.unregister(aside) }
                throw FileError.cannotRename(from: temporary, to: path, errno: code)
            }
            placed = true
            InterruptCleanup.unregister(temporary)
            discard(aside)
        }
        if durable { Self.sync(parent.isEmpty ? "." : parent) }
    }

    private func discard(_ folder: String) {
        _ = bfq_remove_flat_directory(folder)
        InterruptCleanup.unregister(folder)
    }

    private static func sync(_ folder: String) {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Refuses an existing `path` that is not a folder, holds anything `replaceable` rejects or a subfolder, or holds an input.
    private static func checkReplaceable(_ path: String, inputs: [MappedFile], replaceable: (String) -> Bool) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw AssemblyError.outputNotAFolder(path: path)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names.sorted() {
            var entry = stat()
            guard lstat(path + "/" + name, &entry) == 0, (entry.st_mode & S_IFMT) == S_IFREG, replaceable(name) else {
                throw AssemblyError.outputFolderHoldsOtherFiles(path: path, file: name)
            }
            if let input = inputs.first(where: { $0.identity == (UInt64(entry.st_dev), UInt64(entry.st_ino)) }) {
                throw AssemblyError.outputFolderHoldsInput(path: path, input: input.path)
            }
        }
    }
}
