import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Runs independent iterations on several threads. Results must not depend on which thread runs what,
/// so callers write each iteration's result into its own slot and combine slots in order.
public enum Parallel {
    /// Worker threads: `BFQ_THREADS` from the environment when set to a positive number, else the active cores.
    public static let threadCount: Int = {
        if let text = getenv("BFQ_THREADS").map({ String(cString: $0) }), let value = Int(text), value > 0 {
            return value
        }
        return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()

    /// Calls `body(i)` for every `i` in `0..<iterations`, spread over `threadCount` threads.
    public static func forEach(_ iterations: Int, _ body: (Int) -> Void) {
        let workers = Swift.min(threadCount, iterations)
        if workers <= 1 {
            for i in 0 ..< iterations { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var i = worker
                while i < iterations {
                    body(i)
                    i += workers
                }
            }
        }
    }
}

/// One slot per iteration for the error it threw, so parallel work reports the first failure in iteration order,
/// the same whatever the thread count.
final class ParallelFailures: @unchecked Sendable {
    /// Raw storage, so threads writing different slots never touch shared array metadata.
    private let errors: UnsafeMutableBufferPointer<Error?>

    init(_ count: Int) {
        errors = .allocate(capacity: count)
        errors.initialize(repeating: nil)
    }

    deinit {
        errors.deinitialize()
        errors.deallocate()
    }

    /// Runs `body` for iteration `index`, keeping its error. Each index is written by one thread only.
    func record(_ index: Int, _ body: () throws -> Void) {
        do { try body() } catch { errors[index] = error }
    }

    func throwFirst() throws {
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
    }
}
