/// Copies a strided view out of its storage into row-major order.
enum StridedGather {
    /// Whether every element of the view lies inside a storage of `storageElements` elements.
    /// Strides must be non-negative; the check is overflow-safe.
    static func fits(shape: [Int], strides: [Int], storageOffset: Int, storageElements: Int) -> Bool {
        guard shape.count == strides.count, storageOffset >= 0 else { return false }
        if shape.contains(0) { return storageOffset <= storageElements }
        var last = storageOffset
        for (size, stride) in zip(shape, strides) {
            guard size > 0, stride >= 0 else { return false }
            let (span, o1) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = last.addingReportingOverflow(span)
            guard !o1, !o2 else { return false }
            last = sum
        }
        return last < storageElements
    }

    static func gather(from storage: UnsafeRawBufferPointer, tensor: TensorEntry, into output: UnsafeMutableRawBufferPointer) {
        let size = tensor.dtype.byteSize
        let count = tensor.elementCount
        guard count > 0, let src = storage.baseAddress, let dst = output.baseAddress else { return }
        let rank = tensor.shape.count
        var index = [Int](repeating: 0, count: rank)
        var sourceElement = tensor.storageOffset
        let innerSize = rank > 0 ? tensor.shape[rank - 1] : 1
        let innerStride = rank > 0 ? tensor.strides[rank - 1] : 0
        var written = 0
        while written < count {
            // Copy one innermost row.
            var element = sourceElement
            for _ in 0 ..< innerSize {
                (dst + written * size).copyMemory(from: src + element * size, byteCount: size)
                element += innerStride
                written += 1
            }
            // Advance the outer index like an odometer.
            var dim = rank - 2
            while dim >= 0 {
                index[dim] += 1
                sourceElement += tensor.strides[dim]
                if index[dim] < tensor.shape[dim] { break }
                sourceElement -= tensor.strides[dim] * tensor.shape[dim]
                index[dim] = 0
                dim -= 1
            }
        }
    }
}
