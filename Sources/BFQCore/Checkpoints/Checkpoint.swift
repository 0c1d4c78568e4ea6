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

/// A checkpoint opened for reading: its tensors in file order, its string metadata, and the mappings they point into.
/// Most checkpoints are one file; a shard index or a diffusers folder is one checkpoint over several files, each
/// tensor naming its file by `TensorEntry.file`.
public struct Checkpoint: Sendable {
    /// The path the checkpoint was opened from: a file, a shard index or a folder.
    public let path: String
    /// The files the tensors live in; `files[0]` is the file of a single-file checkpoint.
    public let files: [MappedFile]
    /// The format of the files (of the first, when a folder mixes safetensors and PyTorch files).
    public let format: CheckpointFormat
    /// How the files make up the checkpoint, when it is more than one file.
    public var assembly: CheckpointAssembly?
    /// String metadata: safetensors `__metadata__`, or the non-tensor scalars of a PyTorch checkpoint.
    public var metadata: [String: String]
    public var tensors: [TensorEntry]
    /// Things the reader skipped without failing (for example unknown pickled objects), one line each.
    public var warnings: [String]
    /// Produces tensors that are not stored plainly (a .bfq container's); nil when every tensor is a view of the file.
    public let decoder: TensorDecoder?
    /// A diffusers `config.json` that describes the checkpoint's UNet (a diffusers folder's), when there is one.
    public var unetConfigPath: String?

    /// A checkpoint of one file.
    public init(file: MappedFile, format: CheckpointFormat, metadata: [String: String], tensors: [TensorEntry],
                warnings: [String] = [], decoder: TensorDecoder? = nil) {
        self.init(path: file.path, files: [file], format: format, metadata: metadata, tensors: tensors,
                  warnings: warnings, decoder: decoder)
    }

    /// A checkpoint of `files`, opened from `path`; each tensor's `file` indexes `files`.
    public init(path: String, files: [MappedFile], format: CheckpointFormat, assembly: CheckpointAssembly? = nil,
                metadata: [String: String], tensors: [TensorEntry], warnings: [String] = [], decoder: TensorDecoder? = nil) {
        precondition(!files.isEmpty && tensors.allSatisfy { files.indices.contains($0.file) }, "tensor outside the files")
        self.path = path
        self.files = files
        self.format = format
        self.assembly = assembly
        self.metadata = metadata
        self.tensors = tensors
        self.warnings = warnings
        self.decoder = decoder
    }

    /// Bytes of all the files.
    public var fileBytes: Int { files.reduce(0) { $0 + $1.count } }

    /// Drops `tensor`'s pages from the resident set (`MappedFile.release`), once it has been read.
    public func release(_ tensor: TensorEntry) {
        files[tensor.file].release(tensor.storage)
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
            return try body(files[tensor.file].bytes(in: start ..< start + tensor.byteCount))
        }
        let storage = files[tensor.file].bytes(in: tensor.storage)
        let gathered = UnsafeMutableRawBufferPointer.allocate(byteCount: tensor.byteCount, alignment: 64)
        defer { gathered.deallocate() }
        StridedGather.gather(from: storage, tensor: tensor, into: gathered)
        return try body(UnsafeRawBufferPointer(gathered))
    }
}
