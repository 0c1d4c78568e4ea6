import CBFQShims

/// Converts runs of elements between floating-point types, rounding to nearest even as PyTorch does.
/// Any floating-point type converts to f32, f16 or bf16; every type "converts" to itself by copying.
public enum ElementConverter {
    /// Elements converted per step through the f32 scratch buffer.
    static let chunk = 16_384

    /// Whether `convert` handles `source` to `target`.
    public static func supports(_ source: DType, _ target: DType) -> Bool {
        source == target || (source.isFloatingPoint && [.f32, .f16, .bf16].contains(target))
    }

    /// Converts `count` elements from `input` (of type `source`) to `output` (of type `target`).
    public static func convert(_ input: UnsafeRawPointer, _ source: DType, to output: UnsafeMutableRawPointer,
                               _ target: DType, count: Int) {
        if source == target {
            output.copyMemory(from: input, byteCount: count * source.byteSize)
            return
        }
        if target == .f32 {
            toF32(input, source, output.assumingMemoryBound(to: Float.self), count)
            return
        }
        if source == .f32 {
            fromF32(input.assumingMemoryBound(to: Float.self), output, target, count)
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { scratch in
            var done = 0
            while done < count {
                let n = min(chunk, count - done)
                toF32(input + done * source.byteSize, source, scratch.baseAddress!, n)
                fromF32(scratch.baseAddress!, output + done * target.byteSize, target, n)
                done += n
            }
        }
    }

    private static func toF32(_ input: UnsafeRawPointer, _ source: DType, _ output: UnsafeMutablePointer<Float>, _ n: Int) {
        switch source {
        case .f32: output.update(from: input.assumingMemoryBound(to: Float.self), count: n)
        case .f16: bfq_f16_to_f32(input.assumingMemoryBound(to: UInt16.self), output, n)
        case .bf16: bfq_bf16_to_f32(input.assumingMemoryBound(to: UInt16.self), output, n)
        case .f64: bfq_f64_to_f32(input.assumingMemoryBound(to: Double.self), output, n)
        case .f8e4m3: bfq_f8_to_f32(input.assumingMemoryBound(to: UInt8.self), output, n, 0)
        case .f8e5m2: bfq_f8_to_f32(input.assumingMemoryBound(to: UInt8.self), output, n, 1)
        default: preconditionFailure("not a floating-point type: \(source)")
        }
    }

    private static func fromF32(_ input: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, _ target: DType, _ n: Int) {
        switch target {
        case .f32: output.assumingMemoryBound(to: Float.self).update(from: input, count: n)
        case .f16: bfq_f32_to_f16(input, output.assumingMemoryBound(to: UInt16.self), n)
        case .bf16: bfq_f32_to_bf16(input, output.assumingMemoryBound(to: UInt16.self), n)
        default: preconditionFailure("unsupported target type: \(target)")
        }
    }

    /// Converts `bytes` of `source` elements to `target` straight into the writer's buffer, a buffer-full at a time,
    /// on all threads.
    public static func convert(_ bytes: UnsafeRawBufferPointer, _ source: DType, to target: DType,
                               into out: ByteSink) throws {
        let count = bytes.count / source.byteSize
        let perChunk = out.bufferCapacity / target.byteSize
        let perTask = 1 << 18
        var done = 0
        while done < count {
            let n = min(perChunk, count - done)
            try out.withOutputBuffer(capacity: n * target.byteSize) { region in
                let input = bytes.baseAddress! + done * source.byteSize
                let output = region.baseAddress!
                Parallel.forEach((n + perTask - 1) / perTask) { task in
                    let start = task * perTask
                    ElementConverter.convert(input + start * source.byteSize, source, to: output + start * target.byteSize,
                                             target, count: min(perTask, n - start))
                }
                return n * target.byteSize
            }
            done += n
        }
    }
}
