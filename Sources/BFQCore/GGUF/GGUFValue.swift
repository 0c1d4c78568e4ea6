/// One GGUF metadata value, of any of the format's thirteen value types.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// An array: its element type id, its length, and its elements (all of that type) when it has at most
    /// `keptArrayElements` of them (empty otherwise).
    case array(elementType: UInt32, count: Int, [GGUFValue])

    /// Longest array whose elements a reader keeps.
    public static let keptArrayElements = 1024

    /// The value type ids of the GGUF specification.
    public enum TypeID: UInt32, Sendable {
        case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

        /// Bytes of a value of this type when its size is fixed; nil for strings and arrays.
        var fixedSize: Int? {
            switch self {
            case .uint8, .int8, .bool: return 1
            case .uint16, .int16: return 2
            case .uint32, .int32, .float32: return 4
            case .uint64, .int64, .float64: return 8
            case .string, .array: return nil
            }
        }

        /// The specification's name for the type.
        public var name: String { String(describing: self).uppercased() }
    }

    /// The value's type id.
    public var typeID: TypeID {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// The value as an integer when it is one of the integer types and fits in `Int`.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// The value as text for reports: strings as they are, arrays in brackets (long ones by count and type).
    public var text: String {
        switch self {
        case let .uint8(v): return String(v)
        case let .int8(v): return String(v)
        case let .uint16(v): return String(v)
        case let .int16(v): return String(v)
        case let .uint32(v): return String(v)
        case let .int32(v): return String(v)
        case let .float32(v): return String(v)
        case let .bool(v): return String(v)
        case let .string(v): return v
        case let .uint64(v): return String(v)
        case let .int64(v): return String(v)
        case let .float64(v): return String(v)
        case let .array(type, count, elements):
            let typeName = TypeID(rawValue: type)?.name ?? String(type)
            guard count <= 16, elements.count == count else { return "[\(count) × \(typeName)]" }
            return "[" + elements.map { $0.typeID == .string ? "\"\($0.text)\"" : $0.text }.joined(separator: ", ") + "]"
        }
    }
}
