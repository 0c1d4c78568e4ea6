/// One tensor of a checkpoint: its name, type, shape and where its elements are in the mapped file.
///
/// Elements live in a *storage*, a byte range of the file. A tensor is a strided view of its storage
/// starting `storageOffset` elements in; several tensors may share one storage (PyTorch views).
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range of the storage within the file.
    public var storage: Range<Int>
    /// Offset of the first element within the storage, in elements.
    public var storageOffset: Int
    /// Strides in elements, one per dimension.
    public var strides: [Int]
    /// Which of the checkpoint's files holds the storage (`Checkpoint.files`); 0 in a single-file checkpoint.
    public var file = 0

    /// A contiguous tensor occupying `bytes` of the file exactly.
    public init(name: String, dtype: DType, shape: [Int], bytes: Range<Int>) {
        self.init(name: name, dtype: dtype, shape: shape, storage: bytes, storageOffset: 0,
                  strides: TensorEntry.contiguousStrides(for: shape))
    }

    public init(name: String, dtype: DType, shape: [Int], storage: Range<Int>, storageOffset: Int, strides: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.storageOffset = storageOffset
        self.strides = strides
    }

    /// Number of elements (1 for a 0-d tensor). Callers validate shapes before building entries, so this cannot overflow.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Bytes the tensor occupies when written out contiguously.
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// Whether the elements sit in row-major order without gaps, so the bytes can be used in place.
    public var isContiguous: Bool {
        if elementCount <= 1 { return true }
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// Row-major strides for `shape`. Readers refuse shapes whose element count overflows, but a shape with a zero
    /// dimension holds no elements whatever its other dimensions: its strides saturate at `Int.max` rather than trap.
    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for index in shape.indices.reversed() {
            strides[index] = running
            let (product, overflow) = running.multipliedReportingOverflow(by: max(shape[index], 1))
            running = overflow ? Int.max : product
        }
        return strides
    }
}
