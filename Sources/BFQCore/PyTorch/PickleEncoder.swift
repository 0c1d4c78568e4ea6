/// Writes the protocol 2 pickle torch.save produces for a flat dict of tensors (and string metadata).
///
/// Tensors are `torch._utils._rebuild_tensor_v2((“storage”, torch.<Type>Storage, key, “cpu”, numel), 0, size,
/// stride, False, collections.OrderedDict())`; float8 tensors use `_rebuild_tensor_v3` with
/// `torch.storage.UntypedStorage` and the dtype, as torch does for dtypes without a legacy storage class.
/// Storage `i` is the record `data/<i>`. Repeated strings and globals are memoized like Python's pickler does.
struct PickleEncoder {
    private(set) var bytes: [UInt8] = [0x80, 0x02]
    private var memo: [String: Int] = [:]

    static func storageClass(_ dtype: DType) -> String? {
        switch dtype {
        case .f64: return "DoubleStorage"
        case .f32: return "FloatStorage"
        case .f16: return "HalfStorage"
        case .bf16: return "BFloat16Storage"
        case .i64: return "LongStorage"
        case .i32: return "IntStorage"
        case .i16: return "ShortStorage"
        case .i8: return "CharStorage"
        case .u8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .f8e4m3, .f8e5m2: return nil
        }
    }

    static func torchName(_ dtype: DType) -> String {
        switch dtype {
        case .f8e4m3: return "float8_e4m3fn"
        case .f8e5m2: return "float8_e5m2"
        default: return ""
        }
    }

    /// The pickle of `{tensor names: tensors (storage i for tensor i), metadata keys: str values}`.
    static func stateDict(tensors: [OutputTensor], metadata: [(String, String)]) -> [UInt8] {
        var encoder = PickleEncoder()
        encoder.bytes.append(0x7D)  // EMPTY_DICT
        encoder.put("<dict>")
        let count = tensors.count + metadata.count
        var index = 0
        while index < count {  // SETITEMS in batches of 1000, as Python does
            let batch = min(1000, count - index)
            if batch > 1 { encoder.bytes.append(0x28) }
            for item in index ..< index + batch {
                if item < tensors.count {
                    encoder.string(tensors[item].name)
                    encoder.tensor(tensors[item], key: String(item))
                } else {
                    encoder.string(metadata[item - tensors.count].0)
                    encoder.string(metadata[item - tensors.count].1)
                }
            }
            encoder.bytes.append(batch > 1 ? 0x75 : 0x73)  // SETITEMS or SETITEM
            index += batch
        }
        encoder.bytes.append(0x2E)  // STOP
        return encoder.bytes
    }

    private mutating func tensor(_ tensor: OutputTensor, key: String) {
        let storageClass = PickleEncoder.storageClass(tensor.dtype)
        global("torch._utils", storageClass == nil ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2")
        bytes.append(0x28)  // MARK: arguments
        bytes.append(0x28)  // MARK: persistent id
        string("storage", memoize: true)
        if let storageClass { global("torch", storageClass) } else { global("torch.storage", "UntypedStorage") }
        string(key)
        string("cpu", memoize: true)
        int(storageClass == nil ? tensor.byteCount : tensor.elementCount)
        bytes += [0x74, 0x51]  // TUPLE, BINPERSID
        int(0)
        tuple(tensor.shape)
        tuple(TensorEntry.contiguousStrides(for: tensor.shape))
        bytes.append(0x89)  // NEWFALSE
        global("collections", "OrderedDict")
        bytes += [0x29, 0x52]  // EMPTY_TUPLE, REDUCE
        if storageClass == nil { global("torch", PickleEncoder.torchName(tensor.dtype)) }
        bytes += [0x74, 0x52]  // TUPLE, REDUCE
    }

    private mutating func tuple(_ values: [Int]) {
        switch values.count {
        case 0: bytes.append(0x29)
        case 1 ... 3:
            values.forEach { int($0) }
            bytes.append(0x84 + UInt8(values.count))  // TUPLE1..3
        default:
            bytes.append(0x28)
            values.forEach { int($0) }
            bytes.append(0x74)
        }
    }

    private mutating func int(_ value: Int) {
        if value >= 0 && value < 256 {
            bytes += [0x4B, UInt8(value)]
        } else if value >= 0 && value < 65536 {
            bytes += [0x4D, UInt8(value & 0xFF), UInt8(value >> 8)]
        } else if let small = Int32(exactly: value) {
            bytes.append(0x4A)
            withUnsafeBytes(of: small.littleEndian) { bytes += $0 }
        } else {  // LONG1, minimal two's complement
            var raw = withUnsafeBytes(of: Int64(value).littleEndian, Array.init)
            while raw.count > 1, (raw[raw.count - 1] == 0 && raw[raw.count - 2] & 0x80 == 0)
                || (raw[raw.count - 1] == 0xFF && raw[raw.count - 2] & 0x80 != 0) { raw.removeLast() }
            bytes += [0x8A, UInt8(raw.count)] + raw
        }
    }

    private mutating func string(_ text: String, memoize: Bool = false) {
        if memoize, get("s" + text) { return }
        let utf8 = Array(text.utf8)
        bytes.append(0x58)
        withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { bytes += $0 }
        bytes += utf8
        if memoize { put("s" + text) }
    }

    private mutating func global(_ module: String, _ name: String) {
        let key = "g\(module)\n\(name)"
        if get(key) { return }
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
        put(key)
    }

    /// Emits BINGET for a memoized object; false when not memoized yet.
    private mutating func get(_ key: String) -> Bool {
        guard let index = memo[key] else { return false }
        if index < 256 { bytes += [0x68, UInt8(index)] } else {
            bytes.append(0x6A)
            withUnsafeBytes(of: UInt32(index).littleEndian) { bytes += $0 }
        }
        return true
    }

    private mutating func put(_ key: String) {
        let index = memo.count
        memo[key] = index
        if index < 256 { bytes += [0x71, UInt8(index)] } else {
            bytes.append(0x72)
            withUnsafeBytes(of: UInt32(index).littleEndian) { bytes += $0 }
        }
    }
}
