#if canImport(Glibc)
import Glibc
#endif

/// One unlinked temporary file in /dev/shm rewritten for every input, for readers that take a path (they map it).
/// Readers reopen it as /proc/self/fd/N, so nothing is left behind when the process ends, however it ends.
final class FuzzInputFile: @unchecked Sendable {
    static let shared = FuzzInputFile()
    let path: String
    private let fd: Int32

    private init() {
        var template = Array("/dev/shm/bfq-fuzz-XXXXXX".utf8CString)
        fd = mkstemp(&template)
        precondition(fd >= 0, "mkstemp failed: errno \(errno)")
        unlink(template)
        path = "/proc/self/fd/\(fd)"
    }

    /// Replaces the file's content with `bytes` and returns its path.
    func write(_ bytes: UnsafeRawBufferPointer) -> String {
        precondition(ftruncate(fd, 0) == 0)
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(done))
            precondition(n > 0, "pwrite failed: errno \(errno)")
            done += n
        }
        return path
    }
}
