/// Element types `convert --dtype` offers.
public enum TargetDType: String, CaseIterable, Sendable {
    case keep, f32, f16, bf16

    /// The type a tensor of `source` type is written as: floating-point tensors take the target type,
    /// integer and boolean tensors always keep theirs.
    public func resolve(_ source: DType) -> DType {
        guard source.isFloatingPoint else { return source }
        switch self {
        case .keep: return source
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

/// What `convert` changes on the way through.
public struct ConversionOptions: Sendable {
    public var dtype: TargetDType
    /// Rename the UNet's tensors to this scheme; nil keeps names.
    public var names: NamingScheme?
    /// Components to take out or drop (`CheckpointSurgery`), applied before renaming.
    public var surgery: CheckpointSurgery

    public init(dtype: TargetDType = .keep, names: NamingScheme? = nil, only: String? = nil, ema: Bool = false, prune: Bool = false) {
        self.dtype = dtype
        self.names = names
        surgery = CheckpointSurgery(only: only, ema: ema, prune: prune)
    }
}

/// Which input tensor becomes which output tensor, and the bytes of each on demand.
public struct ConversionPlan: TensorByteSource {
    public let checkpoint: Checkpoint
    public let outputs: [OutputTensor]
    public let metadata: [String: String]
    /// The input tensor behind each output.
    public let sources: [TensorEntry]
    /// What the surgery kept and dropped, when there was one.
    public let surgery: CheckpointSurgery.Report?

    /// Plans the conversion of `checkpoint` to `outputPath` (named in errors).
    public init(_ checkpoint: Checkpoint, options: ConversionOptions, outputPath: String) throws {
        var checkpoint = checkpoint
        if options.surgery.isEmpty {
            surgery = nil
        } else {
            let result = try options.surgery.apply(to: checkpoint)
            checkpoint = result.checkpoint
            surgery = result.report
        }
        self.checkpoint = checkpoint
        let selected = checkpoint.tensors
        var names = selected.map(\.name)
        if let scheme = options.names {
            guard UNetNaming.detect(names) != nil else { throw CheckpointError.noUNetToRename(path: checkpoint.path) }
            try UNetConfig.checkConsistency(names: names, shapes: selected.map(\.shape), path: checkpoint.path)
            names = try UNetNaming.rename(names, to: scheme)
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw CheckpointError.duplicateOutputName(path: outputPath, tensor: name)
        }
        sources = selected
        outputs = zip(selected, names).map { entry, name in
            OutputTensor(name: name, dtype: options.dtype.resolve(entry.dtype), shape: entry.shape, sourceType: entry.dtype)
        }
        metadata = checkpoint.metadata
    }

    /// Writes every output tensor to `path` in the format its extension names; `durable` as in `OutputTarget`.
    public func write(to path: String, durable: Bool = true) throws {
        let writer = try CheckpointFile.writer(for: path)
        try writer.write(to: OutputTarget(path: path, inputs: checkpoint.files, inputPath: checkpoint.path, durable: durable), tensors: outputs,
                         metadata: metadata, source: self)
    }

    public func emit(_ index: Int, to out: ByteSink) throws {
        let entry = sources[index]
        let target = outputs[index].dtype
        try checkpoint.withContiguousBytes(of: entry) { bytes in
            if entry.dtype == target {
                try out.write(bytes)
                return
            }
            try ElementConverter.convert(bytes, entry.dtype, to: target, into: out)
        }
        checkpoint.release(entry)
    }
}
