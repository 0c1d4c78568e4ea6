/// The architecture of an SD 1.x/2.x or SDXL-family UNet (diffusers' `UNet2DConditionModel` with SD's block types),
/// read from a diffusers `config.json` or inferred from the weights' names and shapes.
public struct UNetConfig: Equatable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    /// Output channels of each down block (up blocks mirror them).
    public var blockChannels: [Int]
    /// ResNets per down block; up blocks have one more.
    public var layersPerBlock: Int
    /// Whether each down block has spatial transformers (CrossAttnDownBlock2D) or not (DownBlock2D).
    public var downAttention: [Bool]
    /// The same for up blocks, in execution order (CrossAttnUpBlock2D or UpBlock2D).
    public var upAttention: [Bool]
    /// Attention heads of each down block's transformers; up blocks use them reversed, the mid block the last.
    public var heads: [Int]
    /// Transformer blocks in each down block's spatial transformers, per layer ([block][layer]).
    public var downTransformerLayers: [[Int]]
    /// The same for each up block in execution order (layersPerBlock + 1 layers each).
    public var upTransformerLayers: [[Int]]
    /// Transformer blocks in the mid block's spatial transformer; 0 when the mid block is one ResNet
    /// (`UNetMidBlock2D`, as in SSD-1B and Segmind Vega).
    public var midTransformerLayers: Int
    /// SDXL's `text_time` added conditioning, or nil (SD 1.x/2.x).
    public var textTime: TextTimeConditioning?
    /// Width of `encoder_hidden_states`.
    public var crossAttentionDim: Int
    /// Linear `proj_in`/`proj_out` (SD 2.x) rather than 1x1 convolutions (the same product on bfq's layout).
    public var linearProjection: Bool
    public var normGroups: Int
    /// Epsilon of the ResNets' and the output's GroupNorm (the transformers' GroupNorm uses 1e-6, their LayerNorms 1e-5).
    public var normEpsilon: Float
    public var convInKernel: Int
    public var convOutKernel: Int
    public var flipSinToCos: Bool
    public var frequencyShift: Float

    /// The down blocks' count.
    public var blockCount: Int { blockChannels.count }
    public var midHeads: Int { heads.last! }
    /// Whether the mid block has a spatial transformer between two ResNets.
    public var midAttention: Bool { midTransformerLayers > 0 }
    /// Width of the time embedding (4 x the first block's channels).
    public var timeWidth: Int { blockChannels[0] * 4 }

    public init(inChannels: Int, outChannels: Int, blockChannels: [Int], layersPerBlock: Int, downAttention: [Bool],
                upAttention: [Bool], heads: [Int], transformerLayers: [Int], crossAttentionDim: Int,
                linearProjection: Bool, normGroups: Int = 32, normEpsilon: Float = 1e-5, convInKernel: Int = 3,
                convOutKernel: Int = 3, flipSinToCos: Bool = true, frequencyShift: Float = 0,
                upTransformerLayers: [[Int]]? = nil, midTransformerLayers: Int? = nil,
                textTime: TextTimeConditioning? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.blockChannels = blockChannels
        self.layersPerBlock = layersPerBlock
        self.downAttention = downAttention
        self.upAttention = upAttention
        self.heads = heads
        // diffusers: per-block depths, up blocks reversed unless given per layer, the mid block the last. A layer
        // count out of range leaves the lists empty for validate() to refuse.
        let layers = (1 ... 16).contains(layersPerBlock) ? layersPerBlock : 0
        downTransformerLayers = transformerLayers.map { Array(repeating: $0, count: layers) }
        self.upTransformerLayers = upTransformerLayers
            ?? transformerLayers.reversed().map { Array(repeating: $0, count: layers + 1) }
        self.midTransformerLayers = midTransformerLayers ?? transformerLayers.last ?? 1
        self.textTime = textTime
        self.crossAttentionDim = crossAttentionDim
        self.linearProjection = linearProjection
        self.normGroups = normGroups
        self.normEpsilon = normEpsilon
        self.convInKernel = convInKernel
        self.convOutKernel = convOutKernel
        self.flipSinToCos = flipSinToCos
        self.frequencyShift = frequencyShift
    }

    /// Checks the values every forward pass relies on; `path` names the source in errors.
    func validate(path: String) throws {
        func bad(_ key: String, _ reason: String) -> UNetError { .unsupportedConfig(path: path, key: key, reason: reason) }
        let n = blockCount
        guard n >= 1, n <= 8 else { throw bad("block_out_channels", "needs 1 to 8 blocks, found \(n)") }
        guard downAttention.count == n, upAttention.count == n, heads.count == n, downTransformerLayers.count == n,
              upTransformerLayers.count == n else {
            throw bad("down_block_types", "block lists must all have \(n) entries")
        }
        guard (1 ... 16).contains(layersPerBlock) else { throw bad("layers_per_block", "must be 1...16, found \(layersPerBlock)") }
        guard (1 ... 1 << 16).contains(inChannels), (1 ... 1 << 16).contains(outChannels) else {
            throw bad("in_channels", "channel counts must be 1...65536")
        }
        guard (1 ... 1 << 16).contains(crossAttentionDim) else { throw bad("cross_attention_dim", "must be 1...65536") }
        guard normGroups >= 1 else { throw bad("norm_num_groups", "must be positive") }
        for (index, channels) in blockChannels.enumerated() {
            guard (1 ... 1 << 16).contains(channels) else { throw bad("block_out_channels", "\(channels) is not 1...65536") }
            guard channels % normGroups == 0 else {
                throw bad("norm_num_groups", "\(normGroups) groups do not divide block \(index)'s \(channels) channels "
                    + "(GroupNorm groups cannot be read from weights; give the model's config.json)")
            }
            guard heads[index] >= 1, channels % heads[index] == 0 else {
                throw bad("attention_head_dim", "\(heads[index]) heads do not divide block \(index)'s \(channels) channels")
            }
        }
        for (key, blocks, layers) in [("transformer_layers_per_block", downTransformerLayers, layersPerBlock),
                                      ("reverse_transformer_layers_per_block", upTransformerLayers, layersPerBlock + 1)] {
            for depths in blocks {
                guard depths.count == layers else { throw bad(key, "needs \(layers) layers per block, found \(depths.count)") }
                if let depth = depths.first(where: { !(1 ... 64).contains($0) }) { throw bad(key, "must be 1...64, found \(depth)") }
            }
        }
        guard (0 ... 64).contains(midTransformerLayers) else {
            throw bad("transformer_layers_per_block", "the mid block's depth must be 0...64, found \(midTransformerLayers)")
        }
        if let textTime {
            guard textTime.timeWidth >= 2, textTime.timeWidth % 2 == 0, textTime.timeWidth <= 1 << 12 else {
                throw bad("addition_time_embed_dim", "must be an even width 2...4096, found \(textTime.timeWidth)")
            }
            guard textTime.inputWidth > textTime.timeWidth, textTime.inputWidth <= 1 << 16 else {
                throw bad("projection_class_embeddings_input_dim",
                          "must exceed addition_time_embed_dim (\(textTime.timeWidth)) and be at most 65536, found \(textTime.inputWidth)")
            }
        }
        for (key, kernel) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] {
            guard kernel % 2 == 1, (1 ... 7).contains(kernel) else { throw bad(key, "must be an odd size 1...7, found \(kernel)") }
        }
        guard normEpsilon > 0, normEpsilon.isFinite else { throw bad("norm_eps", "must be positive") }
        guard frequencyShift.isFinite, blockChannels[0] / 2 > 0, Float(blockChannels[0] / 2) != frequencyShift else {
            throw bad("freq_shift", "\(frequencyShift) leaves no sinusoid frequencies")
        }
    }
}
