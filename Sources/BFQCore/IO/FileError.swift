#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failures of the operating system while reading or writing files.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case cannotMap(path: String, errno: Int32)
    case cannotWrite(path: String, errno: Int32)
    case cannotRename(from: String, to: String, errno: Int32)
    case notARegularFile(path: String)
    case wouldOverwriteInput(path: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, code): return "\(path): cannot open: \(FileError.text(code))"
        case let .cannotMap(path, code): return "\(path): cannot map into memory: \(FileError.text(code))"
        case let .cannotWrite(path, code): return "\(path): cannot write: \(FileError.text(code))"
        case let .cannotRename(from, to, code): return "\(to): cannot rename \(from) into place: \(FileError.text(code))"
        case let .notARegularFile(path): return "\(path): not a regular file"
        case let .wouldOverwriteInput(path): return "\(path): output is the input file; refusing to overwrite it"
        }
    }

    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }
}
