/// Where a UNet's weights come from: the one interface between the model's math and files. Names are diffusers'
/// (`down_blocks.0.resnets.0.conv1.weight`) whatever the file uses.
public protocol UNetWeightSource: AnyObject, Sendable {
    /// The file, for messages.
    var path: String { get }
    /// Shapes of the UNet's tensors by diffusers name.
    var shapes: [String: [Int]] { get }
    /// The time-feature cache that replaces the time embedding, if the file has one.
    var timeFeatures: TimeFeatureTable? { get }
    /// The tensor `name` widened to f32.
    /// - Throws: `UNetError` when it is missing, not floating-point, or not of `shape`.
    func floats(_ name: String, shape: [Int]) throws -> [Float]
    /// The file's names of UNet tensors no call of `floats` has asked for yet, in file order.
    func unreadTensors() -> [String]
}

/// Cached time features (spec/bfq.md section 3.3) by diffusers module name: every ResNet's `time_emb_proj` output for
/// each cached timestep.
public struct TimeFeatureTable: Sendable {
    public let timesteps: [Int]
    /// Offset and width of each layer's features within one timestep's row.
    let layers: [String: (offset: Int, width: Int)]
    /// f32 values [timestep][layer][width].
    let values: [Float]
    let rowWidth: Int

    public init(timesteps: [Int], layers: [(name: String, width: Int)], values: [Float]) {
        self.timesteps = timesteps
        var offsets: [String: (offset: Int, width: Int)] = [:]
        var offset = 0
        for layer in layers {
            offsets[layer.name] = (offset, layer.width)
            offset += layer.width
        }
        self.layers = offsets
        self.values = values
        rowWidth = offset
    }

    /// The features of `layer` at `timestep`, or nil when the layer has none; the timestep must be cached.
    func features(of layer: String, at timestep: Float, path: String) throws -> ArraySlice<Float>? {
        guard let (offset, width) = layers[layer] else { return nil }
        guard let row = timesteps.firstIndex(where: { Float($0) == timestep }) else {
            throw UNetError.timestepNotCached(path: path, timestep: timestep, cached: timesteps)
        }
        return values[row * rowWidth + offset ..< row * rowWidth + offset + width]
    }
}
