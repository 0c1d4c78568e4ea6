import CBFQShims

/// diffusers' `ResnetBlock2D` as SD uses it: GroupNorm, SiLU, 3x3 conv, plus the time features, GroupNorm, SiLU,
/// 3x3 conv, added to the input (through a 1x1 `conv_shortcut` when the channel count changes).
struct ResNetBlock {
    let prefix: String
    let inputs: Int
    let outputs: Int
    let timeWidth: Int
    let groups: Int
    let epsilon: Float

    var modules: [String] {
        ["conv1", "time_emb_proj", "conv2"].map { "\(prefix).\($0)" } + (inputs == outputs ? [] : ["\(prefix).conv_shortcut"])
    }

    /// `time`: SiLU(temb) [timeWidth][batch], or nil when the weights hold cached time features.
    func callAsFunction(_ x: FeatureMap, time: FeatureMap?, _ context: UNetContext) throws -> FeatureMap {
        var h = try GroupNormLayer(module: "\(prefix).norm1", channels: inputs, groups: groups, epsilon: epsilon, silu: true)(x, context)
        h = try ConvolutionLayer(module: "\(prefix).conv1", inputs: inputs, outputs: outputs)(h, context)
        let features = try timeFeatures(time, context)
        let (plane, batch) = (h.plane, h.batch)
        h.values.withUnsafeMutableBufferPointer { values in
            for row in 0 ..< outputs * batch {
                let add = features.values[row]
                for i in row * plane ..< (row + 1) * plane { values[i] += add }
            }
        }
        h = try GroupNormLayer(module: "\(prefix).norm2", channels: outputs, groups: groups, epsilon: epsilon, silu: true)(h, context)
        h = try ConvolutionLayer(module: "\(prefix).conv2", inputs: outputs, outputs: outputs)(h, context)
        let shortcut = inputs == outputs ? x
            : try ConvolutionLayer(module: "\(prefix).conv_shortcut", inputs: inputs, outputs: outputs, kernel: 1)(x, context)
        h.add(shortcut)
        return h
    }

    /// time_emb_proj(SiLU(temb)) [outputs][batch], computed or read from the time-feature cache.
    private func timeFeatures(_ time: FeatureMap?, _ context: UNetContext) throws -> FeatureMap {
        let module = "\(prefix).time_emb_proj"
        if let time {
            return try LinearLayer(module: module, inputs: timeWidth, outputs: outputs)(time, context)
        }
        let batch = context.timesteps.count
        var values = [Float](repeating: 0, count: outputs * batch)
        for (b, timestep) in context.timesteps.enumerated() {
            guard let row = try context.weights.timeFeatures?.features(of: module, at: timestep, path: context.weights.path),
                  row.count == outputs else {
                throw UNetError.missingTensor(path: context.weights.path, name: module + " (cached time features)",
                                              fileName: module + " (cached time features)")
            }
            for (c, value) in row.enumerated() { values[c * batch + b] = value }
        }
        return FeatureMap(channels: outputs, batch: batch, height: 1, width: 1, values: values)
    }
}
