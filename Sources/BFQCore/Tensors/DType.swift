/// Element types a checkpoint tensor can hold, named as safetensors names them.
public enum DType: String, CaseIterable, Sendable, Comparable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .f16, .bf16: return 2
        case .i32, .f32: return 4
        case .f64, .i64: return 8
        }
    }

    /// Whether the type holds floating-point values (the types `--dtype` converts).
    public var isFloatingPoint: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }

    /// The order safetensors uses to lay out tensors: larger alignment first (its `Dtype` declaration order).
    private var layoutRank: Int {
        switch self {
        case .bool: return 0
        case .u8: return 4
        case .i8: return 5
        case .f8e5m2: return 6
        case .f8e4m3: return 7
        case .i16: return 9
        case .f16: return 11
        case .bf16: return 12
        case .i32: return 13
        case .f32: return 15
        case .f64: return 17
        case .i64: return 18
        }
    }

    public static func < (lhs: DType, rhs: DType) -> Bool { lhs.layoutRank < rhs.layoutRank }
}
