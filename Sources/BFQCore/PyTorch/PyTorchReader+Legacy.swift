/// The legacy (pre-1.6) format: pickles in sequence, then the raw storages.
///
/// magic number, protocol version 1001, sys_info, the object (storages as 6-field persistent ids), the sorted list
/// of storage keys, then per key an 8-byte little-endian element count and the bytes. Offsets in messages are
/// absolute file offsets.
extension PyTorchReader {
    static func readLegacy(_ file: MappedFile) throws -> Checkpoint {
        let bytes = file.bytes
        let path = file.path
        var machine = PickleMachine(path: path, part: "file", bytes: bytes, reportBase: 0, storages: .refuse)

        var (value, position) = try machine.run(from: 0, to: bytes.count)
        guard case let .bigInt(magic) = value, machine.arena.bigInts[magic] == legacyMagic else {
            throw PyTorchError.legacy(path: path, offset: 0, rule: "first pickle is not the torch magic number")
        }
        let versionOffset = position
        (value, position) = try machine.run(from: position, to: bytes.count)
        guard case let .int(version) = value, version == legacyProtocolVersion else {
            throw PyTorchError.legacy(path: path, offset: versionOffset, rule: "protocol version is not \(legacyProtocolVersion)")
        }
        let infoOffset = position
        (value, position) = try machine.run(from: position, to: bytes.count)
        guard case let .dict(info) = value else {
            throw PyTorchError.legacy(path: path, offset: infoOffset, rule: "sys_info is \(value.kind), not a dict")
        }
        for item in machine.arena.dicts[info] {
            if case .string("little_endian") = item.key, case .bool(false) = item.value {
                throw PyTorchError.legacy(path: path, offset: infoOffset, rule: "big-endian files are not supported")
            }
        }

        machine.storages = .legacy
        let (object, afterObject) = try machine.run(from: position, to: bytes.count)
        machine.storages = .refuse
        let (keyList, afterKeys) = try machine.run(from: afterObject, to: bytes.count)
        let keyItems: [PickleValue]
        switch keyList {
        case let .list(l): keyItems = machine.arena.lists[l]
        case let .tuple(t): keyItems = machine.arena.tuples[t]
        default: throw PyTorchError.legacy(path: path, offset: afterObject, rule: "storage key list is \(keyList.kind), not a list")
        }

        // The root storage of each key: element size and count from the persistent ids that named it.
        var roots: [String: (dtype: TorchDType, count: Int)] = [:]
        for storage in machine.arena.storages {
            if let known = roots[storage.key] {
                guard known.dtype.elementSize == storage.dtype.elementSize, known.count == storage.elementCount else {
                    throw PyTorchError.badStorage(path: path, key: storage.key, rule: "referenced as \(known.count) × \(known.dtype.name) and \(storage.elementCount) × \(storage.dtype.name)")
                }
            } else {
                roots[storage.key] = (storage.dtype, storage.elementCount)
            }
        }

        var ranges: [String: Range<Int>] = [:]
        position = afterKeys
        for item in keyItems {
            guard let key = machine.text(item) else {
                throw PyTorchError.legacy(path: path, offset: afterObject, rule: "storage key is \(item.kind), not a str")
            }
            guard let root = roots[key] else { throw PyTorchError.badStorage(path: path, key: key, rule: "listed but never referenced") }
            guard ranges[key] == nil else { throw PyTorchError.badStorage(path: path, key: key, rule: "listed twice") }
            guard let size = root.dtype.elementSize else {
                throw PyTorchError.badStorage(path: path, key: key, rule: "element size of \(root.dtype.name) is unknown")
            }
            guard bytes.count - position >= 8 else {
                throw PyTorchError.legacy(path: path, offset: position, rule: "storage '\(key)' count needs 8 bytes but only \(bytes.count - position) remain")
            }
            let count = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int64.self)))
            guard count == root.count else {
                throw PyTorchError.badStorage(path: path, key: key, rule: "holds \(count) elements but is referenced with \(root.count)")
            }
            let start = position + 8
            let (length, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, length <= bytes.count - start else {
                throw PyTorchError.legacy(path: path, offset: position, rule: "storage '\(key)' (\(count) elements of \(size) bytes) runs past the end of the file")
            }
            ranges[key] = start ..< start + length
            position = start + length
        }

        for index in machine.arena.storages.indices {
            let storage = machine.arena.storages[index]
            guard let range = ranges[storage.key] else {
                throw PyTorchError.badStorage(path: path, key: storage.key, rule: "referenced but missing from the storage list")
            }
            guard let view = storage.view else {
                machine.arena.storages[index].bytes = range
                continue
            }
            let size = storage.dtype.elementSize ?? 1
            let (end, overflow) = view.offset.addingReportingOverflow(view.count)
            guard !overflow, end <= storage.elementCount else {
                throw PyTorchError.badStorage(path: path, key: storage.key, rule: "view of \(view.count) elements at \(view.offset) exceeds \(storage.elementCount) elements")
            }
            machine.arena.storages[index].bytes = range.lowerBound + view.offset * size ..< range.lowerBound + end * size
        }

        var flattener = PickleFlattener(path: path, fileSize: file.count, arena: machine.arena)
        try flattener.flatten(object)
        return Checkpoint(file: file, format: .pytorchLegacy, metadata: flattener.metadata, tensors: flattener.tensors,
                          warnings: machine.warnings + flattener.warnings)
    }
}
