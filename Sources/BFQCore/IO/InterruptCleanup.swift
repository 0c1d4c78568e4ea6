#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBFQShims

/// Removes the temporary files and folders of unfinished writes when the process is interrupted (SIGINT, SIGTERM,
/// SIGHUP), then exits with the conventional status 128 + signal.
enum InterruptCleanup {
    /// Slots: a folder's finished files (at most `AtomicFolderWriter.openFiles`) and its hidden folders, and more.
    private static let capacity = 64
    private static let pathLength = 4096
    /// Fixed slots of NUL-terminated paths, readable from a signal handler without locks or allocation.
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<CChar> = {
        let slots = UnsafeMutablePointer<CChar>.allocate(capacity: capacity * pathLength)
        slots.initialize(repeating: 0, count: capacity * pathLength)
        return slots
    }()
    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    nonisolated(unsafe) private static var installed = false

    private static let signals = [SIGINT, SIGTERM, SIGHUP]

    /// Adds `path` to the files removed on interruption (installing the handlers on first use). Register a temporary
    /// file's name before creating it: a signal may reach any thread at any moment.
    static func register(_ path: String) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if !installed {
            installed = true
            // The slots are made (a lazy, once-guarded global) before any handler can run: a handler that reached
            // them while they were being made would wait forever on their initialisation.
            _ = slots
            for sig in signals { signal(sig, handler) }
        }
        let bytes = Array(path.utf8)
        guard bytes.count < pathLength else { return }
        for slot in 0 ..< capacity where slots[slot * pathLength] == 0 {
            let start = slots + slot * pathLength
            for (i, byte) in bytes.enumerated().dropFirst() { start[i] = CChar(bitPattern: byte) }
            start[bytes.count] = 0
            start[0] = CChar(bitPattern: bytes[0])  // set last: marks the slot used
            return
        }
    }

    static func unregister(_ path: String) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        for slot in 0 ..< capacity where slots[slot * pathLength] != 0 {
            let start = slots + slot * pathLength
            if String(cString: start) == path { start[0] = 0 }
        }
    }

    private static let handler: @convention(c) (Int32) -> Void = { sig in
        for slot in 0 ..< InterruptCleanup.capacity {
            let start = InterruptCleanup.slots + slot * InterruptCleanup.pathLength
            if start[0] != 0, unlink(start) != 0 { _ = bfq_remove_flat_directory(start) }
        }
        _exit(128 + sig)
    }
}
