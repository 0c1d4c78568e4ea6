/// Writes safetensors files laid out as the reference implementation lays them out, so the same tensors give
/// the same bytes as Python's `safetensors.torch.save_file`: tensors ordered by dtype (widest first) then name,
/// compact header JSON with metadata keys sorted, padded with spaces to a multiple of 8.
public enum SafeTensorsWriter: CheckpointWriter {
    public static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String],
                             source: TensorByteSource) throws {
        let order = try layoutOrder(tensors, path: target.path)
        let header = headerBytes(tensors, order: order, metadata: metadata)
        let out = try target.open()
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try out.write($0) }
        try out.write(header)
        for index in order {
            let before = out.offset
            try source.emit(index, to: out)
            precondition(out.offset - before == tensors[index].byteCount, "source wrote the wrong size for \(tensors[index].name)")
        }
        try out.commit()
    }

    /// Indices of `tensors` in the order their data is laid out.
    static func layoutOrder(_ tensors: [OutputTensor], path: String) throws -> [Int] {
        var seen = Set<String>()
        for tensor in tensors {
            if tensor.name == "__metadata__" { throw SafeTensorsError.reservedName(path: path) }
            guard seen.insert(tensor.name).inserted else { throw SafeTensorsError.duplicateTensor(path: path, tensor: tensor.name) }
        }
        return tensors.indices.sorted { a, b in
            let (left, right) = (tensors[a], tensors[b])
            if left.dtype != right.dtype { return left.dtype > right.dtype }
            return Array(left.name.utf8).lexicographicallyPrecedes(Array(right.name.utf8))
        }
    }

    /// The padded header JSON.
    static func headerBytes(_ tensors: [OutputTensor], order: [Int], metadata: [String: String]) -> [UInt8] {
        var members: [JSONMember] = []
        members.reserveCapacity(tensors.count + 1)
        if !metadata.isEmpty {
            let sorted = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            members.append(JSONMember("__metadata__", .object(sorted.map { JSONMember($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for index in order {
            let tensor = tensors[index]
            let end = offset + tensor.byteCount
            members.append(JSONMember(tensor.name, .object([
                JSONMember("dtype", .string(tensor.dtype.rawValue)),
                JSONMember("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                JSONMember("data_offsets", .array([.int(Int64(offset)), .int(Int64(end))])),
            ])))
            offset = end
        }
        var header = Array(JSONWriter.compact(.object(members)).utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        return header
    }
}
