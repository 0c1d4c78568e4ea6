/// A pickle interpreter (protocols 0 to 5) that executes nothing.
///
/// It builds `PickleValue`s in an arena; known torch globals are modelled (see `PickleMachine+Calls.swift`),
/// dangerous globals refuse the file, other globals become placeholders. Every length an opcode declares is
/// checked against the bytes remaining before anything is allocated, and the stack, memo, marks and object
/// count are capped. What the objects built take in memory is estimated as they are built and held to 16 times the
/// size of the bytes it reads (the file) plus 64 MiB: a one-byte opcode can make a container of a hundred bytes.
/// Each opcode consumes at least one byte, so the loop always ends.
struct PickleMachine {
    static let stackLimit = 1 << 20
    static let markLimit = 1 << 16
    static let memoLimit = 1 << 24
    static let objectLimit = 1 << 24
    static let savedBytesLimit = 1024
    /// Estimated bytes per container or object built, per item put in one, and per memo entry (measured upper
    /// bounds, with the arrays' growth).
    static let objectCost = 64, itemCost = 32, memoCost = 48
    /// Integers wider than this many bytes are ignored (with one warning): rendering one is quadratic in its width.
    static let bigIntLimit = 64

    /// How persistent ids (storages) are resolved.
    enum Storages {
        case refuse
        case zip(ZipArchive, root: String)
        case legacy
    }

    let path: String
    var part: String
    let bytes: UnsafeRawBufferPointer
    /// Subtracted from file offsets in messages (the start of data.pkl, or 0 for absolute offsets).
    var reportBase: Int
    var storages: Storages
    var arena = PickleArena()
    var warnings: [String] = []
    var globalIndex: [String: Int] = [:]
    var warnedGlobals: Set<Int> = []
    var storageIndex: [String: Int] = [:]
    var warnedWideInt = false

    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [PickleValue?] = []
    var sparseMemo: [Int: PickleValue] = [:]
    var memoCount = 0
    /// Estimated bytes the arena and memo take, and the most they may take.
    var estimatedMemory = 0
    let memoryBudget: Int
    /// Offset of the opcode being executed.
    var opOffset = 0

    init(path: String, part: String, bytes: UnsafeRawBufferPointer, reportBase: Int, storages: Storages) {
        self.path = path
        self.part = part
        self.bytes = bytes
        self.reportBase = reportBase
        self.storages = storages
        memoryBudget = 16 * bytes.count + (64 << 20)
        stack.reserveCapacity(4096)
    }

    // MARK: - Errors

    func malformed(_ opcode: UInt8, _ rule: String) -> PyTorchError {
        .malformedPickle(path: path, part: part, offset: opOffset - reportBase, opcode: PickleMachine.name(of: opcode), rule: rule)
    }

    func limit(_ what: String, _ limit: Int) -> PyTorchError {
        .limitExceeded(path: path, part: part, offset: opOffset - reportBase, what: what, limit: limit)
    }

    // MARK: - Running

    /// Runs one pickle starting at `start` up to (not past) `end`; returns the object and the offset after STOP.
    mutating func run(from start: Int, to end: Int) throws -> (value: PickleValue, next: Int) {
        stack.removeAll(keepingCapacity: true)
        marks.removeAll()
        memo.removeAll()
        sparseMemo.removeAll()
        memoCount = 0
        var pos = start

        @inline(__always) func take(_ count: Int, _ op: UInt8) throws -> Int {
            guard count >= 0, count <= end - pos else {
                throw PyTorchError.truncated(path: path, part: part, offset: opOffset - reportBase,
                                             opcode: PickleMachine.name(of: op), needed: UInt64(clamping: count), remaining: end - pos)
            }
            defer { pos += count }
            return pos
        }
        /// An unsigned 8-byte length operand, checked against the bytes remaining after it.
        func length64(_ op: UInt8) throws -> Int {
            let count = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, op), as: UInt64.self))
            guard count <= UInt64(end - pos) else {
                throw PyTorchError.truncated(path: path, part: part, offset: opOffset - reportBase,
                                             opcode: PickleMachine.name(of: op), needed: count, remaining: end - pos)
            }
            return Int(count)
        }
        func line(_ op: UInt8) throws -> Substring {
            Substring(String(decoding: try lineBytes(op), as: UTF8.self))
        }
        func lineBytes(_ op: UInt8) throws -> UnsafeRawBufferPointer {
            var cursor = pos
            while cursor < end, bytes[cursor] != 0x0A { cursor += 1 }
            guard cursor < end else {
                throw PyTorchError.truncated(path: path, part: part, offset: opOffset - reportBase,
                                             opcode: PickleMachine.name(of: op), needed: UInt64(cursor - pos + 1), remaining: end - pos)
            }
            let text = UnsafeRawBufferPointer(rebasing: bytes[pos ..< cursor])
            pos = cursor + 1
            return text
        }

        while pos < end {
            opOffset = pos
            let op = bytes[pos]
            pos += 1
            switch op {
            case 0x80:  // PROTO
                let version = bytes[try take(1, op)]
                guard version <= 5 else {
                    throw PyTorchError.unsupportedOpcode(path: path, part: part, offset: opOffset - reportBase,
                                                         opcode: "PROTO", reason: "protocol \(version) is newer than 5")
                }
            case 0x95:  // FRAME: a length hint; only check it.
                _ = try length64(op)
            case 0x2E:  // STOP
                let value = try pop(op)
                return (value, pos)
            case 0x28:  // MARK
                guard marks.count < PickleMachine.markLimit else { throw limit("mark depth", PickleMachine.markLimit) }
                marks.append(stack.count)
            case 0x30:  // POP
                if stack.count > (marks.last ?? 0) { stack.removeLast() } else if let mark = marks.popLast() {
                    stack.removeSubrange(mark...)  // CPython pops a mark when the stack above it is empty
                } else { throw malformed(op, "stack is empty") }
            case 0x31:  // POP_MARK
                _ = try popMark(op)
            case 0x32:  // DUP
                guard stack.count > (marks.last ?? 0), let top = stack.last else { throw malformed(op, "stack is empty") }
                try push(top)
            case 0x4E: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4B: try push(.int(Int(bytes[try take(1, op)])))  // BININT1
            case 0x4D: try push(.int(bytes.loadLE16(try take(2, op))))  // BININT2
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: bytes.loadLE32(try take(4, op))))))  // BININT
            case 0x8A:  // LONG1
                let count = Int(bytes[try take(1, op)])
                try push(try long(from: try take(count, op), count: count))
            case 0x8B:  // LONG4
                let count = Int(Int32(truncatingIfNeeded: bytes.loadLE32(try take(4, op))))
                guard count >= 0 else { throw malformed(op, "negative length \(count)") }
                try push(try long(from: try take(count, op), count: count))
            case 0x49, 0x4C:  // INT, LONG (text)
                var text = try line(op)
                if op == 0x49, text == "01" || text == "00" { try push(.bool(text == "01")); break }
                if op == 0x4C, text.hasSuffix("L") { text = text.dropLast() }
                if let value = Int(text) { try push(.int(value)); break }
                guard let big = PickleArena.littleEndian(decimal: text, maxBytes: PickleMachine.bigIntLimit) else {
                    throw malformed(op, "'\(text.prefix(40))' is not an integer")
                }
                try push(big.isEmpty ? wideInt() : try newBigInt(big))
            case 0x47:  // BINFLOAT (big-endian)
                let start = try take(8, op)
                try push(.float(Double(bitPattern: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self)))))
            case 0x46:  // FLOAT (text)
                let text = try line(op)
                guard let value = Double(text) else { throw malformed(op, "'\(text.prefix(40))' is not a float") }
                try push(.float(value))
            case 0x58, 0x8C, 0x8D:  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let count = op == 0x8C ? Int(bytes[try take(1, op)]) : op == 0x58 ? bytes.loadLE32(try take(4, op)) : try length64(op)
                let start = try take(count, op)
                guard let text = String(validating: bytes[start ..< start + count], as: UTF8.self) else {
                    throw malformed(op, "string is not valid UTF-8")
                }
                try push(.string(text))
            case 0x54, 0x55:  // BINSTRING, SHORT_BINSTRING (Python 2 str: UTF-8 text, else bytes)
                let count = op == 0x55 ? Int(bytes[try take(1, op)]) : Int(Int32(truncatingIfNeeded: bytes.loadLE32(try take(4, op))))
                guard count >= 0 else { throw malformed(op, "negative length \(count)") }
                let start = try take(count, op)
                try push(try textOrBytes(Array(bytes[start ..< start + min(count, 1 << 20)]), fullCount: count))
            case 0x53:  // STRING (quoted repr)
                guard let raw = PickleMachine.unquote(Array(try lineBytes(op))) else { throw malformed(op, "not a quoted string") }
                try push(try textOrBytes(raw, fullCount: raw.count))
            case 0x56:  // UNICODE (raw-unicode-escape)
                try push(.string(PickleMachine.rawUnicodeEscape(Array(try lineBytes(op)))))
            case 0x42, 0x43, 0x8E, 0x96:  // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                let count = op == 0x43 ? Int(bytes[try take(1, op)]) : op == 0x42 ? bytes.loadLE32(try take(4, op)) : try length64(op)
                let start = try take(count, op)
                try push(try newBytes(count <= PickleMachine.savedBytesLimit ? Array(bytes[start ..< start + count]) : nil))
            case 0x7D: try push(try newDict([]))  // EMPTY_DICT
            case 0x5D: try push(try newList([]))  // EMPTY_LIST
            case 0x29: try push(try newTuple([]))  // EMPTY_TUPLE
            case 0x8F: try push(try newSet())  // EMPTY_SET
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                let count = Int(op - 0x84)
                guard stack.count - (marks.last ?? 0) >= count else { throw malformed(op, "needs \(count) items on the stack") }
                try push(try newTuple(popTop(from: stack.count - count)))
            case 0x74: try push(try newTuple(try popMark(op)))  // TUPLE
            case 0x6C: try push(try newList(try popMark(op)))  // LIST
            case 0x64:  // DICT
                let items = try popMark(op)
                guard items.count % 2 == 0 else { throw malformed(op, "odd number of items") }
                try push(try newDict(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }))
            case 0x91:  // FROZENSET
                _ = try popMark(op)
                try push(try newSet())
            case 0x61:  // APPEND
                let item = try pop(op)
                try append([item], op)
            case 0x65:  // APPENDS
                let items = try popMark(op)
                try append(items, op)
            case 0x73:  // SETITEM
                let value = try pop(op), key = try pop(op)
                try setItems([key, value], op)
            case 0x75:  // SETITEMS
                let items = try popMark(op)
                guard items.count % 2 == 0 else { throw malformed(op, "odd number of items") }
                try setItems(items, op)
            case 0x90:  // ADDITEMS
                _ = try popMark(op)
                guard let top = stack.last else { throw malformed(op, "stack is empty") }
                switch top {
                case .set, .object: break
                default: throw malformed(op, "target is \(top.kind), not a set")
                }
            case 0x63:  // GLOBAL
                let module = try line(op), name = try line(op)
                try push(try global(module: String(module), name: String(name)))
            case 0x93:  // STACK_GLOBAL
                let name = try pop(op), module = try pop(op)
                guard case let .string(n) = name, case let .string(m) = module else {
                    throw malformed(op, "module and name must be strings, found \(module.kindName) and \(name.kindName)")
                }
                try push(try global(module: m, name: n))
            case 0x69:  // INST
                let module = try line(op), name = try line(op)
                let args = try popMark(op)
                let cls = try global(module: String(module), name: String(name))
                try push(try call(cls, args: args, op))
            case 0x6F:  // OBJ
                let items = try popMark(op)
                guard let cls = items.first else { throw malformed(op, "no class after MARK") }
                try push(try call(cls, args: Array(items.dropFirst()), op))
            case 0x52, 0x81:  // REDUCE, NEWOBJ
                let args = try pop(op), callable = try pop(op)
                guard case let .tuple(t) = args else { throw malformed(op, "arguments are \(args.kind), not a tuple") }
                try push(try call(callable, args: arena.tuples[t], op))
            case 0x92:  // NEWOBJ_EX (keyword arguments ignored)
                _ = try pop(op)
                let args = try pop(op), callable = try pop(op)
                guard case let .tuple(t) = args else { throw malformed(op, "arguments are \(args.kind), not a tuple") }
                try push(try call(callable, args: arena.tuples[t], op))
            case 0x62:  // BUILD: state is not applied to anything bfq models.
                _ = try pop(op)
                guard stack.count > (marks.last ?? 0) else { throw malformed(op, "no object to build") }
            case 0x51:  // BINPERSID
                let pid = try pop(op)
                try push(try persistentLoad(pid, op))
            case 0x50:  // PERSID
                let pid = try line(op)
                try push(try persistentLoad(.string(String(pid)), op))
            case 0x71: try memoize(Int(bytes[try take(1, op)]), op)  // BINPUT
            case 0x72: try memoize(bytes.loadLE32(try take(4, op)), op)  // LONG_BINPUT
            case 0x94: try memoize(memoCount, op)  // MEMOIZE
            case 0x70:  // PUT
                let text = try line(op)
                guard let index = Int(text), index >= 0 else { throw malformed(op, "bad memo index '\(text.prefix(40))'") }
                try memoize(index, op)
            case 0x68: try push(try memoGet(Int(bytes[try take(1, op)])))  // BINGET
            case 0x6A: try push(try memoGet(bytes.loadLE32(try take(4, op))))  // LONG_BINGET
            case 0x67:  // GET
                let text = try line(op)
                guard let index = Int(text), index >= 0 else { throw malformed(op, "bad memo index '\(text.prefix(40))'") }
                try push(try memoGet(index))
            case 0x82, 0x83, 0x84:
                throw PyTorchError.unsupportedOpcode(path: path, part: part, offset: opOffset - reportBase,
                                                     opcode: PickleMachine.name(of: op), reason: "the copyreg extension registry is not used by torch")
            case 0x97, 0x98:
                throw PyTorchError.unsupportedOpcode(path: path, part: part, offset: opOffset - reportBase,
                                                     opcode: PickleMachine.name(of: op), reason: "out-of-band buffers are not used by torch.save")
            default:
                throw PyTorchError.unknownOpcode(path: path, part: part, offset: opOffset - reportBase, byte: op)
            }
        }
        throw PyTorchError.missingStop(path: path, part: part, offset: end - reportBase)
    }

    // MARK: - Stack and memo

    @inline(__always) mutating func push(_ value: PickleValue) throws {
        guard stack.count < PickleMachine.stackLimit else { throw limit("stack size", PickleMachine.stackLimit) }
        stack.append(value)
    }

    @inline(__always) mutating func pop(_ op: UInt8) throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else {
            throw malformed(op, marks.isEmpty ? "stack is empty" : "stack is empty above the mark")
        }
        return stack.removeLast()
    }

    mutating func popMark(_ op: UInt8) throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw malformed(op, "no MARK on the stack") }
        return popTop(from: mark)
    }

    /// Removes and returns the stack's items from `start` on, in a buffer of their own: an `Array` made from a slice
    /// of the whole stack would share the stack's reserved buffer, one per container built.
    private mutating func popTop(from start: Int) -> [PickleValue] {
        var items: [PickleValue] = []
        items.reserveCapacity(stack.count - start)
        items.append(contentsOf: stack[start...])
        stack.removeSubrange(start...)
        return items
    }

    mutating func memoize(_ index: Int, _ op: UInt8) throws {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw malformed(op, "stack is empty") }
        if index < memo.count {
            if memo[index] == nil { memoCount += 1 }
            memo[index] = top
            return
        }
        guard memoCount < PickleMachine.memoLimit, index < Int(UInt32.max) else { throw limit("memo size", PickleMachine.memoLimit) }
        try charge(PickleMachine.memoCost)
        if index == memo.count {
            memo.append(top)
            memoCount += 1
        } else {
            if sparseMemo.updateValue(top, forKey: index) == nil { memoCount += 1 }
        }
    }

    func memoGet(_ index: Int) throws -> PickleValue {
        if index < memo.count, let value = memo[index] { return value }
        if let value = sparseMemo[index] { return value }
        throw PyTorchError.memoMissing(path: path, part: part, offset: opOffset - reportBase, index: index)
    }

    // MARK: - Building values

    /// Checks that one more object, holding `items` values, stays within the object count and the memory budget.
    mutating func checkObjects(items: Int = 0) throws {
        guard arena.objectCount < PickleMachine.objectLimit else { throw limit("object count", PickleMachine.objectLimit) }
        try charge(PickleMachine.objectCost + items * PickleMachine.itemCost)
    }

    /// Adds `bytes` to the estimated memory of what has been built; throws past the budget.
    mutating func charge(_ bytes: Int) throws {
        estimatedMemory += bytes
        guard estimatedMemory <= memoryBudget else {
            throw limit("estimated memory of the objects built (16 x the file's size + 64 MiB, in bytes)", memoryBudget)
        }
    }

    mutating func newList(_ items: [PickleValue]) throws -> PickleValue {
        try checkObjects(items: items.count)
        arena.lists.append(items)
        return .list(arena.lists.count - 1)
    }

    mutating func newTuple(_ items: [PickleValue]) throws -> PickleValue {
        try checkObjects(items: items.count)
        arena.tuples.append(items)
        return .tuple(arena.tuples.count - 1)
    }

    mutating func newDict(_ items: [(PickleValue, PickleValue)]) throws -> PickleValue {
        try checkObjects(items: 2 * items.count)
        arena.dicts.append(items.map { (key: $0.0, value: $0.1) })
        return .dict(arena.dicts.count - 1)
    }

    mutating func newSet() throws -> PickleValue {
        try checkObjects()
        arena.setCount += 1
        return .set(arena.setCount - 1)
    }

    /// Bytes kept only when short (they matter only as storage keys or locations); long ones are opaque.
    mutating func newBytes(_ content: [UInt8]?) throws -> PickleValue {
        guard let content else { return .object(-1) }
        try checkObjects()
        arena.byteStrings.append(content)
        return .bytes(arena.byteStrings.count - 1)
    }

    /// An integer from two's-complement little-endian bytes: an Int when it fits, else a big integer.
    mutating func newBigInt(_ littleEndian: [UInt8]) throws -> PickleValue {
        let digits = Array(littleEndian[..<PickleMachine.significantCount(littleEndian)])
        if digits.count <= 8 {
            var value: UInt64 = digits.last.map { $0 & 0x80 != 0 ? UInt64.max : 0 } ?? 0
            for (i, byte) in digits.enumerated() {
                value &= ~(UInt64(0xFF) << (8 * i))
                value |= UInt64(byte) << (8 * i)
            }
            return .int(Int(Int64(bitPattern: value)))
        }
        guard digits.count <= PickleMachine.bigIntLimit else { return wideInt() }
        try checkObjects()
        arena.bigInts.append(digits)
        return .bigInt(arena.bigInts.count - 1)
    }

    /// The LONG1/LONG4 operand at `start`; only its significant bytes are copied.
    mutating func long(from start: Int, count: Int) throws -> PickleValue {
        if count == 0 { return .int(0) }
        let operand = UnsafeRawBufferPointer(rebasing: bytes[start ..< start + count])
        let significant = PickleMachine.significantCount(operand)
        guard significant <= PickleMachine.bigIntLimit else { return wideInt() }
        return try newBigInt(Array(operand[..<significant]))
    }

    /// How many of the two's-complement little-endian bytes remain once redundant sign bytes are dropped.
    static func significantCount<C: RandomAccessCollection>(_ bytes: C) -> Int where C.Element == UInt8, C.Index == Int {
        var count = bytes.count
        while count > 1 {
            let last = bytes[bytes.startIndex + count - 1], next = bytes[bytes.startIndex + count - 2]
            guard (last == 0 && next & 0x80 == 0) || (last == 0xFF && next & 0x80 != 0) else { break }
            count -= 1
        }
        return count
    }

    /// An integer wider than `bigIntLimit` bytes: ignored, with one warning per file.
    mutating func wideInt() -> PickleValue {
        if !warnedWideInt {
            warnedWideInt = true
            warnings.append("\(path): \(part) offset \(opOffset - reportBase): integers wider than \(PickleMachine.bigIntLimit) bytes are ignored")
        }
        return .object(-1)
    }

    mutating func textOrBytes(_ raw: [UInt8], fullCount: Int) throws -> PickleValue {
        if raw.count == fullCount, let text = String(validating: raw, as: UTF8.self) { return .string(text) }
        return try newBytes(raw.count <= PickleMachine.savedBytesLimit ? raw : nil)
    }

    mutating func append(_ items: [PickleValue], _ op: UInt8) throws {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw malformed(op, "no list to append to") }
        switch top {
        case let .list(i):
            try charge(items.count * PickleMachine.itemCost)
            arena.lists[i].append(contentsOf: items)
        case .object: break  // an unmodelled object absorbs what it is given
        default: throw malformed(op, "target is \(top.kind), not a list")
        }
    }

    mutating func setItems(_ items: [PickleValue], _ op: UInt8) throws {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw malformed(op, "no dict to set items in") }
        switch top {
        case let .dict(i):
            try charge(items.count * PickleMachine.itemCost)
            for k in stride(from: 0, to: items.count, by: 2) { arena.dicts[i].append((key: items[k], value: items[k + 1])) }
        case .object: break
        default: throw malformed(op, "target is \(top.kind), not a dict")
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) fileprivate func loadLE16(_ offset: Int) -> Int { Int(UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))) }
    @inline(__always) fileprivate func loadLE32(_ offset: Int) -> Int { Int(UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
}
