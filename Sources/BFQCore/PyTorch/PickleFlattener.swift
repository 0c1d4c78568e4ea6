/// Turns the unpickled object into named tensors and string metadata.
///
/// Rules:
/// - A top-level dict holding a dict under `state_dict` is unwrapped, repeatedly (`{"state_dict": {"state_dict": …}}`);
///   tensors come from the innermost one. Scalars beside a `state_dict` become metadata; tensors beside it
///   (optimizer states, callback scores) are skipped with one warning.
/// - Nested dicts are flattened with "." (`{"unet": {"conv": {"weight": t}}}` → `unet.conv.weight`); lists and tuples
///   contribute their index (`blocks.0`). Dict keys may be str, int or bool; other keys are skipped with a warning.
/// - Scalars become metadata strings: ints in decimal, floats as Python's `repr`, bools as `True`/`False`, str as is.
///   None, bytes, sets and opaque objects are ignored.
/// - Two entries flattening to the same name are an error.
struct PickleFlattener {
    static let depthLimit = 100
    static let visitLimit = 4_000_000

    let path: String
    /// Size of the file: no tensor may need more bytes written out than the file holds (see `tensorEntry`).
    let fileSize: Int
    let arena: PickleArena
    var tensors: [TensorEntry] = []
    var metadata: [String: String] = [:]
    var warnings: [String] = []
    private var names: Set<String> = []
    private var visits = 0
    private var active: Set<Int> = []
    private var skippedTensors = 0
    private var firstSkipped = ""
    private var badKeys = 0

    init(path: String, fileSize: Int, arena: PickleArena) {
        self.path = path
        self.fileSize = fileSize
        self.arena = arena
    }

    mutating func flatten(_ root: PickleValue) throws {
        switch root {
        case .dict, .list, .tuple: break
        default: throw PyTorchError.badStructure(path: path, rule: "top-level object is a \(root.kindName), not a dict of tensors")
        }
        var level = root
        var prefix = ""
        var unwrapped = 0
        while case let .dict(d) = level, let inner = arena.dicts[d].first(where: { isStateDict($0) }) {
            unwrapped += 1
            guard unwrapped <= PickleFlattener.depthLimit else {
                throw PyTorchError.badStructure(path: path, rule: "state_dict nested deeper than \(PickleFlattener.depthLimit) levels")
            }
            for item in arena.dicts[d] where !isStateDict(item) {
                try walkItem(key: item.key, value: item.value, prefix: prefix, depth: 1, tensors: false)
            }
            level = inner.value
            prefix = ""
        }
        try walk(level, name: prefix, depth: 0, tensors: true)
        if skippedTensors > 0 {
            warnings.append("\(path): skipped \(skippedTensors) tensor(s) outside state_dict (e.g. '\(firstSkipped)')")
        }
        if badKeys > 0 {
            warnings.append("\(path): skipped \(badKeys) dict entr\(badKeys == 1 ? "y" : "ies") whose key is not a str or int")
        }
    }

    private func isStateDict(_ item: (key: PickleValue, value: PickleValue)) -> Bool {
        guard case let .string(key) = item.key, key == "state_dict", case .dict = item.value else { return false }
        return true
    }

    private mutating func walkItem(key: PickleValue, value: PickleValue, prefix: String, depth: Int, tensors: Bool) throws {
        let text: String
        switch key {
        case let .string(s): text = s
        case let .int(v): text = String(v)
        case let .bool(b): text = b ? "True" : "False"
        default:
            badKeys += 1
            return
        }
        try walk(value, name: prefix.isEmpty ? text : prefix + "." + text, depth: depth, tensors: tensors)
    }

    private mutating func walk(_ value: PickleValue, name: String, depth: Int, tensors collect: Bool) throws {
        visits += 1
        guard visits <= PickleFlattener.visitLimit else {
            throw PyTorchError.badStructure(path: path, rule: "object graph needs over \(PickleFlattener.visitLimit) visits (shared containers?)")
        }
        guard depth <= PickleFlattener.depthLimit else {
            throw PyTorchError.badStructure(path: path, rule: "nesting deeper than \(PickleFlattener.depthLimit) levels at '\(name)'")
        }
        switch value {
        case let .tensor(t):
            if collect {
                try add(name)
                tensors.append(try entry(named: name, arena.tensors[t]))
            } else {
                if skippedTensors == 0 { firstSkipped = name }
                skippedTensors += 1
            }
        case let .dict(d):
            guard enter(0, d, name) else { return }
            defer { active.remove(d << 2) }
            for item in arena.dicts[d] {
                try walkItem(key: item.key, value: item.value, prefix: name, depth: depth + 1, tensors: collect)
            }
        case let .list(l):
            guard enter(1, l, name) else { return }
            defer { active.remove(l << 2 | 1) }
            for (i, item) in arena.lists[l].enumerated() {
                try walk(item, name: name.isEmpty ? String(i) : "\(name).\(i)", depth: depth + 1, tensors: collect)
            }
        case let .tuple(t):
            for (i, item) in arena.tuples[t].enumerated() {  // tuples cannot contain themselves
                try walk(item, name: name.isEmpty ? String(i) : "\(name).\(i)", depth: depth + 1, tensors: collect)
            }
        case let .bool(b): try addMetadata(name, b ? "True" : "False")
        case .int, .bigInt: try addMetadata(name, arena.decimal(value) ?? "")
        case let .float(f): try addMetadata(name, PickleFlattener.pythonRepr(f))
        case let .string(s): try addMetadata(name, s)
        case .none, .bytes, .set, .global, .object, .storage: break
        }
    }

    /// Marks a mutable container as being walked; false (with a warning) when it contains itself.
    private mutating func enter(_ kind: Int, _ index: Int, _ name: String) -> Bool {
        guard active.insert(index << 2 | kind).inserted else {
            warnings.append("\(path): '\(name)' contains itself; the cycle was skipped")
            return false
        }
        return true
    }

    private mutating func add(_ name: String) throws {
        guard names.insert(name).inserted else { throw PyTorchError.duplicateName(path: path, name: name) }
    }

    private mutating func addMetadata(_ name: String, _ value: String) throws {
        try add(name)
        metadata[name] = value
    }

    /// Validates a rebuilt tensor against its storage and makes the entry.
    private func entry(named name: String, _ tensor: PickleTensor) throws -> TensorEntry {
        func fail(_ rule: String) -> PyTorchError { .badTensor(path: path, tensor: name, rule: rule) }
        guard let dtype = tensor.dtype.dtype else {
            throw PyTorchError.unsupportedDType(path: path, tensor: name, dtype: tensor.dtype.name)
        }
        let storage = arena.storages[tensor.storage]
        guard let bytes = storage.bytes else { throw fail("storage '\(storage.key)' has no data") }
        guard tensor.shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative size in shape \(tensor.shape)") }
        guard tensor.strides.count == tensor.shape.count else {
            throw fail("shape \(tensor.shape) has \(tensor.shape.count) dimensions but stride \(tensor.strides) has \(tensor.strides.count)")
        }
        guard tensor.strides.allSatisfy({ $0 >= 0 }) else { throw fail("negative stride in \(tensor.strides)") }
        guard tensor.storageOffset >= 0 else { throw fail("negative storage offset \(tensor.storageOffset)") }
        var elements = 1
        for size in tensor.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow else { throw fail("shape \(tensor.shape) overflows") }
            elements = product
        }
        guard !elements.multipliedReportingOverflow(by: dtype.byteSize).overflow else { throw fail("shape \(tensor.shape) overflows") }
        let storageElements = bytes.count / dtype.byteSize
        guard StridedGather.fits(shape: tensor.shape, strides: tensor.strides, storageOffset: tensor.storageOffset,
                                 storageElements: storageElements) else {
            throw fail("view (offset \(tensor.storageOffset), shape \(tensor.shape), stride \(tensor.strides)) reaches past the end of storage '\(storage.key)' (\(storageElements) elements)")
        }
        // A view inside its storage is no larger than the file unless its elements overlap (stride 0, as expand()
        // makes); cap those at the file's size, so a few stored bytes cannot demand an unbounded contiguous copy.
        guard elements * dtype.byteSize <= fileSize else {
            throw fail("view (shape \(tensor.shape), stride \(tensor.strides)) repeats its storage into \(elements * dtype.byteSize) bytes, more than the \(fileSize)-byte file")
        }
        return TensorEntry(name: name, dtype: dtype, shape: tensor.shape, storage: bytes,
                           storageOffset: tensor.storageOffset, strides: tensor.strides)
    }

    /// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents -4 ..< 16.
    static func pythonRepr(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        let swift = value.description
        guard let e = swift.firstIndex(where: { $0 == "e" }) else { return swift }
        guard let exponent = Int(swift[swift.index(after: e)...]) else { return swift }
        var mantissa = swift[..<e]
        let negative = mantissa.hasPrefix("-")
        if negative { mantissa = mantissa.dropFirst() }
        let digits = mantissa.filter { $0 != "." }
        let sign = negative ? "-" : ""
        if exponent >= -4 && exponent < 16 {
            if exponent < 0 { return sign + "0." + String(repeating: "0", count: -exponent - 1) + digits }
            let whole = digits.count > exponent + 1 ? String(digits.prefix(exponent + 1)) : digits + String(repeating: "0", count: exponent + 1 - digits.count)
            let fraction = digits.count > exponent + 1 ? String(digits.dropFirst(exponent + 1)) : "0"
            return sign + whole + "." + fraction
        }
        return swift
    }
}
