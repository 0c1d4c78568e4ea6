/// Failures of checkpoints made of several files (shard indexes, diffusers folders) and of writing them.
public enum AssemblyError: Error, CustomStringConvertible, Equatable {
    case badIndex(path: String, rule: String)
    case missingShard(index: String, shard: String, tensor: String)
    case shardNotPlain(index: String, shard: String, format: String)
    case tensorNotInShard(index: String, shard: String, tensor: String)
    case tensorNotListed(index: String, shard: String, tensor: String)
    case tensorInOtherShard(index: String, shard: String, tensor: String, listed: String)
    case tensorInTwoFiles(tensor: String, first: String, second: String)
    case missingComponent(modelIndex: String, component: String, folder: String)
    case noWeights(folder: String, found: [String])
    case ambiguousWeights(folder: String, files: [String])
    case configDisagrees(config: String, weights: String, detail: String)
    case notACheckpointFolder(path: String)
    case badShardSize(String)
    case outputFolderHoldsOtherFiles(path: String, file: String)
    case outputFolderHoldsInput(path: String, input: String)
    case outputFolderUnnamed(path: String)
    case outputNotAFolder(path: String)

    /// `configDisagrees` from the error a check of `weights` against `config` threw, without its leading "WEIGHTS: ".
    static func disagreement(config: String, weights: String, _ error: UNetError) -> AssemblyError {
        let text = "\(error)"
        return .configDisagrees(config: config, weights: weights,
                                detail: text.hasPrefix(weights + ": ") ? String(text.dropFirst(weights.count + 2)) : text)
    }

    public var description: String {
        switch self {
        case let .badIndex(path, rule):
            return "\(path): not a valid shard index: \(rule)"
        case let .missingShard(index, shard, tensor):
            return "\(index): shard \(shard) (listed for \(tensor)) does not exist"
        case let .shardNotPlain(index, shard, format):
            return "\(index): shard \(shard) is a \(format) file; shards must be safetensors or PyTorch files"
        case let .tensorNotInShard(index, shard, tensor):
            return "\(index): lists \(tensor) in \(shard), which does not hold it"
        case let .tensorNotListed(index, shard, tensor):
            return "\(shard): holds \(tensor), which \(index) does not list for it"
        case let .tensorInOtherShard(index, shard, tensor, listed):
            return "\(shard): holds \(tensor), which \(index) lists in \(listed)"
        case let .tensorInTwoFiles(tensor, first, second):
            return "\(second): holds \(tensor), which \(first) holds too"
        case let .missingComponent(modelIndex, component, folder):
            return "\(modelIndex): names component \(component), but \(folder) is not a folder"
        case let .noWeights(folder, found):
            return "\(folder): a model component (config.json) without weights (diffusion_pytorch_model.safetensors, "
                + "model.safetensors, their .bin forms or shard indexes)" + (found.isEmpty ? "" : "; found " + found.joined(separator: ", "))
        case let .ambiguousWeights(folder, files):
            return "\(folder): several weight variants and no plain one: " + files.joined(separator: ", ")
                + "; name the file to read"
        case let .configDisagrees(config, weights, detail):
            return "\(config): disagrees with \(weights): \(detail)"
        case let .notACheckpointFolder(path):
            return "\(path): a folder, but neither a diffusers pipeline (model_index.json) nor a component folder "
                + "(config.json with weights) nor a folder of weights (model.safetensors or a shard index)"
        case let .badShardSize(text):
            return "--shard-size must be a size such as 5GB, 500MB, 2GiB or a byte count of at least 1, not \"\(text)\""
        case let .outputFolderHoldsOtherFiles(path, file):
            return "\(path): exists and holds \(file), which bfq does not write there; refusing to replace the folder"
        case let .outputNotAFolder(path):
            return "\(path): exists and is not a folder (a file or a symbolic link); this output is written as a folder"
        case let .outputFolderUnnamed(path):
            return "\(path): an output folder is replaced by renaming, so it must be named (not ., .. or /)"
        case let .outputFolderHoldsInput(path, input):
            return "\(path): holds the input \(input); refusing to replace it"
        }
    }
}
