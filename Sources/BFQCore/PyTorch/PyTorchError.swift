/// Why a PyTorch checkpoint could not be read or written. Every case names the file first; `part` is the piece of
/// the file the offset counts in (`data.pkl` for zip checkpoints, `file` for legacy ones, whose offsets are absolute).
public enum PyTorchError: Error, CustomStringConvertible, Equatable {
    /// Neither a torch zip archive with a `data.pkl` nor a legacy torch.save file.
    case notPyTorch(path: String, reason: String)
    /// The zip container is malformed: `entry` is the record concerned (empty for the archive itself).
    case zip(path: String, entry: String, offset: Int, rule: String)
    /// A zip record is compressed or encrypted; torch only writes stored records.
    case compressedEntry(path: String, entry: String, method: Int)
    /// The pickle ended (or a declared length runs) past the end of its bytes.
    case truncated(path: String, part: String, offset: Int, opcode: String, needed: UInt64, remaining: Int)
    /// The pickle ran out of bytes without a STOP opcode.
    case missingStop(path: String, part: String, offset: Int)
    /// A byte that is not a pickle opcode.
    case unknownOpcode(path: String, part: String, offset: Int, byte: UInt8)
    /// A pickle feature bfq refuses to interpret (out-of-band buffers, the extension registry, protocol > 5).
    case unsupportedOpcode(path: String, part: String, offset: Int, opcode: String, reason: String)
    /// An opcode found the wrong things on the stack or an invalid operand.
    case malformedPickle(path: String, part: String, offset: Int, opcode: String, rule: String)
    /// A memo lookup of an index never stored.
    case memoMissing(path: String, part: String, offset: Int, index: Int)
    /// A cap on the stack, memo, marks or object count was hit.
    case limitExceeded(path: String, part: String, offset: Int, what: String, limit: Int)
    /// A global that can execute code or touch the system; the file is refused.
    case forbiddenGlobal(path: String, part: String, offset: Int, global: String, reason: String)
    /// A storage reference that does not match the archive (unknown key, wrong size, bad fields).
    case badStorage(path: String, key: String, rule: String)
    /// A tensor whose shape, strides or offset do not fit its storage.
    case badTensor(path: String, tensor: String, rule: String)
    /// A tensor of an element type bfq does not handle.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A tensor of a kind bfq does not handle (quantized, sparse, meta, nested, ...): `kind` names it and its function.
    case unsupportedTensor(path: String, tensor: String, kind: String)
    /// Two entries flatten to the same name.
    case duplicateName(path: String, name: String)
    /// The unpickled object is not a checkpoint (not a dict), or it nests too deeply.
    case badStructure(path: String, rule: String)
    /// The legacy (pre-1.6) framing around the pickles is wrong.
    case legacy(path: String, offset: Int, rule: String)
    /// Writing failed for a reason of the inputs (duplicate names, a source emitting the wrong byte count).
    case cannotWrite(path: String, tensor: String, rule: String)

    public var description: String {
        switch self {
        case let .notPyTorch(path, reason):
            return "\(path): not a PyTorch checkpoint: \(reason)"
        case let .zip(path, entry, offset, rule):
            return "\(path): zip\(entry.isEmpty ? "" : " entry '\(entry)'") offset \(offset): \(rule)"
        case let .compressedEntry(path, entry, method):
            return "\(path): zip entry '\(entry)' is compressed (method \(method)); torch checkpoints store records uncompressed"
        case let .truncated(path, part, offset, opcode, needed, remaining):
            return "\(path): \(part) offset \(offset): \(opcode) needs \(needed) bytes but only \(remaining) remain"
        case let .missingStop(path, part, offset):
            return "\(path): \(part) offset \(offset): pickle ends without STOP"
        case let .unknownOpcode(path, part, offset, byte):
            return "\(path): \(part) offset \(offset): unknown pickle opcode 0x\(String(byte, radix: 16))"
        case let .unsupportedOpcode(path, part, offset, opcode, reason):
            return "\(path): \(part) offset \(offset): \(opcode) is not supported: \(reason)"
        case let .malformedPickle(path, part, offset, opcode, rule):
            return "\(path): \(part) offset \(offset): \(opcode): \(rule)"
        case let .memoMissing(path, part, offset, index):
            return "\(path): \(part) offset \(offset): memo index \(index) was never stored"
        case let .limitExceeded(path, part, offset, what, limit):
            return "\(path): \(part) offset \(offset): \(what) exceeds the limit of \(limit)"
        case let .forbiddenGlobal(path, part, offset, global, reason):
            return "\(path): \(part) offset \(offset): global '\(global)' is forbidden (\(reason))"
        case let .badStorage(path, key, rule):
            return "\(path): storage '\(key)': \(rule)"
        case let .badTensor(path, tensor, rule):
            return "\(path): tensor '\(tensor)': \(rule)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)': unsupported dtype \(dtype)"
        case let .unsupportedTensor(path, tensor, kind):
            return "\(path): tensor '\(tensor)': \(kind) are not supported"
        case let .duplicateName(path, name):
            return "\(path): duplicate name '\(name)' after flattening"
        case let .badStructure(path, rule):
            return "\(path): \(rule)"
        case let .legacy(path, offset, rule):
            return "\(path): legacy format offset \(offset): \(rule)"
        case let .cannotWrite(path, tensor, rule):
            return "\(path): \(tensor.isEmpty ? "" : "tensor '\(tensor)': ")\(rule)"
        }
    }
}
