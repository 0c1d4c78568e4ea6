#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; tensors are read from it without copying.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// Size of the file in bytes.
    public let count: Int
    /// Device and inode, to tell whether an output path names this same file.
    public let identity: (device: UInt64, inode: UInt64)
    private let base: UnsafeRawPointer?

    /// Maps `path` (open(2), fstat(2), mmap(2)); the mapping lives as long as this object.
    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError.cannotOpen(path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError.notARegularFile(path: path) }
        count = Int(info.st_size)
        identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        if count == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else { throw FileError.cannotMap(path: path, errno: errno) }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// All bytes of the file.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The bytes in `range`, which the caller has checked lies within the file.
    public func bytes(in range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range outside \(path)")
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Tells the kernel the pages of `range` will be read in order soon.
    public func willRead(_ range: Range<Int>) {
        advise(range, MADV_SEQUENTIAL)
        advise(range, MADV_WILLNEED)
    }

    /// Drops the pages of `range` from this process's resident set (they stay in the page cache),
    /// so streaming over a large file keeps memory bounded.
    public func release(_ range: Range<Int>) {
        advise(range, MADV_DONTNEED)
    }

    private func advise(_ range: Range<Int>, _ advice: Int32) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(count, range.upperBound)
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }
}
