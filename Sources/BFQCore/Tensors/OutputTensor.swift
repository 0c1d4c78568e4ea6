/// A tensor to be written: name, element type and shape. Its bytes come from a `TensorByteSource`.
public struct OutputTensor: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// The type the tensor had in the file it came from (recorded by formats that keep it, such as .bfq).
    public var sourceType: DType

    public init(name: String, dtype: DType, shape: [Int], sourceType: DType? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.sourceType = sourceType ?? dtype
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }
}

/// Supplies the bytes of output tensors, one tensor at a time, in whatever order the writer asks.
public protocol TensorByteSource {
    /// Appends exactly `tensors[index].byteCount` bytes of tensor `index`, row-major little-endian, to `out`.
    func emit(_ index: Int, to out: ByteSink) throws
}

/// A format bfq writes.
public protocol CheckpointWriter {
    /// Writes `tensors` with `metadata` to `target` atomically, pulling bytes from `source`.
    static func write(to target: OutputTarget, tensors: [OutputTensor], metadata: [String: String],
                      source: TensorByteSource) throws
}
