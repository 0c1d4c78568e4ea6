/// What `inspect` reports about a checkpoint: format, sizes, dtypes, naming scheme, recognised model, metadata.
public struct CheckpointSummary: Sendable {
    public var path: String
    public var fileSize: Int
    public var format: CheckpointFormat
    public var tensorCount: Int
    public var parameters: Int
    public var tensorBytes: Int
    /// Per dtype: tensors and elements, widest type first.
    public var dtypes: [(dtype: DType, tensors: Int, parameters: Int)]
    public var naming: NamingScheme?
    public var model: ModelRecognition?
    public var metadata: [String: String]
    public var tensors: [TensorEntry]
    public var warnings: [String]

    public init(_ checkpoint: Checkpoint) {
        path = checkpoint.file.path
        fileSize = checkpoint.file.count
        format = checkpoint.format
        tensorCount = checkpoint.tensors.count
        parameters = checkpoint.parameterCount
        tensorBytes = checkpoint.tensorBytes
        var byType: [DType: (Int, Int)] = [:]
        for tensor in checkpoint.tensors {
            let current = byType[tensor.dtype] ?? (0, 0)
            byType[tensor.dtype] = (current.0 + 1, current.1 + tensor.elementCount)
        }
        dtypes = byType.keys.sorted(by: >).map { ($0, byType[$0]!.0, byType[$0]!.1) }
        let names = checkpoint.tensors.map(\.name)
        naming = UNetNaming.detect(names)
        model = ModelRecognition.recognise(names: names, shapes: checkpoint.tensors.map(\.shape))
        metadata = checkpoint.metadata
        tensors = checkpoint.tensors
        warnings = checkpoint.warnings
    }

    /// The `inspect --json` object.
    public var json: JSONValue {
        .object([
            JSONMember("file", .string(path)),
            JSONMember("file_size", .int(Int64(fileSize))),
            JSONMember("format", .string(format.rawValue)),
            JSONMember("tensor_count", .int(Int64(tensorCount))),
            JSONMember("parameters", .int(Int64(parameters))),
            JSONMember("tensor_bytes", .int(Int64(tensorBytes))),
            JSONMember("dtypes", .object(dtypes.map {
                JSONMember($0.dtype.rawValue, .object([JSONMember("tensors", .int(Int64($0.tensors))),
                                                      JSONMember("parameters", .int(Int64($0.parameters)))]))
            })),
            JSONMember("naming", naming.map { .string($0.rawValue) } ?? .null),
            JSONMember("model", model.map { .string($0.summary) } ?? .null),
            JSONMember("metadata", .object(metadata.keys.sorted().map { JSONMember($0, .string(metadata[$0]!)) })),
            JSONMember("warnings", .array(warnings.map { .string($0) })),
            JSONMember("tensors", .array(tensors.map { tensor in
                .object([
                    JSONMember("name", .string(tensor.name)),
                    JSONMember("dtype", .string(tensor.dtype.rawValue)),
                    JSONMember("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                    JSONMember("bytes", .int(Int64(tensor.byteCount))),
                ])
            })),
        ])
    }

    /// The plain-text report: a summary, then one line per tensor when `listTensors`.
    public func text(listTensors: Bool) -> String {
        var lines = [
            "file        \(Formatting.printable(path))",
            "format      \(format.rawValue)",
            "size        \(Formatting.grouped(fileSize)) bytes",
            "tensors     \(Formatting.grouped(tensorCount))",
            "parameters  \(Formatting.grouped(parameters)) (\(Formatting.millions(parameters)))",
            "data        \(Formatting.grouped(tensorBytes)) bytes",
            "dtypes      " + dtypes.map { "\($0.dtype.rawValue) ×\($0.tensors)" }.joined(separator: ", "),
            "naming      \(naming?.rawValue ?? "none (no SD UNet names found)")",
            "model       \(model?.summary ?? "not recognised")",
        ]
        if metadata.isEmpty {
            lines.append("metadata    none")
        } else {
            lines.append("metadata")
            for key in metadata.keys.sorted() {
                lines.append("  \(Formatting.printable(key)) = \(Formatting.printable(metadata[key]!))")
            }
        }
        if listTensors {
            lines.append("")
            for tensor in tensors {
                lines.append("\(Formatting.printable(tensor.name))  \(tensor.dtype.rawValue)  [\(tensor.shape.map(String.init).joined(separator: ", "))]")
            }
        }
        return lines.joined(separator: "\n")
    }
}
