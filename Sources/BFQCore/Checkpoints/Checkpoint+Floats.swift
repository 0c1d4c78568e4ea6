extension Checkpoint {
    /// The elements of floating-point `tensor` widened to f32, in parallel blocks; a .bfq's quantized tensors decode
    /// straight to f32 through the lookup-table dequantizer, a GGUF file's through its block decoders. The tensor's
    /// file pages are released afterwards.
    public func floats(of tensor: TensorEntry) throws -> [Float] {
        precondition(tensor.dtype.isFloatingPoint, "\(tensor.name) is not floating-point")
        let count = tensor.elementCount
        if let container = decoder as? ContainerTensorDecoder, container.isQuantized(tensor) {
            return try [Float](unsafeUninitializedCapacity: count) { out, initialized in
                try container.decodeFloats(of: tensor, into: out)
                initialized = count
            }
        }
        if let gguf = decoder as? GGUFTensorDecoder, gguf.isQuantized(tensor) {
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                gguf.decodeFloats(of: tensor, into: out)
                initialized = count
            }
        }
        let floats = try [Float](unsafeUninitializedCapacity: count) { out, initialized in
            try withContiguousBytes(of: tensor) { bytes in
                let perTask = 1 << 18
                Parallel.forEach((count + perTask - 1) / perTask) { task in
                    let start = task * perTask
                    ElementConverter.convert(bytes.baseAddress! + start * tensor.dtype.byteSize, tensor.dtype,
                                             to: UnsafeMutableRawPointer(out.baseAddress! + start), .f32,
                                             count: min(perTask, count - start))
                }
            }
            initialized = count
        }
        if decoder == nil || decoder is GGUFTensorDecoder { release(tensor) }
        return floats
    }
}
