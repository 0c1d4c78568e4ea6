/// What a forward pass reads besides the activations: the weights, each image's timestep and conditioning, and an
/// optional observer of every linear layer's and convolution's input.
final class UNetContext {
    let weights: UNetWeightSource
    /// Encoder hidden states [width][batch][tokens].
    let encoder: FeatureMap
    /// One timestep per image.
    let timesteps: [Float]
    /// SDXL's add_embedding input [P + K x time width][batch], or nil.
    let addedConditioning: FeatureMap?
    /// Called with a layer's module name, its input and its stride before the layer reads its weights.
    let observer: UNetModel.Observer?

    init(weights: UNetWeightSource, encoder: FeatureMap, timesteps: [Float], addedConditioning: FeatureMap? = nil,
         observer: UNetModel.Observer? = nil) {
        self.weights = weights
        self.encoder = encoder
        self.timesteps = timesteps
        self.addedConditioning = addedConditioning
        self.observer = observer
    }

    /// The weight `module.weight` of `shape` and, when `bias`, `module.bias`.
    func parameters(_ module: String, shape: [Int], bias: Bool) throws -> (weight: [Float], bias: [Float]?) {
        (try weights.floats(module + ".weight", shape: shape),
         bias ? try weights.floats(module + ".bias", shape: [shape[0]]) : nil)
    }
}

/// A linear layer, or a 1x1 convolution, on every column: y = W x (+ b).
struct LinearLayer {
    let module: String
    let inputs: Int
    let outputs: Int
    var bias = true
    /// Stored as a 1x1 convolution weight [out, in, 1, 1] rather than [out, in].
    var convolution = false

    func callAsFunction(_ x: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        try context.observer?(module, x, 1)
        let shape = convolution ? [outputs, inputs, 1, 1] : [outputs, inputs]
        let (weight, bias) = try context.parameters(module, shape: shape, bias: self.bias)
        return MatrixProduct.linear(x, weight: weight, bias: bias, outChannels: outputs)
    }
}

/// A square convolution with zero padding kernel / 2.
struct ConvolutionLayer {
    let module: String
    let inputs: Int
    let outputs: Int
    var kernel = 3
    var stride = 1

    func callAsFunction(_ x: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        try context.observer?(module, x, stride)
        let (weight, bias) = try context.parameters(module, shape: [outputs, inputs, kernel, kernel], bias: true)
        return Convolution.apply(x, weight: weight, bias: bias, outChannels: outputs, kernel: kernel, stride: stride,
                                 pad: kernel / 2)
    }
}

/// GroupNorm with its affine parameters, optionally followed by SiLU.
struct GroupNormLayer {
    let module: String
    let channels: Int
    let groups: Int
    let epsilon: Float
    var silu = false

    func callAsFunction(_ x: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        let (gamma, beta) = try context.parameters(module, shape: [channels], bias: true)
        return Normalization.group(x, groups: groups, gamma: gamma, beta: beta!, epsilon: epsilon, silu: silu)
    }
}
