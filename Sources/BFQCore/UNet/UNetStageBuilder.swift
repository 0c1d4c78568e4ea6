import CBFQShims

/// Lays out `UNet2DConditionModel.forward` as stages: time embedding, conv_in, each down block's ResNets,
/// transformers and downsampler, the mid block, each up block's ResNets (on the hidden state concatenated with the
/// matching skip), transformers and upsampler, and the output head.
struct UNetStageBuilder {
    let config: UNetConfig
    private var stages: [UNetStage] = []

    init(_ config: UNetConfig) { self.config = config }

    consuming func build() -> [UNetStage] {
        let c = config, n = c.blockCount, timeWidth = c.timeWidth
        addTime(width: c.blockChannels[0], timeWidth: timeWidth)
        let convIn = ConvolutionLayer(module: "conv_in", inputs: c.inChannels, outputs: c.blockChannels[0], kernel: c.convInKernel)
        add([convIn.module], push: true) { state, context in state.hidden = try convIn(state.hidden, context) }

        var channels = c.blockChannels[0]
        for block in 0 ..< n {
            let outputs = c.blockChannels[block]
            for layer in 0 ..< c.layersPerBlock {
                addResNet("down_blocks.\(block).resnets.\(layer)", inputs: channels, outputs: outputs, timeWidth: timeWidth,
                          push: !c.downAttention[block])
                channels = outputs
                if c.downAttention[block] {
                    addTransformer("down_blocks.\(block).attentions.\(layer)", channels: outputs, heads: c.heads[block],
                                   layers: c.downTransformerLayers[block][layer], push: true)
                }
            }
            if block < n - 1 {
                let down = ConvolutionLayer(module: "down_blocks.\(block).downsamplers.0.conv", inputs: outputs, outputs: outputs,
                                            stride: 2)
                add([down.module], push: true) { state, context in state.hidden = try down(state.hidden, context) }
            }
        }
        addResNet("mid_block.resnets.0", inputs: channels, outputs: channels, timeWidth: timeWidth)
        if c.midAttention {
            addTransformer("mid_block.attentions.0", channels: channels, heads: c.midHeads, layers: c.midTransformerLayers)
            addResNet("mid_block.resnets.1", inputs: channels, outputs: channels, timeWidth: timeWidth)
        }

        let reversed = Array(c.blockChannels.reversed())
        for block in 0 ..< n {
            let outputs = reversed[block], skipInput = reversed[min(block + 1, n - 1)]
            for layer in 0 ... c.layersPerBlock {
                let skip = layer == c.layersPerBlock ? skipInput : outputs
                addResNet("up_blocks.\(block).resnets.\(layer)", inputs: channels + skip, outputs: outputs,
                          timeWidth: timeWidth, concatenate: true)
                channels = outputs
                if c.upAttention[block] {
                    addTransformer("up_blocks.\(block).attentions.\(layer)", channels: outputs, heads: c.heads[n - 1 - block],
                                   layers: c.upTransformerLayers[block][layer])
                }
            }
            if block < n - 1 {
                let up = ConvolutionLayer(module: "up_blocks.\(block).upsamplers.0.conv", inputs: outputs, outputs: outputs)
                add([up.module]) { state, context in
                    // Nearest upsampling to the next skip's size (2x, or diffusers' upsample_size for odd sizes).
                    let target = state.skips.last!
                    state.hidden = try up(Self.nearest(state.hidden, height: target.height, width: target.width), context)
                }
            }
        }
        let norm = GroupNormLayer(module: "conv_norm_out", channels: channels, groups: c.normGroups, epsilon: c.normEpsilon, silu: true)
        let convOut = ConvolutionLayer(module: "conv_out", inputs: channels, outputs: c.outChannels, kernel: c.convOutKernel)
        add([convOut.module]) { state, context in state.hidden = try convOut(try norm(state.hidden, context), context) }
        return stages
    }

    private mutating func add(_ modules: [String], push: Bool = false,
                              _ body: @escaping @Sendable (inout UNetState, UNetContext) throws -> Void) {
        stages.append(UNetStage(modules: modules) { state, context in
            try body(&state, context)
            if push { state.skips.append(state.hidden) }
        })
    }

    /// t -> sinusoids -> linear_1 -> SiLU -> linear_2 (+ SDXL's added conditioning through add_embedding) -> SiLU, or
    /// nothing when the weights cache the time features.
    private mutating func addTime(width: Int, timeWidth: Int) {
        let linear1 = LinearLayer(module: "time_embedding.linear_1", inputs: width, outputs: timeWidth)
        let linear2 = LinearLayer(module: "time_embedding.linear_2", inputs: timeWidth, outputs: timeWidth)
        let added = config.textTime.map { textTime in
            (LinearLayer(module: "add_embedding.linear_1", inputs: textTime.inputWidth, outputs: timeWidth),
             LinearLayer(module: "add_embedding.linear_2", inputs: timeWidth, outputs: timeWidth))
        }
        let (flip, shift) = (config.flipSinToCos, config.frequencyShift)
        add([linear1.module, linear2.module] + (added.map { [$0.0.module, $0.1.module] } ?? [])) { state, context in
            guard context.weights.timeFeatures == nil else { return }
            let batch = context.timesteps.count
            let rows = TimeFeatureCache.sinusoids(context.timesteps, width: width, flipSinToCos: flip, shift: shift)
            var values = [Float](repeating: 0, count: rows.count)
            for b in 0 ..< batch { for k in 0 ..< width { values[k * batch + b] = rows[b * width + k] } }
            var h = try linear1(FeatureMap(channels: width, batch: batch, height: 1, width: 1, values: values), context)
            bfq_silu(&h.values, h.values.count, ElementwiseKernels.vectorized)
            h = try linear2(h, context)
            if let (addLinear1, addLinear2) = added, let conditioning = context.addedConditioning {
                var a = try addLinear1(conditioning, context)
                bfq_silu(&a.values, a.values.count, ElementwiseKernels.vectorized)
                h.add(try addLinear2(a, context))
            }
            bfq_silu(&h.values, h.values.count, ElementwiseKernels.vectorized)
            state.time = h
        }
    }

    private mutating func addResNet(_ prefix: String, inputs: Int, outputs: Int, timeWidth: Int, push: Bool = false,
                                    concatenate: Bool = false) {
        let resnet = ResNetBlock(prefix: prefix, inputs: inputs, outputs: outputs, timeWidth: timeWidth,
                                 groups: config.normGroups, epsilon: config.normEpsilon)
        add(resnet.modules, push: push) { state, context in
            if concatenate { state.hidden = Self.concatenate(state.hidden, state.skips.removeLast()) }
            state.hidden = try resnet(state.hidden, time: state.time, context)
        }
    }

    private mutating func addTransformer(_ prefix: String, channels: Int, heads: Int, layers: Int, push: Bool = false) {
        let transformer = SpatialTransformer(prefix: prefix, channels: channels, heads: heads, layers: layers,
                                             crossWidth: config.crossAttentionDim, groups: config.normGroups,
                                             linearProjection: config.linearProjection)
        add(transformer.modules, push: push) { state, context in state.hidden = try transformer(state.hidden, context) }
    }

    /// [a; b] along channels (diffusers' torch.cat([hidden, skip], dim=1)).
    static func concatenate(_ a: FeatureMap, _ b: FeatureMap) -> FeatureMap {
        FeatureMap(channels: a.channels + b.channels, batch: a.batch, height: a.height, width: a.width,
                   values: a.values + b.values)
    }

    /// Nearest-neighbour resize as PyTorch's `interpolate(mode="nearest")`: source index floor(i x in / out) in f32,
    /// exactly i / 2 when doubling.
    static func nearest(_ x: FeatureMap, height: Int, width: Int) -> FeatureMap {
        func sources(_ size: Int, _ target: Int) -> [Int] {
            if target == 2 * size { return (0 ..< target).map { $0 >> 1 } }
            let scale = Float(size) / Float(target)
            return (0 ..< target).map { min(Int((Float($0) * scale).rounded(.down)), size - 1) }
        }
        let rows = sources(x.height, height), columns = sources(x.width, width)
        return FeatureMap(channels: x.channels, batch: x.batch, height: height, width: width) { out in
            x.values.withUnsafeBufferPointer { input in
                for image in 0 ..< x.channels * x.batch {
                    let source = input.baseAddress! + image * x.plane, target = out + image * height * width
                    for (y, sy) in rows.enumerated() {
                        for (x0, sx) in columns.enumerated() { target[y * width + x0] = source[sy * x.width + sx] }
                    }
                }
            }
        }
    }
}
