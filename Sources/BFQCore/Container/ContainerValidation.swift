/// Invariants 10 and 11 of spec/bfq.md: names, shapes, section references, encoding parameters and section sizes.
struct ContainerValidation {
    let path: String
    let sections: [SectionEntry]
    /// Header flag bit 0: set exactly when some tensor has byte-packed codes.
    let bytePacking: Bool

    static let maximumRank = 8
    /// Elements of one tensor: 4 GiB decoded to f32, whatever few bytes its codes take.
    static let maximumElements = 1 << 30

    func check(_ manifest: ContainerManifest) throws {
        var names = Set<[UInt8]>()  // bytes, not Swift's canonical-equivalence String comparison
        var referenced = [Bool](repeating: false, count: sections.count)
        for tensor in manifest.tensors {
            guard names.insert(Array(tensor.name.utf8)).inserted else {
                throw ContainerError.manifestInvalid(path: path, rule: "two tensors are named \(tensor.name)")
            }
            let elements = try checkShape(tensor)
            for (role, reference) in tensor.sections.sorted(by: { $0.key < $1.key }) {
                try checkReference(reference, role: role, tensor: tensor.name, referenced: &referenced)
            }
            try checkEncoding(tensor, elements: elements)
        }
        if bytePacking, !manifest.tensors.contains(where: { $0.packing == .bytes }) {
            throw ContainerError.manifestInvalid(path: path, rule: "header flag bit 0 (byte packing) is set but no tensor has packing \"bytes\"")
        }
        if let cache = manifest.timeFeatures { try check(cache, referenced: &referenced) }
        if let unused = referenced.firstIndex(of: false) {
            throw ContainerError.sectionReference(path: path, rule: "section \(unused) is not used by any tensor")
        }
    }

    private func check(_ cache: ContainerManifest.TimeFeatures, referenced: inout [Bool]) throws {
        func fail(_ rule: String) -> ContainerError { .encodingInvalid(path: path, tensor: "time_features", rule: rule) }
        guard zip(cache.timesteps, cache.timesteps.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw fail("timesteps are not strictly increasing")
        }
        var names = Set<[UInt8]>()
        var width = 0
        for layer in cache.layers {
            guard !layer.name.isEmpty, names.insert(Array(layer.name.utf8)).inserted else {
                throw fail("layer name \"\(layer.name)\" is empty or repeated")
            }
            guard layer.width <= Self.maximumElements else { throw fail("layer \(layer.name) is wider than 2^30") }
            width += layer.width
            guard width <= Self.maximumElements else { throw fail("layers are wider than 2^30 in all") }
        }
        try checkReference(cache.features, role: "features", tensor: "time_features", referenced: &referenced)
        let (values, overflow) = width.multipliedReportingOverflow(by: 2 * cache.timesteps.count)
        guard !overflow, cache.features.decodedSize == values else {
            throw ContainerError.sectionSize(path: path, tensor: "time_features", role: "features",
                                             declared: cache.features.decodedSize, expected: overflow ? Int.max : values)
        }
    }

    /// The element count, after checking rank and that every byte size fits in 63 bits.
    private func checkShape(_ tensor: ContainerTensor) throws -> Int {
        guard tensor.shape.count <= Self.maximumRank else {
            throw ContainerError.manifestInvalid(path: path, rule: "tensor \(tensor.name): rank \(tensor.shape.count) exceeds \(Self.maximumRank)")
        }
        // Every dimension and the product are at most 2^30, so no size derived from the shape can overflow.
        guard tensor.shape.allSatisfy({ $0 <= Self.maximumElements }),
              tensor.shape.reduce(1, { min($0 * $1, Self.maximumElements + 1) }) <= Self.maximumElements else {
            throw ContainerError.manifestInvalid(path: path, rule: "tensor \(tensor.name): shape \(tensor.shape) has a dimension or more than 2^30 elements")
        }
        return tensor.shape.reduce(1, *)
    }

    private func checkReference(_ reference: ContainerTensor.SectionReference, role: String, tensor: String,
                                referenced: inout [Bool]) throws {
        func fail(_ rule: String) -> ContainerError { .sectionReference(path: path, rule: "tensor \(tensor) \(role): \(rule)") }
        guard reference.index < sections.count else { throw fail("section \(reference.index) does not exist") }
        guard !referenced[reference.index] else { throw fail("section \(reference.index) is used twice") }
        referenced[reference.index] = true
        let entry = sections[reference.index]
        guard UInt64(reference.storedSize) == entry.storedSize, UInt64(reference.decodedSize) == entry.decodedSize,
              reference.crc32 == entry.decodedCRC else {
            throw fail("sizes or CRC differ from section \(reference.index) in the table")
        }
    }

    private func checkEncoding(_ tensor: ContainerTensor, elements: Int) throws {
        func fail(_ rule: String) -> ContainerError { .encodingInvalid(path: path, tensor: tensor.name, rule: rule) }
        func expect(_ roles: Set<String>) throws {
            guard Set(tensor.sections.keys) == roles else {
                throw fail("sections \(tensor.sections.keys.sorted()) should be \(roles.sorted())")
            }
        }
        func size(_ role: String, _ expected: Int) throws {
            let declared = tensor.sections[role]!.decodedSize
            guard declared == expected else {
                throw ContainerError.sectionSize(path: path, tensor: tensor.name, role: role, declared: declared, expected: expected)
            }
        }
        if tensor.packing == .bytes, !bytePacking { throw fail("packing \"bytes\" without header flag bit 0 (byte packing)") }
        switch tensor.encoding {
        case let .raw(dtype):
            try expect(["data"])
            try size("data", elements * dtype.byteSize)
        case let .grid(levels, balanced, scaleType, groupSize, offsetType, packing):
            let bits = balanced ? (levels - 1).trailingZeroBitCount : levels.trailingZeroBitCount
            let expected = balanced ? (1 << bits) + 1 : 1 << bits
            guard (1 ... 8).contains(bits), levels == expected else {
                throw fail("\(levels) levels is not \(balanced ? "2^b + 1" : "2^b") for b in 1...8")
            }
            let (rows, count) = try rowsAndCount(tensor, elements: elements, fail: fail)
            if let groupSize, !(32 ... 256).contains(groupSize) { throw fail("group_size \(groupSize) is not in 32...256") }
            try expect(offsetType == nil ? ["codes", "scales"] : ["codes", "scales", "offsets"])
            try size("codes", try packedBytes(levels: levels, packing: packing, rows: rows, columns: count, fail: fail))
            let groups = groupSize.map { (count + $0 - 1) / $0 } ?? 1
            try size("scales", rows * groups * scaleType.byteSize)
            if let offsetType { try size("offsets", rows * offsetType.byteSize) }
        case let .palette(levels, perRow, packing):
            let (rows, count) = try rowsAndCount(tensor, elements: elements, fail: fail)
            try expect(["codes", "palette"])
            try size("codes", try packedBytes(levels: levels, packing: packing, rows: rows, columns: count, fail: fail))
            try size("palette", (perRow ? rows : 1) * levels * DType.f16.byteSize)
        }
    }

    private func packedBytes(levels: Int, packing: CodePacking, rows: Int, columns: Int,
                             fail: (String) -> ContainerError) throws -> Int {
        do {
            return try CodeLayout(levels: levels, packing: packing).byteCount(rows: rows, columns: columns)
        } catch let error as PackingError {
            throw fail("\(error)")
        }
    }

    private func rowsAndCount(_ tensor: ContainerTensor, elements: Int,
                              fail: (String) -> ContainerError) throws -> (rows: Int, count: Int) {
        guard tensor.shape.count >= 2 else { throw fail("a quantized tensor needs at least 2 dimensions") }
        let rows = tensor.shape[0]
        return (rows, rows == 0 ? 0 : elements / rows)
    }
}
