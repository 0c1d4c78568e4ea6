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

    /// Opens the UNet in `path`. The configuration is `configPath` when given, else a diffusers `config.json` of
    /// `UNet2DConditionModel` beside the file (the layout of a diffusers `unet/` folder), else inferred from the weights.
    /// - Parameter resident: keep decoded f32 weights (nil: unless the file is a .bfq or GGUF).
    public static func open(_ path: String, config configPath: String? = nil, resident: Bool? = nil) throws -> LoadedUNet {
        let weights = try CheckpointUNetWeights(try CheckpointFile.open(path), resident: resident)
        let config: UNetConfig
        let source: String
        if let file = self.configPath(for: path, given: configPath) {
            config = try UNetConfig.load(file)
            source = file
        } else {
            config = try UNetConfig.inferred(from: weights.shapes, path: path)
            source = "weights"
        }
        try weights.check(against: config)
        return LoadedUNet(weights: weights, model: UNetModel(config: config), configSource: source)
    }

    /// The config file that applies to the model in `path`: `given`, else `siblingConfig(of:)`.
    public static func configPath(for path: String, given: String?) -> String? { given ?? siblingConfig(of: path) }

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
