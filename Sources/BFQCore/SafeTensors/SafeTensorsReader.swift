/// Reads safetensors files: an 8-byte little-endian header length, a JSON header, then one data buffer.
///
/// Enforces every rule of the reference implementation (huggingface/safetensors) and also rejects duplicate
/// JSON keys and a tensor named `__metadata__`. Tensor bytes are not copied: entries point into the mapping.
public enum SafeTensorsReader {
    /// Largest header accepted, as in the reference implementation.
    public static let maximumHeaderSize = 100_000_000

    /// Parses and validates the header of `file`.
    public static func read(_ file: MappedFile) throws -> Checkpoint {
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw SafeTensorsError.fileTooSmall(path: path, size: bytes.count) }
        let declared = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(maximumHeaderSize) else {
            throw SafeTensorsError.headerTooLarge(path: path, declared: declared, limit: maximumHeaderSize)
        }
        let headerEnd = 8 + Int(declared)
        guard headerEnd <= bytes.count else {
            throw SafeTensorsError.headerPastEnd(path: path, declared: declared, fileSize: bytes.count)
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8 ..< headerEnd])
        guard header.first == UInt8(ascii: "{") else { throw SafeTensorsError.headerNotObject(path: path) }
        let json: JSONValue
        do {
            json = try JSONParser.parse(header)
        } catch let error as JSONError {
            throw SafeTensorsError.headerJSON(path: path, error)
        }
        guard let members = json.objectValue else { throw SafeTensorsError.headerNotObject(path: path) }

        var metadata: [String: String] = [:]
        var tensors: [TensorEntry] = []
        tensors.reserveCapacity(members.count)
        var spans: [(begin: Int, end: Int, index: Int)] = []
        spans.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                metadata = try readMetadata(member.value, path: path)
                continue
            }
            let (tensor, begin, end) = try readEntry(member, path: path, dataStart: headerEnd)
            spans.append((begin, end, tensors.count))
            tensors.append(tensor)
        }

        // Sorted by offset, each tensor must start exactly where the previous one ended: no holes, no overlaps.
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        for span in spans {
            guard span.begin == position else {
                throw SafeTensorsError.misplacedTensor(path: path, tensor: tensors[span.index].name, begin: span.begin,
                                                       expected: position)
            }
            position = span.end
        }
        let dataSize = bytes.count - headerEnd
        guard position == dataSize else {
            throw SafeTensorsError.dataSizeMismatch(path: path, tensorsEnd: position, dataSize: dataSize)
        }
        return Checkpoint(file: file, format: .safetensors, metadata: metadata, tensors: tensors)
    }

    private static func readMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        guard let members = value.objectValue else { throw SafeTensorsError.metadataNotStrings(path: path, key: "__metadata__") }
        if value["data_offsets"]?.arrayValue != nil { throw SafeTensorsError.reservedName(path: path) }
        var metadata: [String: String] = [:]
        for member in members {
            guard let text = member.value.stringValue else {
                throw SafeTensorsError.metadataNotStrings(path: path, key: member.key)
            }
            // Raw duplicates are refused by the JSON layer; Swift's String keys would merge canonically equal ones.
            guard metadata.updateValue(text, forKey: member.key) == nil else {
                throw SafeTensorsError.metadataKeysEquivalent(path: path, key: member.key)
            }
        }
        return metadata
    }

    private static func readEntry(_ member: JSONMember, path: String, dataStart: Int) throws -> (TensorEntry, Int, Int) {
        let name = member.key
        guard member.value.objectValue != nil else { throw SafeTensorsError.entryNotObject(path: path, tensor: name) }
        func field(_ key: String) throws -> JSONValue {
            guard let value = member.value[key] else { throw SafeTensorsError.missingField(path: path, tensor: name, field: key) }
            return value
        }
        guard let dtypeName = try field("dtype").stringValue else {
            throw SafeTensorsError.badField(path: path, tensor: name, field: "dtype", rule: "is not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: dtypeName)
        }
        let shape = try naturals(try field("shape"), path: path, tensor: name, field: "shape")
        let offsets = try naturals(try field("data_offsets"), path: path, tensor: name, field: "data_offsets")
        guard offsets.count == 2 else {
            throw SafeTensorsError.badField(path: path, tensor: name, field: "data_offsets", rule: "must hold exactly two numbers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard end >= begin else {
            throw SafeTensorsError.badField(path: path, tensor: name, field: "data_offsets",
                                            rule: "end \(end) is before begin \(begin)")
        }
        var bytes = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw SafeTensorsError.sizeOverflow(path: path, tensor: name) }
            bytes = product
        }
        guard end - begin == bytes else {
            throw SafeTensorsError.byteLengthMismatch(path: path, tensor: name, expected: bytes, declared: end - begin)
        }
        // The data-size check after sorting guarantees dataStart + end lies within the file.
        let (absoluteEnd, overflow) = dataStart.addingReportingOverflow(end)
        guard !overflow else { throw SafeTensorsError.sizeOverflow(path: path, tensor: name) }
        let entry = TensorEntry(name: name, dtype: dtype, shape: shape, bytes: dataStart + begin ..< absoluteEnd)
        return (entry, begin, end)
    }

    /// An array of non-negative integers that fit in `Int`.
    private static func naturals(_ value: JSONValue, path: String, tensor: String, field: String) throws -> [Int] {
        guard let elements = value.arrayValue else {
            throw SafeTensorsError.badField(path: path, tensor: tensor, field: field, rule: "is not an array")
        }
        return try elements.map { element in
            guard let number = element.intValue, number >= 0, number < Int64.max else {
                throw SafeTensorsError.badField(path: path, tensor: tensor, field: field,
                                                rule: "holds something other than a non-negative integer")
            }
            return Int(number)
        }
    }
}
