#if canImport(Glibc)
import Glibc
#endif

/// A UNet ready to run: its weights (any checkpoint format) and the model built from its configuration.
public struct LoadedUNet: Sendable {
    public let weights: UNetWeightSource
    public let model: UNetModel
    /// Where the configuration came from: a config.json path, or "weights" when inferred.
    public let configSource: String

    public init(weights: UNetWeightSource, model: UNetModel, configSource: String) {
        self.weights = weights
        self.model = model
        self.configSource = configSource
    }

    /// Opens the UNet in `path` (a file, shard index or diffusers folder; see `open(_:config:resident:)`).
    public static func open(_ path: String, config configPath: String? = nil, resident: Bool? = nil) throws -> LoadedUNet {
        try open(try CheckpointFile.open(path), config: configPath, resident: resident)
    }

    /// Opens the UNet in `checkpoint`. The configuration is `configPath` when given, else the diffusers `config.json`
    /// of `UNet2DConditionModel` that came with it (a diffusers folder's, or one beside the file, as in a diffusers
    /// `unet/` folder), else inferred from the weights.
    /// - Parameter resident: keep decoded f32 weights (nil: unless the file is a .bfq or GGUF).
    public static func open(_ checkpoint: Checkpoint, config configPath: String? = nil, resident: Bool? = nil) throws -> LoadedUNet {
        let weights = try CheckpointUNetWeights(checkpoint, resident: resident)
        let config: UNetConfig
        let source: String
        if let file = self.configPath(for: checkpoint, given: configPath) {
            config = try UNetConfig.load(file)
            source = file
        } else {
            config = try UNetConfig.inferred(from: weights.shapes, path: checkpoint.path)
            source = "weights"
        }
        try weights.check(against: config)
        return LoadedUNet(weights: weights, model: UNetModel(config: config), configSource: source)
    }

    /// The config file that applies to the UNet in `checkpoint`: `given`, else the one it came with, else
    /// `siblingConfig(of:)` its file.
    public static func configPath(for checkpoint: Checkpoint, given: String?) -> String? {
        if let path = given ?? checkpoint.unetConfigPath { return path }
        switch checkpoint.assembly {
        case nil, .shards?: return siblingConfig(of: checkpoint.path)
        case .pipeline?, .component?: return nil
        }
    }

    /// `config.json` in `path`'s folder when it describes a `UNet2DConditionModel`.
    private static func siblingConfig(of path: String) -> String? {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let candidate = folder + "/config.json"
        guard access(candidate, R_OK) == 0, let file = try? MappedFile(path: candidate),
              let json = try? JSONParser.parse(file.bytes),
              json["_class_name"]?.stringValue == "UNet2DConditionModel" else { return nil }
        return candidate
    }

    /// The noise prediction for `input`, [batch][out channels][height][width].
    public func predict(_ input: UNetInput) throws -> [Float] {
        try model.predict(input, weights: weights)
    }
}
