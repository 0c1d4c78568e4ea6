/// What REDUCE, NEWOBJ, INST, OBJ, GLOBAL and BINPERSID do: the modelled torch globals and storages.
extension PickleMachine {
    static let globalLimit = 10_000

    /// Resolves a global once: refuses dangerous ones, warns (once) about unknown ones.
    mutating func global(module: String, name: String) throws -> PickleValue {
        let key = module + "\n" + name
        if let index = globalIndex[key] { return .global(index) }
        let qualified = "\(module).\(name)"
        switch PickleGlobal.classify(module: module, name: name) {
        case let .failure(forbidden):
            throw PyTorchError.forbiddenGlobal(path: path, part: part, offset: opOffset - reportBase,
                                               global: qualified, reason: forbidden.reason)
        case let .success(kind):
            guard arena.globals.count < PickleMachine.globalLimit else { throw limit("distinct globals", PickleMachine.globalLimit) }
            arena.globals.append(PickleGlobal(module: module, name: name, kind: kind))
            globalIndex[key] = arena.globals.count - 1
            if kind == .unknown {
                warnings.append("\(path): \(part) offset \(opOffset - reportBase): unknown global '\(qualified)' read as an opaque placeholder")
            }
            return .global(arena.globals.count - 1)
        }
    }

    /// Applies a callable to arguments without executing anything.
    mutating func call(_ callable: PickleValue, args: [PickleValue], _ op: UInt8) throws -> PickleValue {
        let g: Int
        switch callable {
        case let .global(index): g = index
        case .object: return callable  // calling a placeholder gives a placeholder
        default: throw malformed(op, "\(callable.kind) is not callable")
        }
        switch arena.globals[g].kind {
        case .orderedDict, .builtinDict:
            guard let source = args.first else { return try newDict([]) }
            var pairs: [(PickleValue, PickleValue)] = []
            switch source {
            case let .dict(d): pairs = arena.dicts[d].map { ($0.key, $0.value) }
            case let .list(l), let .tuple(l):
                let items = source.isList ? arena.lists[l] : arena.tuples[l]
                for item in items {
                    guard case let .tuple(t) = item, arena.tuples[t].count == 2 else { throw malformed(op, "dict items must be pairs") }
                    pairs.append((arena.tuples[t][0], arena.tuples[t][1]))
                }
            default: throw malformed(op, "cannot build a dict from \(source.kind)")
            }
            return try newDict(pairs)
        case .builtinList, .builtinTuple:
            var items: [PickleValue] = []
            if let source = args.first {
                switch source {
                case let .list(l): items = arena.lists[l]
                case let .tuple(t): items = arena.tuples[t]
                default: return .object(g)
                }
            }
            return arena.globals[g].kind == .builtinList ? try newList(items) : try newTuple(items)
        case .builtinSet:
            return try newSet()
        case .builtinBytearray:
            if case let .bytes(b)? = args.first { return try newBytes(arena.byteStrings[b]) }
            return try newBytes(args.isEmpty ? [] : nil)
        case .codecsEncode:  // protocol 2 writes bytes as _codecs.encode(str, 'latin1')
            guard case let .string(text)? = args.first else { throw malformed(op, "_codecs.encode needs a str") }
            let encoding = args.count > 1 ? args[1] : .string("utf-8")
            guard case let .string(name) = encoding else { throw malformed(op, "_codecs.encode encoding must be a str") }
            if name == "latin1" || name == "latin-1" || name == "iso-8859-1" {
                var raw: [UInt8] = []
                for scalar in text.unicodeScalars {
                    guard scalar.value < 256 else { throw malformed(op, "character U+\(String(scalar.value, radix: 16)) is not latin-1") }
                    raw.append(UInt8(scalar.value))
                }
                return try newBytes(raw.count <= PickleMachine.savedBytesLimit ? raw : nil)
            }
            let raw = Array(text.utf8)
            return try newBytes(raw.count <= PickleMachine.savedBytesLimit ? raw : nil)
        case .torchSize:
            guard let source = args.first else { return try newTuple([]) }
            switch source {
            case let .tuple(t): return try newTuple(arena.tuples[t])
            case let .list(l): return try newTuple(arena.lists[l])
            default: throw malformed(op, "torch.Size needs a tuple, found \(source.kind)")
            }
        case .rebuildTensorV2: return try rebuildTensor(args, version: 2, op)
        case .rebuildTensorV3: return try rebuildTensor(args, version: 3, op)
        case .rebuildParameter, .rebuildParameterWithState:
            guard let data = args.first else { throw malformed(op, "\(arena.globals[g].name) needs a tensor") }
            switch data {
            case .tensor, .unsupportedTensor, .object: return data
            default: throw malformed(op, "\(arena.globals[g].name) needs a tensor, found \(data.kind)")
            }
        case .rebuildFromTypeV2:  // (func, new_type, args, state): only rebuild functions are applied
            guard args.count == 4, case let .global(f) = args[0], case let .tuple(inner) = args[2] else {
                throw malformed(op, "_rebuild_from_type_v2 needs (function, type, args, state)")
            }
            switch arena.globals[f].kind {
            case .rebuildTensorV2, .rebuildTensorV3, .rebuildParameter, .rebuildParameterWithState, .unsupportedTensor:
                return try call(args[0], args: arena.tuples[inner], op)
            default: return .object(f)
            }
        case .unsupportedTensor:
            return .unsupportedTensor(g)
        case .torchDevice, .storageClass, .untypedStorage, .dtype, .tensorClass, .unknown:
            return .object(g)
        }
    }

    private mutating func rebuildTensor(_ args: [PickleValue], version: Int, _ op: UInt8) throws -> PickleValue {
        let function = version == 2 ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3"
        let minimum = version == 2 ? 6 : 7
        guard args.count == minimum || args.count == minimum + 1 else {
            throw malformed(op, "\(function) takes \(minimum) or \(minimum + 1) arguments, found \(args.count)")
        }
        guard case let .storage(storage) = args[0] else { throw malformed(op, "\(function) argument 1 is \(args[0].kind), not a storage") }
        guard case let .int(offset) = args[1] else { throw malformed(op, "\(function) storage offset is \(args[1].kind), not an int") }
        guard let shape = ints(args[2]) else { throw malformed(op, "\(function) size is not a tuple of ints") }
        guard let strides = ints(args[3]) else { throw malformed(op, "\(function) stride is not a tuple of ints") }
        var dtype = arena.storages[storage].dtype
        if version == 3 {
            guard case let .global(d) = args[6], case let .dtype(type) = arena.globals[d].kind else {
                throw malformed(op, "\(function) argument 7 is not a torch dtype")
            }
            dtype = type
        }
        try checkObjects()
        arena.tensors.append(PickleTensor(storage: storage, storageOffset: offset, shape: shape, strides: strides,
                                          dtype: dtype, offset: opOffset - reportBase))
        return .tensor(arena.tensors.count - 1)
    }

    private func ints(_ value: PickleValue) -> [Int]? {
        let items: [PickleValue]
        switch value {
        case let .tuple(t): items = arena.tuples[t]
        case let .list(l): items = arena.lists[l]
        default: return nil
        }
        var result: [Int] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard case let .int(v) = item else { return nil }
            result.append(v)
        }
        return result
    }

    /// Text of a str, or of ASCII bytes (Python 2 files), or of an int.
    func text(_ value: PickleValue) -> String? {
        switch value {
        case let .string(s): return s
        case let .bytes(b): return String(validating: arena.byteStrings[b], as: UTF8.self)
        case let .int(v): return String(v)
        default: return nil
        }
    }

    /// Resolves ('storage', type, key, location, numel[, view_metadata]) to a storage.
    mutating func persistentLoad(_ pid: PickleValue, _ op: UInt8) throws -> PickleValue {
        let legacy: Bool
        switch storages {
        case .refuse: throw malformed(op, "persistent ids are not expected here")
        case .zip: legacy = false
        case .legacy: legacy = true
        }
        guard case let .tuple(t) = pid, let first = arena.tuples[t].first, let typename = text(first) else {
            throw malformed(op, "persistent id is \(pid.kind), not a tuple starting with a name")
        }
        let fields = arena.tuples[t]
        if typename == "module", legacy { return .object(-1) }  // a pickled nn.Module class (legacy full-model saves)
        guard typename == "storage" else { throw malformed(op, "persistent id kind '\(typename)' is not 'storage'") }
        guard fields.count == (legacy ? 6 : 5) else {
            throw malformed(op, "storage persistent id has \(fields.count) fields, expected \(legacy ? 6 : 5)")
        }
        let dtype: TorchDType
        switch fields[1] {
        case let .global(g):
            switch arena.globals[g].kind {
            case let .storageClass(d), let .dtype(d): dtype = d
            case .untypedStorage: dtype = TorchDType(name: "torch.UntypedStorage", dtype: .u8, elementSize: 1)
            default: throw malformed(op, "storage type '\(arena.globals[g].qualifiedName)' is not a torch storage class")
            }
        default: throw malformed(op, "storage type is \(fields[1].kind), not a storage class")
        }
        guard let key = text(fields[2]) else { throw malformed(op, "storage key is \(fields[2].kind)") }
        guard case let .int(numel) = fields[4], numel >= 0 else {
            throw PyTorchError.badStorage(path: path, key: key, rule: "element count is not a non-negative int")
        }
        if legacy {
            var view: (Int, Int)?
            switch fields[5] {
            case .none: view = nil
            case let .tuple(v) where arena.tuples[v].count == 3:
                guard case let .int(offset) = arena.tuples[v][1], case let .int(count) = arena.tuples[v][2], offset >= 0, count >= 0 else {
                    throw PyTorchError.badStorage(path: path, key: key, rule: "view metadata offset and size must be non-negative ints")
                }
                view = (offset, count)
            default: throw PyTorchError.badStorage(path: path, key: key, rule: "view metadata is not None or (key, offset, size)")
            }
            try checkObjects()
            arena.storages.append(PickleStorage(key: key, dtype: dtype, elementCount: numel, bytes: nil, view: view))
            return .storage(arena.storages.count - 1)
        }
        let cacheKey = key + "\n" + dtype.name
        if let index = storageIndex[cacheKey] {
            guard arena.storages[index].elementCount == numel else {
                throw PyTorchError.badStorage(path: path, key: key, rule: "referenced with \(arena.storages[index].elementCount) and \(numel) elements")
            }
            return .storage(index)
        }
        guard case let .zip(archive, root) = storages else { throw malformed(op, "no archive") }
        let recordName = "\(root)/data/\(key)"
        guard let entry = archive.entry(named: recordName) else {
            throw PyTorchError.badStorage(path: path, key: key, rule: "no record '\(recordName)' in the archive")
        }
        let range = try archive.dataRange(of: entry)
        if let size = dtype.elementSize {
            let (expected, overflow) = numel.multipliedReportingOverflow(by: size)
            guard !overflow, expected == range.count else {
                throw PyTorchError.badStorage(path: path, key: key,
                                              rule: "declares \(numel) elements of \(size) bytes but its record holds \(range.count) bytes")
            }
        }
        try checkObjects()
        arena.storages.append(PickleStorage(key: key, dtype: dtype, elementCount: numel, bytes: range, view: nil))
        storageIndex[cacheKey] = arena.storages.count - 1
        return .storage(arena.storages.count - 1)
    }
}

extension PickleValue {
    var isList: Bool { if case .list = self { return true } else { return false } }
}
