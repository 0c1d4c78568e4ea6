import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Converts any checkpoint bfq reads into a GGUF file: a ggml type per tensor (GGUFWriteOptions), laid out as
/// stable-diffusion.cpp or ComfyUI-GGUF lay out diffusion models, blocks encoded as gguf-py encodes them.
public struct GGUFConversion {
    /// One output tensor.
    public struct Output: Sendable, Equatable {
        public let name: String
        /// The input tensor.
        let source: TensorEntry
        /// Dimensions in ggml order (ComfyUI layout: flattened to rows of 256 where its rule says so).
        public let dimensions: [Int]
        /// The PyTorch shape recorded as `comfy.gguf.orig_shape.NAME` when the tensor was flattened.
        public let originalShape: [Int]?
        public let type: GGMLType
        /// Why the tensor has its type ("--type", "rule PATTERN", "1-D", ...).
        public let reason: String

        public var elementCount: Int { dimensions.reduce(1, *) }
        public var byteCount: Int { elementCount / type.block.elements * type.block.bytes }
    }

    public let checkpoint: Checkpoint
    public let options: GGUFWriteOptions
    public let outputs: [Output]
    /// Metadata written ahead of the tensors.
    public let metadata: [GGUFFile.Entry]
    static let alignment = 32
    /// ggml's LlamaFileType of a file whose weights are mostly of each type (K-quants: the uniform "_S" recipes).
    static let fileTypes: [GGMLType: UInt32] = [.f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q8_0: 7, .q5_0: 8, .q5_1: 9,
                                                .q2_k: 10, .q3_k: 11, .q4_k: 14, .q5_k: 16, .q6_k: 18, .bf16: 32,
                                                .tq1_0: 36, .tq2_0: 37]

    /// Plans writing the tensors `plan` selects and names (its element types are not used) to `outputPath`.
    public init(_ plan: ConversionPlan, options: GGUFWriteOptions, outputPath: String) throws {
        checkpoint = plan.checkpoint
        self.options = options
        if let cache = (checkpoint.decoder as? ContainerTensorDecoder)?.reader.manifest.timeFeatures {
            throw GGUFError.cannotConvert(path: checkpoint.path,
                                          reason: "the .bfq replaces the time embedding by a cache of \(cache.timesteps.count) "
                                              + "timesteps, which GGUF readers cannot use; quantize without --cache-timesteps to convert the model")
        }
        let prefix = UNetNaming.ldmPrefix
        var selected = Array(zip(plan.sources, plan.outputs.map(\.name)))
        if options.layout == .comfy, selected.contains(where: { $0.1.hasPrefix(prefix) }) {
            // ComfyUI-GGUF holds the diffusion model alone, under its bare names.
            selected = selected.filter { $0.1.hasPrefix(prefix) }
        }
        var outputs: [Output] = []
        var names = Set<[UInt8]>()
        let nameLimit = options.layout == .comfy ? 127 : 159
        for (tensor, planned) in selected {
            var name = planned
            if options.layout == .comfy, name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
            guard name.utf8.count <= nameLimit else {
                throw GGUFError.cannotWrite(path: outputPath, tensor: name, rule: "the name is longer than the \(nameLimit) bytes "
                    + "\(options.layout == .comfy ? "ComfyUI-GGUF" : "stable-diffusion.cpp") reads")
            }
            guard names.insert(Array(name.utf8)).inserted else {
                throw CheckpointError.duplicateOutputName(path: outputPath, tensor: name)
            }
            guard tensor.shape.count <= GGUFReader.maximumDimensions else {
                throw GGUFError.cannotWrite(path: outputPath, tensor: name,
                                            rule: "\(tensor.shape.count) dimensions; GGUF holds at most \(GGUFReader.maximumDimensions)")
            }
            guard tensor.dtype.isFloatingPoint else {
                guard let type = GGMLType.allCases.first(where: { $0.plainType == tensor.dtype }) else {
                    throw GGUFError.cannotWrite(path: outputPath, tensor: name, rule: "GGUF has no type for \(tensor.dtype.rawValue) elements")
                }
                outputs.append(Output(name: name, source: tensor, dimensions: tensor.shape.reversed(), originalShape: nil, type: type,
                                      reason: "integer"))
                continue
            }
            var dimensions = Array(tensor.shape.reversed())
            var original: [Int]?
            let count = tensor.elementCount
            if options.layout == .comfy, tensor.shape.count > 1, count >= 512, count % 256 == 0, tensor.shape.last! % 256 != 0 {
                // ComfyUI-GGUF's rule for convolutions and narrow linears: rows of 256 so that every type's blocks fit.
                original = tensor.shape
                dimensions = [256, count / 256]
            }
            var choice = options.choose(name: name, rank: dimensions.count, row: dimensions.first ?? 1)
            if options.closest, !options.rules.contains(where: { $0.matches(name) }),
               let entry = (checkpoint.decoder as? ContainerTensorDecoder)?.entry(of: tensor) {
                if let levels = entry.levels {
                    choice = GGUFWriteOptions.closestType(levels: levels, row: dimensions.first ?? 1,
                                                          exactTernary: GGUFConversion.isExactTernary(entry, storedRow: dimensions.first ?? 1))
                } else {
                    choice.reason = "raw in the .bfq"
                }
            }
            outputs.append(Output(name: name, source: tensor, dimensions: dimensions, originalShape: original, type: choice.type,
                                  reason: choice.reason))
        }
        self.outputs = outputs
        metadata = try GGUFConversion.metadata(checkpoint, outputs: outputs, options: options)
    }

    /// Whether TQ2_0 holds a .bfq tensor's values exactly: a balanced grid of 3 levels (s x {-1, 0, 1}) with f16
    /// scales and no offsets, each 256-element block inside one row (and one scale group) of the tensor, so that the
    /// block's largest magnitude, TQ2_0's f16 scale, is that row's or group's scale.
    static func isExactTernary(_ entry: ContainerTensor, storedRow: Int) -> Bool {
        guard case let .grid(levels, balanced, scaleType, groupSize, offsetType, _) = entry.encoding,
              levels == 3, balanced, scaleType == .f16, offsetType == nil else { return false }
        let row = entry.shape.dropFirst().reduce(1, *)
        return row % 256 == 0 && storedRow % 256 == 0 && (groupSize.map { $0 % 256 == 0 } ?? true)
    }

    /// stable-diffusion.cpp writes no metadata; ComfyUI-GGUF writes the architecture, quantization version, file
    /// type, and the original shape of every tensor it flattened.
    private static func metadata(_ checkpoint: Checkpoint, outputs: [Output], options: GGUFWriteOptions) throws -> [GGUFFile.Entry] {
        guard options.layout == .comfy else { return [] }
        let recognition = ModelRecognition.recognise(names: outputs.map(\.name),
                                                     shapes: outputs.map { $0.originalShape ?? Array($0.dimensions.reversed()) })
        let architecture: String
        switch recognition?.family {
        case .sd1?, .sd2?: architecture = "sd1"
        case .sdxl?: architecture = "sdxl"
        case nil:
            throw GGUFError.cannotConvert(path: checkpoint.path,
                                          reason: "no SD 1.x/2.x or SDXL UNet, which --layout comfy needs (ComfyUI-GGUF loads by architecture)")
        }
        var weights: [GGMLType: Int] = [:]
        for output in outputs { weights[output.type, default: 0] += output.elementCount }
        let main = weights.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key ?? .f16
        var entries = [
            GGUFFile.Entry(key: "general.architecture", value: .string(architecture)),
            GGUFFile.Entry(key: "general.quantization_version", value: .uint32(2)),
            GGUFFile.Entry(key: "general.file_type", value: .uint32(fileTypes[main] ?? 1)),
        ]
        for output in outputs {
            guard let shape = output.originalShape else { continue }
            entries.append(GGUFFile.Entry(key: GGUFFile.originalShapeKey(output.name),
                                          value: .array(elementType: GGUFValue.TypeID.int32.rawValue, count: shape.count,
                                                        shape.map { .int32(Int32($0)) })))
        }
        return entries
    }

    /// The error a block-quantized tensor's encoding adds to the values it was given.
    public struct AddedError: Sendable, Equatable {
        public let name: String
        /// Sum of the squared input values and of the squared differences of the decoded blocks from them.
        public let signal: Double, noise: Double

        /// 10 log10(signal / noise); nil when the blocks hold the values exactly.
        public var sqnrDB: Double? { noise == 0 ? nil : 10 * log10(signal / noise) }
    }

    /// One line per type: tensors, share of the elements, and why tensors have their type; the total; and the
    /// error the quantized tensors add (`errors`, as `write` returns them).
    public func summary(errors: [AddedError]) -> String {
        let total = max(outputs.reduce(0) { $0 + $1.elementCount }, 1)
        let bytes = outputs.reduce(0) { $0 + $1.byteCount }
        var lines: [String] = []
        for type in Set(outputs.map(\.type)).sorted(by: { $0.rawValue < $1.rawValue }) {
            let these = outputs.filter { $0.type == type }
            let share = Double(these.reduce(0) { $0 + $1.elementCount }) / Double(total) * 100
            let reasons = Dictionary(grouping: these, by: \.reason).map { "\($0.key) ×\($0.value.count)" }.sorted()
            lines.append("\(type.name) ×\(these.count), \(Formatting.fixed(share, digits: 1))% of elements (\(reasons.joined(separator: "; ")))")
        }
        lines.append("\(outputs.count) tensors, \(Formatting.grouped(bytes)) bytes of data, "
            + "\(Formatting.fixed(Double(bytes * 8) / Double(total), digits: 3)) bits per element")
        if !errors.isEmpty {
            let signal = errors.reduce(0) { $0 + $1.signal }, noise = errors.reduce(0) { $0 + $1.noise }
            let exact = errors.filter { $0.noise == 0 }.count
            var line = "error added by the \(errors.count) quantized tensors: "
                + (noise == 0 ? "none (every block exact)" : "SQNR \(Formatting.fixed(10 * log10(signal / noise), digits: 2)) dB overall")
            if noise > 0, let worst = errors.filter({ $0.noise > 0 }).min(by: { $0.sqnrDB! < $1.sqnrDB! }) {
                line += ", lowest \(Formatting.fixed(worst.sqnrDB!, digits: 2)) dB (\(worst.name)); \(exact) exact"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Writes the file to `path` atomically; `durable` as in `OutputTarget`. Returns the error each block-quantized
    /// tensor's encoding adds, in output order.
    @discardableResult
    public func write(to path: String, durable: Bool = true) throws -> [AddedError] {
        let out = try OutputTarget(path: path, inputs: checkpoint.files, durable: durable).open()
        try out.write(GGUFConversion.header(outputs: outputs, metadata: metadata))
        var errors: [AddedError] = []
        for output in outputs {
            let before = out.offset
            if let error = try emit(output, to: out) { errors.append(error) }
            precondition(out.offset - before == output.byteCount, "wrote the wrong size for \(output.name)")
            try out.writeZeros((GGUFConversion.alignment - output.byteCount % GGUFConversion.alignment) % GGUFConversion.alignment)
        }
        try out.commit()
        return errors
    }

    /// Header, metadata and tensor declarations, padded to the alignment.
    static func header(outputs: [Output], metadata: [GGUFFile.Entry]) -> [UInt8] {
        var bytes = GGUFReader.magic
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        func put(_ text: String) { put(UInt64(text.utf8.count)); bytes.append(contentsOf: text.utf8) }
        func put(_ value: GGUFValue) {
            switch value {
            case let .uint8(v): put(v)
            case let .int8(v): put(v)
            case let .uint16(v): put(v)
            case let .int16(v): put(v)
            case let .uint32(v): put(v)
            case let .int32(v): put(v)
            case let .float32(v): put(v.bitPattern)
            case let .bool(v): put(UInt8(v ? 1 : 0))
            case let .string(v): put(v)
            case let .uint64(v): put(v)
            case let .int64(v): put(v)
            case let .float64(v): put(v.bitPattern)
            case let .array(type, count, elements):
                put(type)
                put(UInt64(count))
                elements.forEach(put)
            }
        }
        put(UInt32(3))
        put(UInt64(outputs.count))
        put(UInt64(metadata.count))
        for entry in metadata {
            put(entry.key)
            put(entry.value.typeID.rawValue)
            put(entry.value)
        }
        var offset = 0
        for output in outputs {
            put(output.name)
            put(UInt32(output.dimensions.count))
            output.dimensions.forEach { put(UInt64($0)) }
            put(output.type.rawValue)
            put(UInt64(offset))
            offset += output.byteCount + (alignment - output.byteCount % alignment) % alignment
        }
        bytes.append(contentsOf: repeatElement(0, count: (alignment - bytes.count % alignment) % alignment))
        return bytes
    }

    /// Appends one tensor's blocks: plain types converted element by element, block types encoded from f32 on
    /// every core (each block alone, so the bytes do not depend on the split) and decoded again to measure the error
    /// they add (summed per task, tasks in order: the same figures for any thread count).
    private func emit(_ output: Output, to out: AtomicFileWriter) throws -> AddedError? {
        let entry = output.source
        if let plain = output.type.plainType {
            try checkpoint.withContiguousBytes(of: entry) { bytes in
                if plain == entry.dtype { try out.write(bytes); return }
                try ElementConverter.convert(bytes, entry.dtype, to: plain, into: out)
            }
            checkpoint.release(entry)
            return nil
        }
        let values = try checkpoint.floats(of: entry)
        let block = output.type.block
        let blocks = values.count / block.elements
        let perTask = max(1, (1 << 16) / block.elements)
        let perBuffer = out.bufferCapacity / block.bytes
        var done = 0
        var signal = 0.0, noise = 0.0
        try values.withUnsafeBufferPointer { source in
            while done < blocks {
                let n = min(perBuffer, blocks - done)
                let tasks = (n + perTask - 1) / perTask
                var sums = [(Double, Double)](repeating: (0, 0), count: tasks)
                try out.withOutputBuffer(capacity: n * block.bytes) { region in
                    let input = source.baseAddress! + done * block.elements
                    let target = region.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    sums.withUnsafeMutableBufferPointer { sums in
                        Parallel.forEach(tasks) { task in
                            let first = task * perTask, count = min(perTask, n - first)
                            let x = input + first * block.elements, encoded = target + first * block.bytes
                            var status = bfq_gguf_quantize(output.type.rawValue, x, encoded, count)
                            precondition(status == 0, "no block encoder for \(output.type.name)")
                            let decoded = UnsafeMutablePointer<Float>.allocate(capacity: count * block.elements)
                            defer { decoded.deallocate() }
                            status = bfq_gguf_dequantize(output.type.rawValue, encoded, decoded, count)
                            precondition(status == 0, "no block decoder for \(output.type.name)")
                            var s = 0.0, e = 0.0
                            for i in 0 ..< count * block.elements {
                                let difference = Double(decoded[i]) - Double(x[i])
                                s += Double(x[i]) * Double(x[i])
                                e += difference * difference
                            }
                            sums[task] = (s, e)
                        }
                    }
                    return n * block.bytes
                }
                for (s, e) in sums { signal += s; noise += e }
                done += n
            }
        }
        return AddedError(name: output.name, signal: signal, noise: noise)
    }
}
