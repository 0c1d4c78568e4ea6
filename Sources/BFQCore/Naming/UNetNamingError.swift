/// Why UNet tensor names could not be renamed.
public enum UNetNamingError: Error, Equatable, CustomStringConvertible {
    /// A UNet tensor whose name has no counterpart in the other scheme.
    case unmappableName(String, reason: String)
    /// Two input names would receive the same output name.
    case nameCollision(String, first: String, second: String)

    public var description: String {
        switch self {
        case let .unmappableName(name, reason):
            return "cannot rename UNet tensor '\(name)': \(reason)"
        case let .nameCollision(target, first, second):
            return "renaming gives '\(target)' for both '\(first)' and '\(second)'"
        }
    }
}
