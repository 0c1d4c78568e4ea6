/// A value on the pickle machine's stack or in its memo.
///
/// Containers, tensors and storages live in a `PickleArena` and are referred to by index, so values never nest
/// in Swift: deep, shared or cyclic structures built by a hostile pickle cannot make releasing them recurse.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer outside Int, as little-endian two's complement bytes in `arena.bigInts`.
    case bigInt(Int)
    case float(Double)
    case string(String)
    case bytes(Int)
    case list(Int)
    case tuple(Int)
    case dict(Int)
    case set(Int)
    case global(Int)
    /// An object bfq does not model, built from global `Int` (or from nothing known when negative).
    case object(Int)
    case storage(Int)
    case tensor(Int)
    /// A tensor built by torch rebuild function `Int` (a global) that bfq does not model; refused when named.
    case unsupportedTensor(Int)

    /// The kind with its article, for messages: "an int", "a list", "None".
    var kind: String {
        switch self {
        case .none: return "None"
        case .int, .bigInt, .object: return "an \(kindName)"
        default: return "a \(kindName)"
        }
    }

    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .set: return "set"
        case .global: return "global"
        case .object: return "object"
        case .storage: return "storage"
        case .tensor, .unsupportedTensor: return "tensor"
        }
    }
}

/// A torch element type as named in the file, with the bfq type when there is one.
struct TorchDType: Equatable {
    let name: String
    let dtype: DType?
    /// Bytes per element when known (also for types bfq cannot convert, to check storage sizes).
    let elementSize: Int?
}

/// A storage referenced by a persistent id: a byte range of the file holding `elementCount` elements.
struct PickleStorage {
    let key: String
    let dtype: TorchDType
    let elementCount: Int
    /// Where the bytes are; nil until a legacy file's storage section has been read.
    var bytes: Range<Int>?
    /// Legacy view: (offset, count) in elements within the root storage `key`.
    let view: (offset: Int, count: Int)?
}

/// A tensor built by a rebuild function, validated when its name is known.
struct PickleTensor {
    let storage: Int
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
    let dtype: TorchDType
    /// Offset of the REDUCE that built it, for messages.
    let offset: Int
}

/// Everything the machine built, addressed by the indices in `PickleValue`.
struct PickleArena {
    var lists: [[PickleValue]] = []
    var tuples: [[PickleValue]] = []
    var dicts: [[(key: PickleValue, value: PickleValue)]] = []
    var setCount = 0
    var bigInts: [[UInt8]] = []
    var byteStrings: [[UInt8]] = []
    var globals: [PickleGlobal] = []
    var storages: [PickleStorage] = []
    var tensors: [PickleTensor] = []

    var objectCount: Int {
        lists.count + tuples.count + dicts.count + setCount + bigInts.count + byteStrings.count + storages.count + tensors.count
    }

    /// Renders two's-complement little-endian bytes as a decimal number (schoolbook division, inputs are small).
    static func decimal(littleEndian bytes: [UInt8]) -> String {
        guard let last = bytes.last else { return "0" }
        var magnitude = bytes
        let negative = last & 0x80 != 0
        if negative {  // two's complement negate
            var carry = 1
            for i in magnitude.indices {
                let v = Int(~magnitude[i]) + carry
                magnitude[i] = UInt8(truncatingIfNeeded: v)
                carry = v >> 8
            }
        }
        var digits: [UInt8] = []
        var words = Array(magnitude.reversed())  // big-endian
        while words.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in words.indices {
                let current = remainder << 8 | Int(words[i])
                words[i] = UInt8(current / 10)
                remainder = current % 10
            }
            digits.append(UInt8(remainder) + 48)
        }
        if digits.isEmpty { digits = [48] }
        return (negative ? "-" : "") + String(decoding: digits.reversed(), as: UTF8.self)
    }

    /// Parses optionally signed decimal digits into two's-complement little-endian bytes; nil if not a number, empty
    /// (nothing converted) if it certainly needs more than `maxBytes` bytes.
    static func littleEndian(decimal text: Substring, maxBytes: Int) -> [UInt8]? {
        var digits = text.utf8[...]
        var negative = false
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        digits = digits.drop { $0 == 48 }
        guard digits.count <= maxBytes * 5 / 2 else { return [] }  // a byte holds less than 2.5 decimal digits
        var magnitude: [UInt8] = [0]
        for digit in digits {
            var carry = Int(digit - 48)
            for i in magnitude.indices {
                let v = Int(magnitude[i]) * 10 + carry
                magnitude[i] = UInt8(truncatingIfNeeded: v)
                carry = v >> 8
            }
            if carry > 0 { magnitude.append(UInt8(carry)) }
        }
        magnitude.append(0)  // room for the sign bit
        if negative {
            var carry = 1
            for i in magnitude.indices {
                let v = Int(~magnitude[i]) + carry
                magnitude[i] = UInt8(truncatingIfNeeded: v)
                carry = v >> 8
            }
        }
        return magnitude
    }
}
