/// File formats bfq reads and writes, detected from content.
public enum CheckpointFormat: String, Sendable, CaseIterable {
    case safetensors
    case pytorchZip = "pytorch-zip"
    case pytorchLegacy = "pytorch-legacy"
    case bfq
    case gguf
}

/// Produces the bytes of tensors that are not stored plainly in the file.
public protocol TensorDecoder: Sendable {
    /// Calls `body` with `tensor`'s elements, row-major, little-endian, of `tensor.dtype`.
    func withDecodedBytes<R>(of tensor: TensorEntry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
}

/// A checkpoint opened for reading: its tensors in file order, its string metadata, and the mapping they point into.
public struct Checkpoint: Sendable {
    public let file: MappedFile
    public let format: CheckpointFormat
    /// String metadata: safetensors `__metadata__`, or the non-tensor scalars of a PyTorch checkpoint.
    public var metadata: [String: String]
    public var tensors: [TensorEntry]
    /// Things the reader skipped without failing (for example unknown pickled objects), one line each.
    public var warnings: [String]
    /// Produces tensors that are not stored plainly (a .bfq container's); nil when every tensor is a view of the file.
    public let decoder: TensorDecoder?

    public init(file: MappedFile, format: CheckpointFormat, metadata: [String: String], tensors: [TensorEntry],
                warnings: [String] = [], decoder: TensorDecoder? = nil) {
        self.file = file
        self.format = format
        self.metadata = metadata
        self.tensors = tensors
        self.warnings = warnings
        self.decoder = decoder
    }

    /// Total number of elements over all tensors.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    /// Total bytes of all tensors written contiguously.
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Calls `body` with the tensor's elements in row-major order: in place when the tensor is contiguous,
    /// otherwise gathered into a temporary buffer, or decoded by `decoder`.
    public func withContiguousBytes<R>(of tensor: TensorEntry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if let decoder { return try decoder.withDecodedBytes(of: tensor, body) }
        let size = tensor.dtype.byteSize
        if tensor.isContiguous {
            let start = tensor.storage.lowerBound + tensor.storageOffset * size
            return try body(file.bytes(in: start ..< start + tensor.byteCount))
        }
        let storage = file.bytes(in: tensor.storage)
        let gathered = UnsafeMutableRawBufferPointer.allocate(byteCount: tensor.byteCount, alignment: 64)
        defer { gathered.deallocate() }
        StridedGather.gather(from: storage, tensor: tensor, into: gathered)
        return try body(UnsafeRawBufferPointer(gathered))
    }
}
