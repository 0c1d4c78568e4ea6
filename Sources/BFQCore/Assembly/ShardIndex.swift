#if canImport(Glibc)
import Glibc
#endif

/// A shard index as transformers, diffusers and huggingface_hub write it (`model.safetensors.index.json`,
/// `diffusion_pytorch_model.safetensors.index.json`, `pytorch_model.bin.index.json`): `weight_map`, an object from
/// each tensor name to the file holding it beside the index, and `metadata.total_size`, the tensors' bytes.
public struct ShardIndex: Sendable {
    public let path: String
    /// Tensor name to shard file name, in the index's order.
    public let weightMap: [(tensor: String, shard: String)]
    /// The shard files, each once, sorted by name (the order huggingface_hub numbers them in).
    public let shards: [String]
    /// `metadata.total_size`, when given.
    public let totalSize: Int?

    /// Reads and checks the index in `file`.
    public init(_ file: MappedFile) throws {
        path = file.path
        func bad(_ rule: String) -> AssemblyError { .badIndex(path: file.path, rule: rule) }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch { throw bad("\(error)") }
        guard json.objectValue != nil else { throw bad("the text is not a JSON object") }
        guard let members = json["weight_map"]?.objectValue else { throw bad("no \"weight_map\" object") }
        guard !members.isEmpty else { throw bad("\"weight_map\" lists no tensor") }
        weightMap = try members.map { member in
            guard let shard = member.value.stringValue else { throw bad("weight_map[\"\(member.key)\"] is not a file name") }
            try Self.checkFileName(shard, tensor: member.key, bad: bad)
            return (member.key, shard)
        }
        shards = Set(weightMap.map(\.shard)).sorted()
        switch json["metadata"] {
        case nil, .null: totalSize = nil
        case let metadata?:
            guard metadata.objectValue != nil else { throw bad("\"metadata\" is not an object") }
            switch metadata["total_size"] {
            case nil, .null: totalSize = nil
            case let size?:
                guard let bytes = size.intValue ?? size.doubleValue.flatMap({ $0 == $0.rounded() && abs($0) < 1e18 ? Int64($0) : nil }),
                      bytes >= 0 else { throw bad("metadata.total_size is not a byte count") }
                totalSize = Int(bytes)
            }
        }
    }

    /// A shard is a file beside the index: a relative name without `..`, NUL or empty parts.
    private static func checkFileName(_ name: String, tensor: String, bad: (String) -> AssemblyError) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.hasPrefix("/"), !name.contains("\0"), parts.allSatisfy({ !$0.isEmpty && $0 != ".." && $0 != "." }) else {
            throw bad("weight_map[\"\(tensor)\"] = \"\(Formatting.printable(name))\" is not a file name beside the index")
        }
    }

    /// Opens the index at `path` and its shards as one checkpoint: shards in name order, each shard's tensors in
    /// its own order. Every listed tensor must be in its shard, and every tensor of a shard listed for it.
    public static func open(_ path: String) throws -> Checkpoint {
        let index = try ShardIndex(try MappedFile(path: path))
        var parts = CheckpointParts()
        try index.add(to: &parts, prefix: "")
        return parts.checkpoint(path: path, assembly: .shards(index: path, shards: index.shards.map(index.shardPath)))
    }

    /// The path of shard `name`.
    func shardPath(_ name: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }

    /// Opens every shard and adds its tensors to `parts` under `prefix`.
    func add(to parts: inout CheckpointParts, prefix: String) throws {
        var listed: [String: String] = [:]
        for (tensor, shard) in weightMap { listed[tensor] = shard }
        var counts: [String: Int] = [:]
        for (_, shard) in weightMap { counts[shard, default: 0] += 1 }
        for shard in shards where access(shardPath(shard), F_OK) != 0 {
            throw AssemblyError.missingShard(index: path, shard: shardPath(shard), tensor: weightMap.first { $0.shard == shard }!.tensor)
        }
        var bytes = 0
        for shard in shards {
            let shardPath = self.shardPath(shard)
            let part = try CheckpointParts.openPlain(shardPath, listedBy: path)
            var present = Set<String>()
            for entry in part.tensors {
                present.insert(entry.name)
                guard listed[entry.name] == shard else {
                    guard let other = listed[entry.name] else {
                        throw AssemblyError.tensorNotListed(index: path, shard: shardPath, tensor: entry.name)
                    }
                    throw AssemblyError.tensorInOtherShard(index: path, shard: shardPath, tensor: entry.name, listed: self.shardPath(other))
                }
            }
            if present.count < counts[shard]!, let missing = weightMap.first(where: { $0.shard == shard && !present.contains($0.tensor) }) {
                throw AssemblyError.tensorNotInShard(index: path, shard: shardPath, tensor: missing.tensor)
            }
            bytes += part.tensorBytes
            try parts.add(part, prefix: prefix)
        }
        if let totalSize, totalSize != bytes {
            parts.warn("\(path): metadata.total_size says \(totalSize) bytes; the shards' tensors hold \(bytes)")
        }
    }
}
