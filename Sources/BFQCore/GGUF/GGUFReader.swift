/// Reads GGUF files (versions 2 and 3, little-endian): header, metadata of every value type, tensor declarations,
/// `general.alignment` and the data section, each count, length, dimension and offset checked against the bytes
/// present before it is used. Tensor bytes are not copied: plain tensors are views of the mapping, block-quantized ones
/// are decoded to f32 when asked for (GGUFTensorDecoder).
public enum GGUFReader {
    /// "GGUF".
    public static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]
    /// Longest key or tensor name accepted (the specification's limit on keys).
    public static let maximumNameBytes = 65535
    /// Most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
    public static let maximumDimensions = 4
    /// Longest tensor name stock ggml reads (GGML_MAX_NAME 64, with its terminating zero).
    public static let ggmlNameLimit = 63

    /// Opens `file` as a checkpoint whose block-quantized tensors decode to f32.
    public static func read(_ file: MappedFile) throws -> Checkpoint {
        let gguf = try parse(file)
        for tensor in gguf.tensors where !tensor.type.isDecoded {
            throw GGUFError.unsupportedType(path: file.path, tensor: tensor.name, type: tensor.type.name)
        }
        var metadata: [String: String] = [:]
        for entry in gguf.metadata where metadata.updateValue(entry.value.text, forKey: entry.key) != nil {
            // Distinct bytes, but Swift's String keys would merge them: refuse rather than drop one.
            throw GGUFError.duplicate(path: file.path, what: "metadata keys (equal after Unicode normalisation)", name: entry.key)
        }
        var warnings: [String] = []
        let names = Set(gguf.tensors.map(\.name))
        for entry in gguf.metadata where entry.key.hasPrefix("comfy.gguf.orig_shape.") {
            let tensor = String(entry.key.dropFirst("comfy.gguf.orig_shape.".count))
            if !names.contains(tensor) { warnings.append("metadata \(entry.key) names a tensor the file does not hold") }
        }
        let tensors = gguf.tensors.map { tensor in
            let start = gguf.dataStart + tensor.offset
            return TensorEntry(name: tensor.name, dtype: tensor.type.plainType ?? .f32, shape: tensor.shape,
                               bytes: start ..< start + tensor.byteCount)
        }
        return Checkpoint(file: file, format: .gguf, metadata: metadata, tensors: tensors, warnings: warnings,
                          decoder: GGUFTensorDecoder(file: file, gguf: gguf))
    }

    /// Parses and validates the header, metadata and tensor declarations of `file`.
    public static func parse(_ file: MappedFile) throws -> GGUFFile {
        try withExtendedLifetime(file) { try parse(file.bytes, path: file.path) }
    }

    /// Parses and validates the header, metadata and tensor declarations of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> GGUFFile {
        var cursor = Cursor(bytes: bytes, path: path)
        guard bytes.count >= 4, bytes.starts(with: magic) else {
            throw GGUFError.malformed(path: path, offset: 0, field: "magic", rule: "the file does not start with \"GGUF\"")
        }
        cursor.position = 4
        let version = try cursor.u32("version")
        if version & 0xFFFF == 0 && version != 0 {
            throw GGUFError.malformed(path: path, offset: 4, field: "version",
                                      rule: "the file is big-endian (version reads \(version.byteSwapped) byte-swapped); bfq reads little-endian GGUF")
        }
        guard version == 2 || version == 3 else {
            throw GGUFError.malformed(path: path, offset: 4, field: "version", rule: "version \(version) is not 2 or 3")
        }
        let tensorCount = try cursor.count("tensor_count", minimumBytesEach: 24)
        let keyCount = try cursor.count("metadata_kv_count", minimumBytesEach: 13)

        var metadata: [GGUFFile.Entry] = []
        metadata.reserveCapacity(keyCount)
        var keys = Set<[UInt8]>()
        for _ in 0 ..< keyCount {
            let at = cursor.position
            let key = try cursor.string("metadata key", limit: maximumNameBytes)
            guard keys.insert(Array(key.utf8)).inserted else { throw GGUFError.duplicate(path: path, what: "metadata keys", name: key) }
            let value = try cursor.value(for: key, allowArray: true)
            if key == "general.alignment" {
                guard case let .uint32(alignment) = value, alignment > 0, alignment & (alignment - 1) == 0 else {
                    throw GGUFError.malformed(path: path, offset: at, field: "general.alignment",
                                              rule: "must be a UINT32 power of two (holds \(value.typeID.name) \(value.text))")
                }
            }
            metadata.append(GGUFFile.Entry(key: key, value: value))
        }
        var alignment = 32
        if case let .uint32(value) = metadata.first(where: { $0.key == "general.alignment" })?.value { alignment = Int(value) }

        var declared: [(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int)] = []
        declared.reserveCapacity(tensorCount)
        var names = Set<[UInt8]>()
        for _ in 0 ..< tensorCount {
            let name = try cursor.string("tensor name", limit: maximumNameBytes)
            guard !name.isEmpty else {
                throw GGUFError.malformed(path: path, offset: cursor.position - 8, field: "tensor name", rule: "is empty")
            }
            guard names.insert(Array(name.utf8)).inserted else { throw GGUFError.duplicate(path: path, what: "tensors", name: name) }
            let rank = try cursor.u32("n_dims of \(name)")
            guard rank <= maximumDimensions else {
                throw GGUFError.badTensor(path: path, tensor: name, rule: "\(rank) dimensions; GGUF tensors have at most \(maximumDimensions)")
            }
            var dimensions: [Int] = []
            var elements = 1, span = 1
            for index in 0 ..< Int(rank) {
                let size = try cursor.u64("dimension \(index) of \(name)")
                guard let dimension = Int(exactly: size), dimension >= 0 else {
                    throw GGUFError.badTensor(path: path, tensor: name, rule: "dimension \(index) is \(size), beyond a signed 64-bit count")
                }
                // The product of the non-zero dimensions must fit too: the shape is used reversed (PyTorch's order),
                // where a zero dimension would come last.
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                let (wider, spanOverflow) = span.multipliedReportingOverflow(by: max(dimension, 1))
                guard !overflow, !spanOverflow else {
                    throw GGUFError.badTensor(path: path, tensor: name, rule: "its element count overflows")
                }
                (elements, span) = (product, wider)
                dimensions.append(dimension)
            }
            let typeAt = cursor.position
            let typeID = try cursor.u32("type of \(name)")
            guard let type = GGMLType(rawValue: typeID) else {
                throw GGUFError.malformed(path: path, offset: typeAt, field: "type of \(name)",
                                          rule: "\(typeID) is not a ggml type id (retired or unknown)")
            }
            let block = type.block
            let row = dimensions.first ?? 1
            guard row % block.elements == 0 else {
                throw GGUFError.badTensor(path: path, tensor: name,
                                          rule: "rows of \(row) elements are not a multiple of \(type.name)'s block of \(block.elements)")
            }
            let (byteCount, overflow) = (elements / block.elements).multipliedReportingOverflow(by: block.bytes)
            guard !overflow else { throw GGUFError.badTensor(path: path, tensor: name, rule: "its byte size overflows") }
            let offsetAt = cursor.position
            let rawOffset = try cursor.u64("offset of \(name)")
            guard let offset = Int(exactly: rawOffset), offset % alignment == 0 else {
                throw GGUFError.malformed(path: path, offset: offsetAt, field: "offset of \(name)",
                                          rule: "\(rawOffset) is not a multiple of the alignment \(alignment)")
            }
            declared.append((name, dimensions, type, offset, byteCount))
        }

        let headerEnd = cursor.position
        let dataStart = headerEnd + (alignment - headerEnd % alignment) % alignment
        if !declared.isEmpty, dataStart > bytes.count {
            throw GGUFError.malformed(path: path, offset: headerEnd, field: "data section",
                                      rule: "starts at byte \(dataStart) (the header padded to \(alignment)), past the end of the "
                                          + "\(bytes.count)-byte file")
        }
        let dataSize = bytes.count - min(dataStart, bytes.count)
        var spans = declared.indices.sorted { declared[$0].offset < declared[$1].offset }[...]
        var end = 0
        var previous: String?
        while let index = spans.popFirst() {
            let tensor = declared[index]
            guard tensor.byteCount <= dataSize, tensor.offset <= dataSize - tensor.byteCount else {
                throw GGUFError.badTensor(path: path, tensor: tensor.name,
                                          rule: "its \(tensor.byteCount) bytes at data offset \(tensor.offset) run past the end of the "
                                              + "\(dataSize)-byte data section (from byte \(dataStart))")
            }
            if let previous, tensor.offset < end {
                throw GGUFError.badTensor(path: path, tensor: tensor.name,
                                          rule: "its data (from data offset \(tensor.offset)) overlaps tensor \(previous)'s (to \(end))")
            }
            if tensor.byteCount > 0 { end = tensor.offset + tensor.byteCount; previous = tensor.name }
        }

        var recordedShapes: [String: GGUFValue] = [:]
        for entry in metadata where entry.key.hasPrefix(GGUFFile.originalShapeKey("")) { recordedShapes[entry.key] = entry.value }
        let tensors = try declared.map { tensor -> GGUFFile.Tensor in
            var shape = Array(tensor.dimensions.reversed())
            if let recorded = recordedShapes[GGUFFile.originalShapeKey(tensor.name)] {
                shape = try originalShape(recorded, tensor: tensor.name, elements: tensor.dimensions.reduce(1, *), path: path)
            }
            return GGUFFile.Tensor(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type, offset: tensor.offset,
                                   byteCount: tensor.byteCount, shape: shape)
        }
        return GGUFFile(version: version, metadata: metadata, tensors: tensors, alignment: alignment, dataStart: dataStart)
    }

    /// The PyTorch shape ComfyUI-GGUF recorded for a flattened tensor: integers whose product is its element count.
    private static func originalShape(_ value: GGUFValue, tensor: String, elements: Int, path: String) throws -> [Int] {
        let key = GGUFFile.originalShapeKey(tensor)
        guard case let .array(_, count, items) = value, count <= maximumDimensions + 1, items.count == count else {
            throw GGUFError.badTensor(path: path, tensor: tensor, rule: "\(key) is not an array of at most 5 integers")
        }
        var shape: [Int] = []
        var product = 1
        for item in items {
            guard let size = item.intValue, size >= 0 else {
                throw GGUFError.badTensor(path: path, tensor: tensor, rule: "\(key) holds \(item.text), not a size")
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else { throw GGUFError.badTensor(path: path, tensor: tensor, rule: "\(key)'s element count overflows") }
            product = next
            shape.append(size)
        }
        guard product == elements else {
            throw GGUFError.badTensor(path: path, tensor: tensor,
                                      rule: "\(key) \(value.text) holds \(product) elements but the tensor has \(elements)")
        }
        return shape
    }

    /// Reads little-endian fields, each checked against the bytes left.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var position = 0

        private mutating func take(_ count: Int, _ field: String) throws -> Int {
            guard count <= bytes.count - position else {
                throw GGUFError.malformed(path: path, offset: position, field: field,
                                          rule: "needs \(count) bytes but the file ends \(bytes.count - position) bytes later")
            }
            defer { position += count }
            return position
        }

        mutating func u32(_ field: String) throws -> UInt32 {
            let at = try take(4, field)
            return bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian
        }

        mutating func u64(_ field: String) throws -> UInt64 {
            let at = try take(8, field)
            return bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian
        }

        /// A count of records each at least `minimumBytesEach` long: more than the bytes left can hold is refused
        /// before anything is allocated for them.
        mutating func count(_ field: String, minimumBytesEach: Int) throws -> Int {
            let at = position
            let value = try u64(field)
            let room = (bytes.count - position) / minimumBytesEach
            guard value <= UInt64(room) else {
                throw GGUFError.malformed(path: path, offset: at, field: field,
                                          rule: "declares \(value), but the \(bytes.count - position) bytes left hold at most \(room)")
            }
            return Int(value)
        }

        mutating func string(_ field: String, limit: Int? = nil) throws -> String {
            let at = position
            let length = try u64("length of \(field)")
            if let limit, length > UInt64(limit) {
                throw GGUFError.malformed(path: path, offset: at, field: field, rule: "is \(length) bytes long; the limit is \(limit)")
            }
            guard length <= UInt64(bytes.count - position) else {
                throw GGUFError.malformed(path: path, offset: at, field: field,
                                          rule: "declares \(length) bytes but the file ends \(bytes.count - position) bytes later")
            }
            let start = try take(Int(length), field)
            let raw = UnsafeRawBufferPointer(rebasing: bytes[start ..< start + Int(length)])
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw GGUFError.malformed(path: path, offset: at, field: field, rule: "is not valid UTF-8")
            }
            return text
        }

        mutating func value(for key: String, allowArray: Bool) throws -> GGUFValue {
            let at = position
            let raw = try u32("value type of \(key)")
            guard let type = GGUFValue.TypeID(rawValue: raw) else {
                throw GGUFError.malformed(path: path, offset: at, field: "value type of \(key)", rule: "\(raw) is not a GGUF value type (0-12)")
            }
            return try value(of: type, key: key, allowArray: allowArray, typeAt: at)
        }

        private mutating func value(of type: GGUFValue.TypeID, key: String, allowArray: Bool, typeAt: Int) throws -> GGUFValue {
            switch type {
            case .uint8: return .uint8(bytes[try take(1, key)])
            case .int8: return .int8(Int8(bitPattern: bytes[try take(1, key)]))
            case .uint16: return .uint16(bytes.loadUnaligned(fromByteOffset: try take(2, key), as: UInt16.self).littleEndian)
            case .int16: return .int16(bytes.loadUnaligned(fromByteOffset: try take(2, key), as: Int16.self).littleEndian)
            case .uint32: return .uint32(try u32(key))
            case .int32: return .int32(Int32(bitPattern: try u32(key)))
            case .float32: return .float32(Float(bitPattern: try u32(key)))
            case .uint64: return .uint64(try u64(key))
            case .int64: return .int64(Int64(bitPattern: try u64(key)))
            case .float64: return .float64(Double(bitPattern: try u64(key)))
            case .bool:
                let at = try take(1, key)
                guard bytes[at] <= 1 else {
                    throw GGUFError.malformed(path: path, offset: at, field: key, rule: "BOOL value \(bytes[at]) is neither 0 nor 1")
                }
                return .bool(bytes[at] == 1)
            case .string: return .string(try string(key))
            case .array:
                guard allowArray else {
                    throw GGUFError.malformed(path: path, offset: typeAt, field: key, rule: "an array inside an array (ggml refuses nested arrays)")
                }
                let elementAt = position
                let rawElement = try u32("element type of \(key)")
                guard let element = GGUFValue.TypeID(rawValue: rawElement) else {
                    throw GGUFError.malformed(path: path, offset: elementAt, field: "element type of \(key)",
                                              rule: "\(rawElement) is not a GGUF value type (0-12)")
                }
                let count = try self.count("element count of \(key)", minimumBytesEach: element.fixedSize ?? 8)
                // Long arrays (an LLM's vocabulary) are walked and checked but not kept: memory stays bounded by
                // the number of keys, not by what a file declares.
                let kept = count <= GGUFValue.keptArrayElements
                var elements: [GGUFValue] = []
                if kept { elements.reserveCapacity(count) }
                for _ in 0 ..< count {
                    let item = try value(of: element, key: key, allowArray: false, typeAt: elementAt)
                    if kept { elements.append(item) }
                }
                return .array(elementType: rawElement, count: count, elements)
            }
        }
    }
}
