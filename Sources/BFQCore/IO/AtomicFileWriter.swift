#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBFQShims

/// Writes a file that appears under its name only complete: `commit()` puts it in place after everything is written
/// and flushed to the kernel (and synced to disk when `durable`); an existing file of that name stays intact until then.
/// The data goes to an unnamed file in the target's directory (O_TMPFILE), so no interruption, SIGKILL or power loss
/// included, can leave anything behind; where the file system has no unnamed files (or BFQ_TEMPORARY_FILES=named), to a
/// hidden temporary file next to the target that SIGINT, SIGTERM and SIGHUP remove (`InterruptCleanup`). Dropped without `commit()`, nothing remains.
public final class AtomicFileWriter {
    public let path: String
    /// The hidden temporary file's name, when the data is not in an unnamed file.
    private var temporaryPath: String?
    private var fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var committed = false
    private let durable: Bool
    private var runningCRC: UInt32?
    /// Bytes written so far (including those still buffered).
    public private(set) var offset = 0
    /// The folder this file is part of: `commit()` hands the finished file to it, which places it with the others.
    private weak var folder: AtomicFolderWriter?

    /// Creates the unnamed (or temporary) file. Refuses a target that is one of `inputs` (same device and inode).
    /// A file of `folder` is made in the folder's parent, as the folder itself appears only when complete.
    public init(path: String, inputs: [MappedFile] = [], durable: Bool = true, bufferSize: Int = 8 << 20,
                folder: AtomicFolderWriter? = nil) throws {
        try Self.refuseInputs(path: path, inputs: inputs)
        self.path = path
        self.durable = durable
        self.folder = folder
        let staging = folder.map { $0.parent + (path.split(separator: "/").last.map(String.init) ?? path) } ?? path
        let unnamed = Self.unnamedFilesAllowed ? bfq_open_unnamed(Self.directory(of: staging)) : -1
        if unnamed >= 0 {
            fd = unnamed
        } else {
            var descriptor: Int32 = -1
            temporaryPath = try Self.withTemporaryName(for: staging) { name in
                descriptor = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                return descriptor >= 0 ? 0 : errno
            }
            fd = descriptor
        }
        fchmod(fd, 0o644)
        buffer = .allocate(byteCount: bufferSize, alignment: 4096)
    }

    /// Unnamed files need /proc to be linked into place; BFQ_TEMPORARY_FILES=named asks for hidden temporary files
    /// instead (for file systems where linking an unnamed file misbehaves).
    private static let unnamedFilesAllowed = access("/proc/self/fd", X_OK) == 0
        && getenv("BFQ_TEMPORARY_FILES").map { String(cString: $0) != "named" } ?? true

    /// The directory holding `path` ("." for a bare name).
    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Picks an unused hidden name beside `path`, registered for removal on interruption before `create` makes it (a
    /// signal may reach any thread at any moment); `create` returns 0 or the errno of its failure. Returns the name.
    private static func withTemporaryName(for path: String, _ create: (String) -> Int32) throws -> String {
        let slash = path.lastIndex(of: "/")
        let prefix = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var generator = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for _ in 0 ..< 100 {
            let name = "\(prefix).\(base).tmp-" + String((0 ..< 6).map { _ in letters.randomElement(using: &generator)! })
            InterruptCleanup.register(name)
            let reason = create(name)
            if reason == 0 { return name }
            InterruptCleanup.unregister(name)
            guard reason == EEXIST else { throw FileError.cannotWrite(path: path, errno: reason) }
        }
        throw FileError.cannotWrite(path: path, errno: EEXIST)
    }

    /// Throws when `path` names one of `inputs` (same device and inode).
    static func refuseInputs(path: String, inputs: [MappedFile]) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        for input in inputs where input.identity == (UInt64(info.st_dev), UInt64(info.st_ino)) {
            throw FileError.wouldOverwriteInput(path: path)
        }
    }

    deinit {
        releaseBuffer()
        if !committed {
            close(fd)
            if let temporaryPath {
                unlink(temporaryPath)
                InterruptCleanup.unregister(temporaryPath)
            }
        }
    }

    /// Starts a CRC-32 over every byte appended from now on.
    public func beginCRC() { runningCRC = 0 }

    /// Ends the running CRC-32 and returns it.
    public func endCRC() -> UInt32 {
        defer { runningCRC = nil }
        return runningCRC ?? 0
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let source = bytes.baseAddress else { return }
        if let crc = runningCRC { runningCRC = bfq_crc32(crc, source, bytes.count) }
        var position = 0
        if buffered + bytes.count > buffer.count {
            try flushBuffer()
            if bytes.count >= buffer.count {
                try writeFully(source, bytes.count, at: nil)
                offset += bytes.count
                return
            }
        }
        while position < bytes.count {
            let n = min(bytes.count - position, buffer.count - buffered)
            (buffer.baseAddress! + buffered).copyMemory(from: source + position, byteCount: n)
            buffered += n
            position += n
            if buffered == buffer.count { try flushBuffer() }
        }
        offset += bytes.count
    }

    /// Appends `count` zero bytes.
    public func writeZeros(_ count: Int) throws {
        try write([UInt8](repeating: 0, count: count))
    }

    /// Lets `fill` write up to `capacity` bytes straight into the output buffer; `fill` returns how many it wrote.
    /// Avoids a copy when converting element types on the way out.
    public func withOutputBuffer(capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        precondition(capacity <= buffer.count)
        if buffered + capacity > buffer.count { try flushBuffer() }
        let region = UnsafeMutableRawBufferPointer(rebasing: buffer[buffered ..< buffered + capacity])
        let n = try fill(region)
        precondition(n >= 0 && n <= capacity)
        if let crc = runningCRC { runningCRC = bfq_crc32(crc, region.baseAddress!, n) }
        buffered += n
        offset += n
    }

    /// Largest `capacity` `withOutputBuffer` accepts.
    public var bufferCapacity: Int { buffer.count }

    /// Overwrites bytes already written at `position` (for fields known only at the end, such as checksums).
    public func patch(_ bytes: [UInt8], at position: Int) throws {
        try flushBuffer()
        try bytes.withUnsafeBytes { try writeFully($0.baseAddress!, $0.count, at: position) }
    }

    /// Flushes (and, when durable, syncs to disk) and puts the file in place under `path`; a file of a folder is
    /// handed to the folder, which places it when the folder is complete.
    public func commit() throws {
        try flushBuffer()
        if durable, fsync(fd) != 0 { throw FileError.cannotWrite(path: path, errno: errno) }
        releaseBuffer()
        if let folder { return try folder.adopt(self) }
        try place(at: path)
    }

    private func releaseBuffer() {
        guard buffer.count > 0 else { return }
        buffer.deallocate()
        buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    /// Links (or renames) the finished file to `path`.
    func place(at path: String) throws {
        if temporaryPath == nil {
            // A new name is linked straight to the finished file; an existing one is replaced by a rename of a
            // linked temporary name, the one moment something could be left behind.
            let source = "/proc/self/fd/\(fd)"
            if linkat(AT_FDCWD, source, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 {
                close(fd)
                committed = true
                if durable { Self.syncDirectory(of: path) }
                return
            }
            guard errno == EEXIST else {
                let code = errno
                close(fd)
                committed = true
                throw FileError.cannotWrite(path: path, errno: code)
            }
            do {
                temporaryPath = try Self.withTemporaryName(for: path) { name in
                    linkat(AT_FDCWD, source, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno
                }
            } catch {
                close(fd)
                committed = true
                throw error
            }
        }
        close(fd)
        committed = true
        let temporaryPath = temporaryPath!
        defer { InterruptCleanup.unregister(temporaryPath) }
        guard rename(temporaryPath, path) == 0 else {
            let code = errno
            unlink(temporaryPath)
            throw FileError.cannotRename(from: temporaryPath, to: path, errno: code)
        }
        if durable { Self.syncDirectory(of: path) }
    }

    /// Makes the new name `path` itself durable.
    private static func syncDirectory(of path: String) {
        let descriptor = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    private func flushBuffer() throws {
        guard buffered > 0 else { return }
        try writeFully(buffer.baseAddress!, buffered, at: nil)
        buffered = 0
    }

    private func writeFully(_ source: UnsafeRawPointer, _ count: Int, at position: Int?) throws {
        var done = 0
        while done < count {
            let n = position.map { pwrite(fd, source + done, count - done, off_t($0 + done)) }
                ?? Glibc.write(fd, source + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.cannotWrite(path: path, errno: errno)
            }
            done += n
        }
    }
}
