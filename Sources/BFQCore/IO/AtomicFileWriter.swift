#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBFQShims

/// Writes a file through a temporary file next to the target, renamed into place only by `commit()`
/// after everything is written and flushed to the kernel (and synced to disk when `durable`). Dropped without `commit()`, it removes the temporary file,
/// so an error never leaves partial output. SIGINT and SIGTERM also remove it (see `InterruptCleanup`).
public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String
    private var fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var committed = false
    private let durable: Bool
    private var runningCRC: UInt32?
    /// Bytes written so far (including those still buffered).
    public private(set) var offset = 0

    /// Creates the temporary file. Refuses a target that is one of `inputs` (same device and inode).
    public init(path: String, inputs: [MappedFile] = [], durable: Bool = true, bufferSize: Int = 8 << 20) throws {
        try Self.refuseInputs(path: path, inputs: inputs)
        self.path = path
        self.durable = durable
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // The temporary name is registered for removal before the file is created, so a signal delivered to any
        // thread at any moment finds every temporary file that exists.
        var descriptor: Int32 = -1
        var temporary = ""
        var generator = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for _ in 0 ..< 100 {
            temporary = "\(directory).\(base).tmp-" + String((0 ..< 6).map { _ in letters.randomElement(using: &generator)! })
            InterruptCleanup.register(temporary)
            descriptor = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 { break }
            let reason = errno
            InterruptCleanup.unregister(temporary)
            guard reason == EEXIST else { throw FileError.cannotWrite(path: path, errno: reason) }
        }
        guard descriptor >= 0 else { throw FileError.cannotWrite(path: path, errno: EEXIST) }
        fd = descriptor
        temporaryPath = temporary
        fchmod(fd, 0o644)
        buffer = .allocate(byteCount: bufferSize, alignment: 4096)
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
        buffer.deallocate()
        if !committed {
            close(fd)
            unlink(temporaryPath)
            InterruptCleanup.unregister(temporaryPath)
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

    /// Flushes (and, when durable, syncs to disk) and renames the temporary file into place.
    public func commit() throws {
        try flushBuffer()
        if durable, fsync(fd) != 0 { throw FileError.cannotWrite(path: path, errno: errno) }
        close(fd)
        guard rename(temporaryPath, path) == 0 else {
            let code = errno
            unlink(temporaryPath)
            committed = true
            InterruptCleanup.unregister(temporaryPath)
            throw FileError.cannotRename(from: temporaryPath, to: path, errno: code)
        }
        committed = true
        InterruptCleanup.unregister(temporaryPath)
        if durable { syncDirectory() }
    }

    /// Makes the rename itself durable.
    private func syncDirectory() {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
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
