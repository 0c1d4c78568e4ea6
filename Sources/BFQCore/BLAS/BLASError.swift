/// Why bfq's matrix products cannot run.
public enum BLASError: Error, Equatable, CustomStringConvertible {
    /// OpenBLAS could not be loaded, or lacks a function bfq calls (the loader's own sentence).
    case unavailable(String)

    public var description: String {
        switch self {
        case let .unavailable(reason): return reason
        }
    }
}
