import CBFQShims

/// diffusers' `Transformer2DModel` as SD uses it: GroupNorm (eps 1e-6), `proj_in`, transformer blocks (LayerNorm,
/// self-attention, LayerNorm, cross-attention on the encoder states, LayerNorm, GEGLU feed-forward, each added back),
/// `proj_out`, added to the input. Linear and 1x1-convolution projections are the same product on this layout.
struct SpatialTransformer {
    let prefix: String
    let channels: Int
    let heads: Int
    let layers: Int
    let crossWidth: Int
    let groups: Int
    let linearProjection: Bool

    var modules: [String] {
        var names = ["\(prefix).proj_in", "\(prefix).proj_out"]
        for block in 0 ..< layers {
            let base = "\(prefix).transformer_blocks.\(block)"
            for attention in ["attn1", "attn2"] {
                names += ["to_q", "to_k", "to_v", "to_out.0"].map { "\(base).\(attention).\($0)" }
            }
            names += ["\(base).ff.net.0.proj", "\(base).ff.net.2"]
        }
        return names
    }

    func callAsFunction(_ x: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        let projection = { (name: String) in
            LinearLayer(module: "\(prefix).\(name)", inputs: channels, outputs: channels, convolution: !linearProjection)
        }
        var h = try GroupNormLayer(module: "\(prefix).norm", channels: channels, groups: groups, epsilon: 1e-6)(x, context)
        h = try projection("proj_in")(h, context)
        for block in 0 ..< layers {
            h = try transformerBlock("\(prefix).transformer_blocks.\(block)", h, context)
        }
        h = try projection("proj_out")(h, context)
        h.add(x)
        return h
    }

    private func transformerBlock(_ base: String, _ input: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        var h = input
        var n = try layerNorm("\(base).norm1", h, context)
        h.add(try attention("\(base).attn1", n, context: n, width: channels, context))
        n = try layerNorm("\(base).norm2", h, context)
        h.add(try attention("\(base).attn2", n, context: context.encoder, width: crossWidth, context))
        n = try layerNorm("\(base).norm3", h, context)
        let inner = channels * 4
        let projected = try LinearLayer(module: "\(base).ff.net.0.proj", inputs: channels, outputs: inner * 2)(n, context)
        let gated = FeatureMap(channels: inner, batch: n.batch, height: n.height, width: n.width) { out in
            projected.values.withUnsafeBufferPointer { values in
                let half = inner * n.columns
                let perTask = 1 << 16
                Parallel.forEach((half + perTask - 1) / perTask) { task in
                    let start = task * perTask
                    bfq_geglu(values.baseAddress! + start, values.baseAddress! + half + start, out + start,
                              min(perTask, half - start), ElementwiseKernels.vectorized)
                }
            }
        }
        h.add(try LinearLayer(module: "\(base).ff.net.2", inputs: inner, outputs: channels)(gated, context))
        return h
    }

    private func layerNorm(_ module: String, _ x: FeatureMap, _ context: UNetContext) throws -> FeatureMap {
        let (gamma, beta) = try context.parameters(module, shape: [channels], bias: true)
        return Normalization.layer(x, gamma: gamma, beta: beta!, epsilon: 1e-5)
    }

    /// Multi-head attention of `x`'s tokens over `source`'s (x itself for self-attention, the encoder states for cross).
    private func attention(_ module: String, _ x: FeatureMap, context source: FeatureMap, width: Int,
                           _ context: UNetContext) throws -> FeatureMap {
        let q = try LinearLayer(module: "\(module).to_q", inputs: channels, outputs: channels, bias: false)(x, context)
        let k = try LinearLayer(module: "\(module).to_k", inputs: width, outputs: channels, bias: false)(source, context)
        let v = try LinearLayer(module: "\(module).to_v", inputs: width, outputs: channels, bias: false)(source, context)
        let attended = Attention.apply(q: q, k: k, v: v, heads: heads)
        return try LinearLayer(module: "\(module).to_out.0", inputs: channels, outputs: channels)(attended, context)
    }
}
