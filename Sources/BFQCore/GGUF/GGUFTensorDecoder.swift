import CBFQShims

/// Produces a GGUF file's tensors: plain types (F32, F16, BF16, F64, integers) as views of the mapping, block-quantized
/// types decoded to f32 exactly as gguf-py's `dequantize` decodes them.
public struct GGUFTensorDecoder: TensorDecoder {
    public let file: MappedFile
    public let gguf: GGUFFile
    /// Declarations by the UTF-8 bytes of the name (the format keeps names that differ only in normalisation apart).
    private let byName: [[UInt8]: Int]

    init(file: MappedFile, gguf: GGUFFile) {
        self.file = file
        self.gguf = gguf
        byName = Dictionary(uniqueKeysWithValues: gguf.tensors.enumerated().map { (Array($1.name.utf8), $0) })
    }

    /// The declaration of `tensor`, which must come from this file.
    public func declaration(of tensor: TensorEntry) -> GGUFFile.Tensor {
        guard let index = byName[Array(tensor.name.utf8)] else { preconditionFailure("\(tensor.name) is not in \(file.path)") }
        return gguf.tensors[index]
    }

    /// True when `tensor` is stored in blocks rather than plain elements.
    public func isQuantized(_ tensor: TensorEntry) -> Bool { declaration(of: tensor).type.plainType == nil }

    /// Decodes block-quantized `tensor` straight into `output` (its element count of floats) and releases its pages.
    func decodeFloats(of tensor: TensorEntry, into output: UnsafeMutableBufferPointer<Float>) {
        let declared = declaration(of: tensor)
        let start = gguf.dataStart + declared.offset
        GGUFTensorDecoder.decode(file.bytes(in: start ..< start + declared.byteCount), type: declared.type, into: output)
        file.release(start ..< start + declared.byteCount)
    }

    public func withDecodedBytes<R>(of tensor: TensorEntry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let declared = declaration(of: tensor)
        let start = gguf.dataStart + declared.offset
        let stored = file.bytes(in: start ..< start + declared.byteCount)
        if declared.type.plainType != nil { return try body(stored) }
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: declared.elementCount)
        defer { values.deallocate() }
        GGUFTensorDecoder.decode(stored, type: declared.type, into: values)
        return try body(UnsafeRawBufferPointer(values))
    }

    /// Decodes whole blocks of `type` from `stored` into `values` (block size floats per block), on every core for
    /// large tensors; each block is decoded alone, so the result does not depend on the split.
    static func decode(_ stored: UnsafeRawBufferPointer, type: GGMLType, into values: UnsafeMutableBufferPointer<Float>) {
        let block = type.block
        let blocks = stored.count / block.bytes
        precondition(values.count == blocks * block.elements, "decode buffer does not match \(blocks) \(type.name) blocks")
        guard blocks > 0, let source = stored.baseAddress?.assumingMemoryBound(to: UInt8.self), let target = values.baseAddress else { return }
        let chunk = max(1, (1 << 20) / block.elements)
        Parallel.forEach((blocks + chunk - 1) / chunk) { index in
            let first = index * chunk
            let count = min(chunk, blocks - first)
            let status = bfq_gguf_dequantize(type.rawValue, source + first * block.bytes, target + first * block.elements, count)
            precondition(status == 0, "no block decoder for \(type.name)")
        }
    }
}
