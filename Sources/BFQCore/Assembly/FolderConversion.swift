import Foundation

/// A conversion written as a folder, all of it or nothing (`AtomicFolderWriter`): safetensors shards of at most
/// `shardSize` bytes with their index, named as transformers and diffusers name them (`NAME-00001-of-00003.safetensors`,
/// `NAME.safetensors.index.json`; one shard is `NAME.safetensors` alone), and for the diffusers layout a UNet folder
/// (`diffusion_pytorch_model`, config.json).
public struct FolderConversion {
    public let plan: ConversionPlan
    /// The file name stem: diffusion_pytorch_model for a diffusers folder, model otherwise.
    public let stem: String
    /// Output indices of each shard.
    public let shards: [[Int]]
    /// config.json's text and where it came from ("weights" when inferred), for a diffusers folder.
    public let config: (text: String, source: String)?

    /// Plans the folder. `diffusers` writes a UNet folder: the plan must hold one UNet, in diffusers names; its
    /// config.json is `unetConfig` (which must describe these weights), else the one the checkpoint came with when that
    /// describes them, else inferred from them.
    public init(_ plan: ConversionPlan, shardSize: Int?, diffusers: Bool, unetConfig: String? = nil) throws {
        self.plan = plan
        stem = diffusers ? "diffusion_pytorch_model" : "model"
        shards = shardSize.map { ShardSize.split(plan.outputs.map(\.byteCount), limit: $0) } ?? [Array(plan.outputs.indices)]
        guard diffusers else {
            config = nil
            return
        }
        let names = plan.outputs.map(\.name), shapes = plan.outputs.map(\.shape)
        if let unetConfig {
            let given = try UNetConfig.load(unetConfig)
            do {
                try given.check(names: names, shapes: shapes, path: plan.checkpoint.path)
            } catch let error as UNetError {
                throw AssemblyError.disagreement(config: unetConfig, weights: plan.checkpoint.path, error)
            }
            config = (try TextFile.read(unetConfig), unetConfig)
            return
        }
        if let path = LoadedUNet.configPath(for: plan.checkpoint, given: nil), let loaded = try? UNetConfig.load(path),
           (try? loaded.check(names: names, shapes: shapes, path: path)) != nil {
            config = (try TextFile.read(path), path)
            return
        }
        var table: [String: [Int]] = [:]
        for (name, shape) in zip(names, shapes) { table[name] = shape }
        let inferred = try UNetConfig.inferred(from: table, path: plan.checkpoint.path)
        try inferred.check(names: names, shapes: shapes, path: plan.checkpoint.path)
        config = (JSONWriter.python(inferred.diffusersJSON), "weights")
    }

    /// The name of shard `index`.
    public func shardName(_ index: Int) -> String {
        guard shards.count > 1 else { return stem + ".safetensors" }
        return stem + String(format: "-%05d-of-%05d.safetensors", index + 1, shards.count)
    }

    /// The index's name, when there is more than one shard.
    public var indexName: String? { shards.count > 1 ? stem + ".safetensors.index.json" : nil }

    /// The index text, as huggingface_hub's sharding and diffusers' `save_pretrained` write it
    /// (`json.dumps(index, indent=2, sort_keys=True) + "\n"`).
    public var indexText: String {
        var fileOf: [(name: String, file: String)] = []
        for (shard, members) in shards.enumerated() {
            for index in members { fileOf.append((plan.outputs[index].name, shardName(shard))) }
        }
        fileOf.sort { Array($0.name.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.name.unicodeScalars.map(\.value)) }
        let total = plan.outputs.reduce(0) { $0 + $1.byteCount }
        return JSONWriter.python(.object([
            JSONMember("metadata", .object([JSONMember("total_size", .int(Int64(total)))])),
            JSONMember("weight_map", .object(fileOf.map { JSONMember($0.name, .string($0.file)) })),
        ]))
    }

    /// Whether `name` is a file a folder conversion writes (of either stem), so a previous output may be replaced.
    public static func writes(_ name: String) -> Bool {
        let written = try! Regex(#"(model|diffusion_pytorch_model)(-[0-9]{5}-of-[0-9]{5}\.safetensors|\.safetensors|\.safetensors\.index\.json)"#)
        return name == "config.json" || (try? written.wholeMatch(in: name)) != nil
    }

    /// Writes the folder at `path`. Shards carry the checkpoint's metadata with `format: pt`, which transformers'
    /// loaders require.
    public func write(to path: String, durable: Bool = true) throws {
        let folder = try AtomicFolderWriter(path: path, inputs: plan.checkpoint.files, durable: durable, replaceable: Self.writes)
        var metadata = plan.metadata
        if metadata["format"] == nil { metadata["format"] = "pt" }
        for (shard, members) in shards.enumerated() {
            try SafeTensorsWriter.write(to: folder.target(shardName(shard)), tensors: members.map { plan.outputs[$0] },
                                        metadata: metadata, source: Subset(base: plan, indices: members))
        }
        if let indexName { try TextFile.write(indexText, to: folder.target(indexName)) }
        if let config { try TextFile.write(config.text, to: folder.target("config.json")) }
        try folder.commit()
    }

    /// One line: the files written and the config's source.
    public var summary: String {
        let bytes = plan.outputs.reduce(0) { $0 + $1.byteCount }
        var line = "\(Formatting.grouped(plan.outputs.count)) tensors, \(Formatting.grouped(bytes)) bytes in "
            + (shards.count == 1 ? shardName(0) : "\(shards.count) shards with \(indexName!)")
        if let config { line += "; config.json " + (config.source == "weights" ? "inferred from the weights" : "from \(config.source)") }
        return line
    }

    /// The tensors of one shard, read through the whole plan.
    private struct Subset: TensorByteSource {
        let base: ConversionPlan
        let indices: [Int]
        func emit(_ index: Int, to out: ByteSink) throws { try base.emit(indices[index], to: out) }
    }
}
