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
/// - Two entries flattening to the same name are an error, and so is a tensor of a kind bfq does not model.
/// - Hostile sharing is bounded: a name may not exceed `nameLimit` bytes, tensor names `tensorNameBytesLimit` bytes
///   in all; metadata beyond `metadataLimit` entries or `metadataBytesLimit` bytes is dropped with one warning.
///   Names are built only for what is kept, so a walk costs at most `visitLimit` cheap steps.
struct PickleFlattener {
    static let depthLimit = 100
    static let visitLimit = 1_000_000
    static let nameLimit = 4096
    static let tensorNameBytesLimit = 64 << 20
    static let metadataLimit = 65_536
    static let metadataBytesLimit = 16 << 20

    let path: String
    /// Size of the file: no tensor may need more bytes written out than the file holds (see `tensorEntry`).
    let fileSize: Int
    let arena: PickleArena
    var tensors: [TensorEntry] = []
    var metadata: [String: String] = [:]
    var warnings: [String] = []
    private var names: Set<String> = []
    /// The keys leading to the value being walked, and the length of their dotted name.
    private var keys: [String] = []
    private var keyBytes = 0
    private var visits = 0
    private var active: Set<Int> = []
    private var decimals: [Int: String] = [:]
    private var tensorNameBytes = 0
    private var metadataBytes = 0
    private var droppedMetadata = 0
    private var skippedTensors = 0
    private var firstSkipped = ""
    private var cycles = 0
    private var firstCycle = ""
    private var badKeys = 0

    init(path: String, fileSize: Int, arena: PickleArena) {
        self.path = path
        self.fileSize = fileSize
        self.arena = arena
    }

    private var name: String { keys.joined(separator: ".") }

    mutating func flatten(_ root: PickleValue) throws {
        switch root {
        case .dict, .list, .tuple: break
        case let .object(g):
            let source = g >= 0 ? " built by '\(arena.globals[g].qualifiedName)'" : ""
            throw PyTorchError.badStructure(path: path, rule: "top-level object is an object\(source), not a dict of tensors; for a whole nn.Module, save model.state_dict() instead")
        default: throw PyTorchError.badStructure(path: path, rule: "top-level object is \(root.kind), not a dict of tensors")
        }
        var level = root
        var unwrapped = 0
        while case let .dict(d) = level, let inner = arena.dicts[d].first(where: { isStateDict($0) }) {
            unwrapped += 1
            guard unwrapped <= PickleFlattener.depthLimit else {
                throw PyTorchError.badStructure(path: path, rule: "state_dict nested deeper than \(PickleFlattener.depthLimit) levels")
            }
            for item in arena.dicts[d] where !isStateDict(item) {
                try walkItem(key: item.key, value: item.value, depth: 1, tensors: false)
            }
            level = inner.value
        }
        try walk(level, depth: 0, tensors: true)
        if skippedTensors > 0 {
            warnings.append("\(path): skipped \(skippedTensors) tensor(s) outside state_dict (e.g. '\(firstSkipped)')")
        }
        if badKeys > 0 {
            warnings.append("\(path): skipped \(badKeys) dict entr\(badKeys == 1 ? "y" : "ies") whose key is not a str or int")
        }
        if cycles > 0 {
            warnings.append("\(path): '\(firstCycle)' contains itself; the cycle was skipped\(cycles > 1 ? " (and \(cycles - 1) more)" : "")")
        }
        if droppedMetadata > 0 {
            warnings.append("\(path): dropped \(droppedMetadata) metadata value(s) beyond \(PickleFlattener.metadataLimit) entries or \(PickleFlattener.metadataBytesLimit >> 20) MB")
        }
    }

    private func isStateDict(_ item: (key: PickleValue, value: PickleValue)) -> Bool {
        guard case let .string(key) = item.key, key == "state_dict", case .dict = item.value else { return false }
        return true
    }

    private mutating func walkItem(key: PickleValue, value: PickleValue, depth: Int, tensors: Bool) throws {
        let text: String
        switch key {
        case let .string(s): text = s
        case let .int(v): text = String(v)
        case let .bool(b): text = b ? "True" : "False"
        default:
            badKeys += 1
            return
        }
        try walk(value, key: text, depth: depth, tensors: tensors)
    }

    /// Walks `value` under `key` appended to the current keys.
    private mutating func walk(_ value: PickleValue, key: String, depth: Int, tensors collect: Bool) throws {
        let added = key.utf8.count + (keys.isEmpty ? 0 : 1)
        guard keyBytes + added <= PickleFlattener.nameLimit else {
            let long = (keys + [key]).joined(separator: ".")
            throw PyTorchError.badStructure(path: path, rule: "name '\(String(decoding: long.utf8.prefix(80), as: UTF8.self))…' is longer than \(PickleFlattener.nameLimit) bytes")
        }
        keys.append(key)
        keyBytes += added
        defer {
            keys.removeLast()
            keyBytes -= added
        }
        try walk(value, depth: depth, tensors: collect)
    }

    private mutating func walk(_ value: PickleValue, depth: Int, tensors collect: Bool) throws {
        visits += 1
        guard visits <= PickleFlattener.visitLimit else {
            throw PyTorchError.badStructure(path: path, rule: "object graph needs over \(PickleFlattener.visitLimit) visits (shared containers?)")
        }
        guard depth <= PickleFlattener.depthLimit else {
            throw PyTorchError.badStructure(path: path, rule: "nesting deeper than \(PickleFlattener.depthLimit) levels at '\(name)'")
        }
        switch value {
        case let .tensor(t):
            guard collect else { return skipTensor() }
            tensorNameBytes += keyBytes
            guard tensorNameBytes <= PickleFlattener.tensorNameBytesLimit else {
                throw PyTorchError.badStructure(path: path, rule: "tensor names take over \(PickleFlattener.tensorNameBytesLimit >> 20) MB (shared tensors?)")
            }
            let name = self.name
            try add(name)
            tensors.append(try entry(named: name, arena.tensors[t]))
        case let .unsupportedTensor(g):
            guard collect else { return skipTensor() }
            throw PyTorchError.unsupportedTensor(path: path, tensor: name, kind: arena.globals[g].unsupportedTensorKind)
        case let .dict(d):
            guard enter(0, d) else { return }
            defer { active.remove(d << 2) }
            for item in arena.dicts[d] {
                try walkItem(key: item.key, value: item.value, depth: depth + 1, tensors: collect)
            }
        case let .list(l):
            guard enter(1, l) else { return }
            defer { active.remove(l << 2 | 1) }
            for (i, item) in arena.lists[l].enumerated() {
                try walk(item, key: String(i), depth: depth + 1, tensors: collect)
            }
        case let .tuple(t):
            for (i, item) in arena.tuples[t].enumerated() {  // tuples cannot contain themselves
                try walk(item, key: String(i), depth: depth + 1, tensors: collect)
            }
        case let .bool(b): try addMetadata(b ? "True" : "False")
        case let .int(v): try addMetadata(String(v))
        case let .bigInt(i): try addMetadata(decimal(i))
        case let .float(f): try addMetadata(PickleFlattener.pythonRepr(f))
        case let .string(s): try addMetadata(s)
        case .none, .bytes, .set, .global, .object, .storage: break
        }
    }

    private mutating func skipTensor() {
        if skippedTensors == 0 { firstSkipped = name }
        skippedTensors += 1
    }

    /// Marks a mutable container as being walked; false (counted for one warning) when it contains itself.
    private mutating func enter(_ kind: Int, _ index: Int) -> Bool {
        guard active.insert(index << 2 | kind).inserted else {
            if cycles == 0 { firstCycle = name }
            cycles += 1
            return false
        }
        return true
    }

    private mutating func add(_ name: String) throws {
        guard names.insert(name).inserted else { throw PyTorchError.duplicateName(path: path, name: name) }
    }

    /// Adds metadata under the current name; from the first value past the caps on, values are counted and dropped.
    private mutating func addMetadata(_ text: String) throws {
        guard droppedMetadata == 0, metadata.count < PickleFlattener.metadataLimit else {
            droppedMetadata += 1
            return
        }
        let name = self.name
        let size = name.utf8.count + text.utf8.count
        guard metadataBytes + size <= PickleFlattener.metadataBytesLimit else {
            droppedMetadata += 1
            return
        }
        try add(name)
        metadata[name] = text
        metadataBytes += size
    }

    /// The decimal text of big integer `index`, rendered once however often it is referenced.
    private mutating func decimal(_ index: Int) -> String {
        if let text = decimals[index] { return text }
        let text = PickleArena.decimal(littleEndian: arena.bigInts[index])
        decimals[index] = text
        return text
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
