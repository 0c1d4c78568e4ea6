/// What `inspect` reports about a checkpoint: format, sizes, dtypes, naming scheme, recognised model, metadata.
public struct CheckpointSummary: Sendable {
    public var path: String
    public var fileSize: Int
    public var format: CheckpointFormat
    /// How several files make up the checkpoint (a shard index, a diffusers folder), and their paths.
    public var assembly: CheckpointAssembly?
    public var files: [String]
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
    /// For a .bfq file: its manifest and bit accounting.
    public var container: (manifest: ContainerManifest, accounting: ContainerAccounting)?
    /// For a GGUF file: its header and tensor declarations.
    public var gguf: GGUFFile?

    public init(_ checkpoint: Checkpoint) {
        path = checkpoint.path
        fileSize = checkpoint.fileBytes
        format = checkpoint.format
        assembly = checkpoint.assembly
        files = checkpoint.files.map(\.path)
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
        if let decoder = checkpoint.decoder as? ContainerTensorDecoder {
            let manifest = decoder.reader.manifest
            container = (manifest, ContainerAccounting(manifest: manifest, fileSize: fileSize))
        }
        gguf = (checkpoint.decoder as? GGUFTensorDecoder)?.gguf
    }

    /// Per ggml type of a GGUF file: tensors, elements and stored bytes, in type-id order.
    var ggmlTypes: [(type: GGMLType, tensors: Int, elements: Int, bytes: Int)] {
        guard let gguf else { return [] }
        let groups = Dictionary(grouping: gguf.tensors, by: \.type)
        return groups.keys.sorted { $0.rawValue < $1.rawValue }.map { type in
            let these = groups[type]!
            return (type, these.count, these.reduce(0) { $0 + $1.elementCount }, these.reduce(0) { $0 + $1.byteCount })
        }
    }

    /// The `inspect --json` object.
    public var json: JSONValue {
        var members = baseMembers
        if let gguf {
            members[members.count - 1] = JSONMember("tensors", .array(zip(tensors, gguf.tensors).map { tensor, declared in
                .object([
                    JSONMember("name", .string(tensor.name)),
                    JSONMember("dtype", .string(tensor.dtype.rawValue)),
                    JSONMember("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                    JSONMember("bytes", .int(Int64(tensor.byteCount))),
                    JSONMember("ggml_type", .string(declared.type.name)),
                    JSONMember("ggml_dimensions", .array(declared.dimensions.map { .int(Int64($0)) })),
                    JSONMember("stored_bytes", .int(Int64(declared.byteCount))),
                ])
            }))
            members.append(JSONMember("gguf", .object([
                JSONMember("version", .int(Int64(gguf.version))),
                JSONMember("layout", .string(gguf.layout.rawValue)),
                JSONMember("alignment", .int(Int64(gguf.alignment))),
                JSONMember("ggml_types", .object(ggmlTypes.map {
                    JSONMember($0.type.name, .object([JSONMember("tensors", .int(Int64($0.tensors))),
                                                     JSONMember("elements", .int(Int64($0.elements))),
                                                     JSONMember("bytes", .int(Int64($0.bytes)))]))
                })),
                JSONMember("bits_per_weight", .double(ggufBitsPerWeight)),
            ])))
        }
        guard let container else { return .object(members) }
        // A .bfq checkpoint lists its tensors in manifest order.
        members[members.count - 1] = JSONMember("tensors", .array(zip(tensors, container.manifest.tensors).map { tensor, entry in
            return .object([
                JSONMember("name", .string(tensor.name)),
                JSONMember("dtype", .string(tensor.dtype.rawValue)),
                JSONMember("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                JSONMember("bytes", .int(Int64(tensor.byteCount))),
                JSONMember("source_dtype", .string(entry.sourceType.rawValue)),
                JSONMember("encoding", .string(entry.encoding.name)),
                JSONMember("bits", .double(entry.bitsPerCode)),
                JSONMember("levels", entry.levels.map { .int(Int64($0)) } ?? .null),
                JSONMember("packing", entry.packing.map { .string($0.rawValue) } ?? .null),
                JSONMember("stored_bytes", .int(Int64(entry.storedBytes))),
            ])
        }))
        members.append(JSONMember("summary", .object([
            JSONMember("average_bits", .double(container.accounting.averageBits)),
            JSONMember("file_bits_per_weight", .double(container.accounting.fileBitsPerWeight)),
            JSONMember("bytes", .int(Int64(fileSize))),
            JSONMember("weights", .int(Int64(container.accounting.weights))),
        ])))
        return .object(members)
    }

    private var baseMembers: [JSONMember] {
        [
            JSONMember("file", .string(path)),
            JSONMember("file_size", .int(Int64(fileSize))),
            JSONMember("format", .string(format.rawValue)),
            JSONMember("assembly", assembly.map { .string($0.summary) } ?? .null),
            JSONMember("files", .array(files.map { .string($0) })),
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
        ]
    }

    /// Bits of tensor data per element of a GGUF file (padding and header excluded).
    var ggufBitsPerWeight: Double {
        let elements = ggmlTypes.reduce(0) { $0 + $1.elements }, bytes = ggmlTypes.reduce(0) { $0 + $1.bytes }
        return Double(bytes * 8) / Double(max(elements, 1))
    }

    /// The plain-text report: a summary, then one line per tensor when `listTensors`.
    public func text(listTensors: Bool) -> String {
        var lines = [
            "file        \(Formatting.printable(path))",
            "format      \(format.rawValue)",
        ] + (assembly.map { ["files       \(files.count): " + Formatting.printable($0.summary)] } ?? []) + [
            "size        \(Formatting.grouped(fileSize)) bytes",
            "tensors     \(Formatting.grouped(tensorCount))",
            "parameters  \(Formatting.grouped(parameters)) (\(Formatting.millions(parameters)))",
            "data        \(Formatting.grouped(tensorBytes)) bytes",
            "dtypes      " + dtypes.map { "\($0.dtype.rawValue) ×\($0.tensors)" }.joined(separator: ", "),
            "naming      \(naming?.rawValue ?? "none (no SD UNet names found)")",
            "model       \(model?.summary ?? "not recognised")",
        ]
        if let container {
            let encodings = Dictionary(grouping: container.manifest.tensors, by: \.encoding.name)
            lines.append("encodings   " + encodings.keys.sorted().map { "\($0) ×\(encodings[$0]!.count)" }.joined(separator: ", "))
            let packings = Dictionary(grouping: container.manifest.tensors.compactMap(\.packing), by: \.rawValue)
            if !packings.isEmpty {
                lines.append("packing     " + packings.keys.sorted(by: >).map { "\($0) ×\(packings[$0]!.count)" }.joined(separator: ", "))
            }
            lines.append("avg bits    \(Formatting.fixed(container.accounting.averageBits, digits: 4)) (BitsFusion accounting over "
                + "\(Formatting.grouped(container.accounting.weights)) conv/linear weights)")
            lines.append("file bits   \(Formatting.fixed(container.accounting.fileBitsPerWeight, digits: 4)) per weight; "
                + "fp16 size / file size = \(Formatting.fixed(Double(parameters * 2) / Double(max(fileSize, 1)), digits: 2))")
        }
        if let gguf {
            lines.append("gguf        version \(gguf.version), \(gguf.layout.rawValue) layout, alignment \(gguf.alignment)")
            lines.append("ggml types  " + ggmlTypes.map {
                "\($0.type.name) ×\($0.tensors) (\(Formatting.fixed(Double($0.elements) / Double(max(parameters, 1)) * 100, digits: 1))%)"
            }.joined(separator: ", "))
            lines.append("data bits   \(Formatting.fixed(ggufBitsPerWeight, digits: 4)) per weight; "
                + "fp16 size / file size = \(Formatting.fixed(Double(parameters * 2) / Double(max(fileSize, 1)), digits: 2))")
            let long = gguf.tensors.filter { $0.name.utf8.count > GGUFReader.ggmlNameLimit }.count
            if long > 0 {
                lines.append("long names  \(long) tensor names exceed \(GGUFReader.ggmlNameLimit) bytes: stock ggml refuses them, "
                    + "stable-diffusion.cpp (159) and ComfyUI-GGUF (127) read them")
            }
        }
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
            let entries = container?.manifest.tensors
            for (index, tensor) in tensors.enumerated() {
                var line = "\(Formatting.printable(tensor.name))  \(tensor.dtype.rawValue)  [\(tensor.shape.map(String.init).joined(separator: ", "))]"
                if let declared = gguf?.tensors[index] {
                    line += "  \(declared.type.name)  \(Formatting.fixed(declared.type.bitsPerWeight, digits: 3)) bits"
                        + "  \(Formatting.grouped(declared.byteCount)) bytes stored"
                }
                if let entry = entries?[index] {
                    line += "  \(entry.encoding.name)  \(Formatting.fixed(entry.bitsPerCode, digits: 3)) bits"
                        + "\(entry.levels.map { "  \($0) levels" } ?? "")\(entry.packing.map { " \($0.rawValue)" } ?? "")"
                        + "  \(Formatting.grouped(entry.storedBytes)) bytes stored"
                        + "  \(Formatting.fixed(Double(tensor.byteCount) / Double(max(entry.storedBytes, 1)), digits: 2))x"
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}
