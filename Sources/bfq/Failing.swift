import ArgumentParser
import BFQCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command body; a domain error becomes one line on stderr and exit status 2 (a usage error stays one: 64).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let usage as UsageError {
        printError("bfq: error: \(usage)")
        throw ExitCode(64)
    } catch {
        printError("bfq: error: \(error)")
        throw ExitCode(2)
    }
}

/// Options that contradict each other or a file they name: one line on stderr and exit status 64.
struct UsageError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// Writes one line to standard error, with any control characters from file contents escaped.
func printError(_ line: String) {
    let bytes = Array((Formatting.printable(line) + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
