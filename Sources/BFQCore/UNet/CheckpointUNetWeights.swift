import Synchronization

/// A UNet's weights from any checkpoint bfq reads (safetensors, .ckpt, .bfq, GGUF), in ldm or diffusers naming, alone
/// or inside a full SD checkpoint. Resident sources widen every tensor to f32 once, when first asked; packed ones (the
/// default for .bfq and GGUF) decode a tensor each time it is asked for, through the lookup-table dequantizer for quantized
/// tensors, so only one layer's f32 weights exist at a time.
public final class CheckpointUNetWeights: UNetWeightSource {
    public let checkpoint: Checkpoint
    public let path: String
    public let shapes: [String: [Int]]
    public let timeFeatures: TimeFeatureTable?
    /// Whether decoded tensors are kept.
    public let resident: Bool
    /// File entries by diffusers name.
    private let entries: [String: TensorEntry]
    /// The file's name for each diffusers name, for messages.
    private let fileNames: [String: String]
    private let kept = Mutex<[String: [Float]]>([:])
    /// Diffusers names of the file's UNet tensors, in file order, and those read so far.
    private let unetNames: [String]
    private let read = Mutex<Set<String>>([])

    /// - Parameter resident: keep decoded tensors (nil: keep them unless the file is a .bfq or GGUF).
    public init(_ checkpoint: Checkpoint, resident: Bool? = nil) throws {
        self.checkpoint = checkpoint
        path = checkpoint.path
        self.resident = resident ?? ![.bfq, .gguf].contains(checkpoint.format)
        let cache = (checkpoint.decoder as? ContainerTensorDecoder)?.reader.manifest.timeFeatures
        // Cache layers are renamed with the tensors, so ldm module names map in the file's own block layout.
        let names = checkpoint.tensors.map(\.name) + (cache?.layers.map { $0.name + ".weight" } ?? [])
        guard UNetNaming.detect(names) != nil else {
            throw UNetError.notAUNet(path: path, reason: "no SD UNet tensor names (ldm or diffusers)")
        }
        let renamed = try UNetNaming.rename(names, to: .diffusers).map { name in
            name.hasPrefix(UNetNaming.diffusersPrefix) ? String(name.dropFirst(UNetNaming.diffusersPrefix.count)) : name
        }
        var entries: [String: TensorEntry] = [:], fileNames: [String: String] = [:]
        for (entry, name) in zip(checkpoint.tensors, renamed) {
            if let other = fileNames.updateValue(entry.name, forKey: name) {
                throw UNetError.ambiguousTensor(path: path, first: other, second: entry.name)
            }
            entries[name] = entry
        }
        let unetIndices = Set(UNetNaming.groups(checkpoint.tensors.map(\.name)).flatMap(\.indices))
        unetNames = checkpoint.tensors.indices.filter(unetIndices.contains).map { renamed[$0] }
        self.entries = entries
        self.fileNames = fileNames
        shapes = entries.mapValues(\.shape)
        if let cache, let reader = (checkpoint.decoder as? ContainerTensorDecoder)?.reader {
            let layers = zip(cache.layers, renamed[checkpoint.tensors.count...]).map { layer, name in
                (name: String(name.dropLast(".weight".count)), width: layer.width)
            }
            timeFeatures = TimeFeatureTable(timesteps: cache.timesteps, layers: layers, values: try reader.timeFeatureValues() ?? [])
        } else {
            timeFeatures = nil
        }
    }

    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        read.withLock { _ = $0.insert(name) }
        if resident, let values = kept.withLock({ $0[name] }) { return values }
        guard let entry = entries[name] else {
            throw UNetError.missingTensor(path: path, name: name, fileName: fileName(of: name))
        }
        guard entry.shape == shape, entry.dtype.isFloatingPoint else {
            throw UNetError.weightMismatch(path: path, name: fileNames[name] ?? name, expected: "F32/F16/BF16 \(shape)",
                                           found: "\(entry.dtype.rawValue) \(entry.shape)")
        }
        let values = try checkpoint.floats(of: entry)
        if resident { kept.withLock { $0[name] = values } }
        return values
    }

    /// Checks that the file's UNet tensors are exactly the ones `config` reads, before anything runs.
    /// - Throws: `UNetError` naming the first tensor that does not fit, or the first missing one.
    public func check(against config: UNetConfig) throws {
        try config.checkTensors(unetNames, shapes: shapes, timeFeaturesCached: timeFeatures != nil, path: path) { name in
            fileNames[name] ?? fileName(of: name)
        }
    }

    public func unreadTensors() -> [String] {
        let read = self.read.withLock { $0 }
        return unetNames.filter { !read.contains($0) }.map { fileNames[$0]! }
    }

    /// The name `name` would have in the file's scheme, for messages about missing tensors.
    private func fileName(of name: String) -> String {
        guard UNetNaming.detect(Array(fileNames.values)) == .ldm,
              let renamed = try? UNetNaming.rename(Array(fileNames.keys) + [name], to: .ldm).last else { return name }
        return renamed
    }
}
