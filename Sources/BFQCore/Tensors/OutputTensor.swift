/// A tensor to be written: name, element type and shape. Its bytes come from a `TensorByteSource`.
public struct OutputTensor: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }
}

/// Supplies the bytes of output tensors, one tensor at a time, in whatever order the writer asks.
public protocol TensorByteSource {
    /// Appends exactly `tensors[index].byteCount` bytes of tensor `index`, row-major little-endian, to `out`.
    func emit(_ index: Int, to out: AtomicFileWriter) throws
}

/// A format bfq writes.
public protocol CheckpointWriter {
    /// Writes `tensors` with `metadata` to `target` atomically, pulling bytes from `source`.
    static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String],
                      source: TensorByteSource) throws
}
