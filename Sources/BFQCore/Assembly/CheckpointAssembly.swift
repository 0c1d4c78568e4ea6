/// How several files make up one checkpoint.
public enum CheckpointAssembly: Sendable, Equatable {
    /// A shard index (`model.safetensors.index.json`, `pytorch_model.bin.index.json`, ...) and its shards, in order.
    case shards(index: String, shards: [String])
    /// A diffusers pipeline folder (`model_index.json`): its components with weights, each under `NAME.`.
    case pipeline(modelIndex: String, components: [DiffusersComponent])
    /// One diffusers component folder (config.json and its weights), under the file's own names.
    case component(DiffusersComponent)

    /// One line for `inspect`, e.g. "3 shards of model.safetensors.index.json".
    public var summary: String {
        switch self {
        case let .shards(index, shards):
            return "\(shards.count) shard\(shards.count == 1 ? "" : "s") listed by \(Self.lastComponent(index))"
        case let .pipeline(_, components):
            return "diffusers pipeline: " + components.map { "\($0.name) (\($0.summary))" }.joined(separator: ", ")
        case let .component(component):
            return "diffusers component folder: \(component.summary)"
        }
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// One component of a diffusers folder: its folder name, the class model_index.json or config.json names, and the
/// weights read (one file or a shard index).
public struct DiffusersComponent: Sendable, Equatable {
    public var name: String
    public var className: String?
    /// The weight file or shard index read, relative to the component's folder.
    public var weights: String
    /// Files the weights span (1 unless sharded).
    public var fileCount: Int
    /// The component's config.json, when it describes a `UNet2DConditionModel`.
    public var unetConfig: String?

    var summary: String {
        (className.map { $0 + ", " } ?? "") + weights + (fileCount > 1 ? " (\(fileCount) shards)" : "")
    }
}
