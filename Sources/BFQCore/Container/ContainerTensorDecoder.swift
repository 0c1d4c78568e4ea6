/// Opens .bfq files as checkpoints: every tensor is produced from its sections, checked as it is read.
public struct ContainerTensorDecoder: TensorDecoder {
    public let reader: ContainerReader
    /// Manifest positions by the UTF-8 bytes of the name (Swift's String equality would merge names that differ
    /// only in Unicode normalisation, which the format keeps apart).
    private let byName: [[UInt8]: Int]

    init(reader: ContainerReader) {
        self.reader = reader
        byName = Dictionary(uniqueKeysWithValues: reader.manifest.tensors.enumerated().map { (Array($1.name.utf8), $0) })
    }

    /// The container as a checkpoint whose tensors decode through this decoder.
    public static func checkpoint(_ file: MappedFile) throws -> Checkpoint {
        let reader = try ContainerReader(file)
        let tensors = reader.manifest.tensors.map { tensor in
            let section = reader.sections[tensor.sections.values.map(\.index).min() ?? 0]
            let start = Int(section.offset)
            return TensorEntry(name: tensor.name, dtype: decodedType(tensor), shape: tensor.shape,
                               bytes: start ..< start + Int(section.storedSize))
        }
        return Checkpoint(file: file, format: .bfq, metadata: reader.manifest.metadata, tensors: tensors,
                          decoder: ContainerTensorDecoder(reader: reader))
    }

    /// Raw tensors decode to their stored type; quantized ones to their source type when it is f32, f16 or bf16.
    static func decodedType(_ tensor: ContainerTensor) -> DType {
        switch tensor.encoding {
        case let .raw(dtype): return dtype
        case .grid, .palette: return [.f32, .f16, .bf16].contains(tensor.sourceType) ? tensor.sourceType : .f32
        }
    }

    /// The manifest entry of `tensor`, which must come from this container.
    public func entry(of tensor: TensorEntry) -> ContainerTensor? {
        byName[Array(tensor.name.utf8)].map { reader.manifest.tensors[$0] }
    }

    /// True when `tensor` is stored as codes (grid or palette) rather than raw values.
    func isQuantized(_ tensor: TensorEntry) -> Bool {
        byName[Array(tensor.name.utf8)].map { reader.manifest.tensors[$0].levels != nil } ?? false
    }

    /// Decodes quantized `tensor` straight to f32 into `output` (its element count of floats).
    func decodeFloats(of tensor: TensorEntry, into output: UnsafeMutableBufferPointer<Float>) throws {
        let entry = reader.manifest.tensors[byName[Array(tensor.name.utf8)]!]
        try QuantizedTensorDecoder(reader: reader, tensor: entry).decode(into: UnsafeMutableRawBufferPointer(output), as: .f32)
    }

    /// Checks invariant 13 for a quantized tensor by decoding it; raw tensors have no codes.
    func checkCodes(of tensor: TensorEntry) throws {
        guard isQuantized(tensor) else { return }
        _ = try withDecodedBytes(of: tensor) { $0.count }
    }

    public func withDecodedBytes<R>(of tensor: TensorEntry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let index = byName[Array(tensor.name.utf8)] else { preconditionFailure("\(tensor.name) is not in \(reader.file.path)") }
        let entry = reader.manifest.tensors[index]
        switch entry.encoding {
        case .raw:
            return try reader.withSection(entry.sections["data"]!.index, body)
        case .grid, .palette:
            return try QuantizedTensorDecoder(reader: reader, tensor: entry).withDecoded(as: tensor.dtype, body)
        }
    }
}
