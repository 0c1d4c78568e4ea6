extension UNetConfig {
    /// The diffusers version whose `UNet2DConditionModel` config keys `diffusersJSON` writes.
    public static let diffusersVersion = "0.42.1"

    /// The config.json diffusers' `UNet2DConditionModel.save_config` writes for this UNet: all its keys, sorted.
    /// Heads go to `attention_head_dim` (diffusers' SD quirk: it holds head counts), one number when every block has
    /// the same; transformer depths are one number when every attended block has the same, else a list per block
    /// (blocks without attention take 1), and `reverse_transformer_layers_per_block` lists the up blocks' depths only
    /// when they are not the down blocks' reversed. `sample_size`, which weights do not show, is the family's: 128
    /// for SDXL, 96 for SD 2.x (linear projections, cross-attention 1024), else 64.
    public var diffusersJSON: JSONValue {
        func number(_ value: Float) -> JSONValue { .double(Double(value.description) ?? Double(value)) }
        func integers(_ values: [Int]) -> JSONValue { .array(values.map { .int(Int64($0)) }) }
        let attended = downTransformerLayers.indices.filter { downAttention[$0] }
        let uniform = downTransformerLayers.allSatisfy { Set($0).count <= 1 }
        let attendedDepths = Set(attended.compactMap { downTransformerLayers[$0].first })
        let depths: JSONValue
        if uniform, attendedDepths.count <= 1 {
            depths = .int(Int64(attendedDepths.first ?? 1))
        } else if uniform {
            depths = integers(downTransformerLayers.indices.map { downAttention[$0] ? downTransformerLayers[$0].first ?? 1 : 1 })
        } else {
            depths = .array(downTransformerLayers.indices.map { integers(downAttention[$0] ? downTransformerLayers[$0] : [1]) })
        }
        let defaultUp = downTransformerLayers.reversed().map { Array(repeating: $0.first ?? 1, count: layersPerBlock + 1) }
        let reversedDepths: JSONValue = upTransformerLayers == defaultUp ? .null : .array(upTransformerLayers.map(integers))
        let sampleSize = textTime != nil ? 128 : linearProjection && crossAttentionDim == 1024 ? 96 : 64
        let members: [(String, JSONValue)] = [
            ("_class_name", "UNet2DConditionModel"), ("_diffusers_version", .string(Self.diffusersVersion)),
            ("act_fn", "silu"), ("addition_embed_type", textTime == nil ? .null : "text_time"),
            ("addition_embed_type_num_heads", 64),
            ("addition_time_embed_dim", textTime.map { .int(Int64($0.timeWidth)) } ?? .null),
            ("attention_head_dim", Set(heads).count == 1 ? .int(Int64(heads[0])) : integers(heads)),
            ("attention_type", "default"), ("block_out_channels", integers(blockChannels)),
            ("center_input_sample", false), ("class_embed_type", .null), ("class_embeddings_concat", false),
            ("conv_in_kernel", .int(Int64(convInKernel))), ("conv_out_kernel", .int(Int64(convOutKernel))),
            ("cross_attention_dim", .int(Int64(crossAttentionDim))), ("cross_attention_norm", .null),
            ("down_block_types", .array(downAttention.map { .string($0 ? "CrossAttnDownBlock2D" : "DownBlock2D") })),
            ("downsample_padding", 1), ("dropout", .double(0)), ("dual_cross_attention", false),
            ("encoder_hid_dim", .null), ("encoder_hid_dim_type", .null), ("flip_sin_to_cos", .bool(flipSinToCos)),
            ("freq_shift", frequencyShift == frequencyShift.rounded() ? .int(Int64(frequencyShift)) : number(frequencyShift)),
            ("in_channels", .int(Int64(inChannels))), ("layers_per_block", .int(Int64(layersPerBlock))),
            ("mid_block_only_cross_attention", .null), ("mid_block_scale_factor", 1),
            ("mid_block_type", .string(midAttention ? "UNetMidBlock2DCrossAttn" : "UNetMidBlock2D")),
            ("norm_eps", number(normEpsilon)), ("norm_num_groups", .int(Int64(normGroups))),
            ("num_attention_heads", .null), ("num_class_embeds", .null), ("only_cross_attention", false),
            ("out_channels", .int(Int64(outChannels))),
            ("projection_class_embeddings_input_dim", textTime.map { .int(Int64($0.inputWidth)) } ?? .null),
            ("resnet_out_scale_factor", .double(1)), ("resnet_skip_time_act", false), ("resnet_time_scale_shift", "default"),
            ("reverse_transformer_layers_per_block", reversedDepths), ("sample_size", .int(Int64(sampleSize))),
            ("time_cond_proj_dim", .null), ("time_embedding_act_fn", .null), ("time_embedding_dim", .null),
            ("time_embedding_type", "positional"), ("timestep_post_act", .null), ("transformer_layers_per_block", depths),
            ("up_block_types", .array(upAttention.map { .string($0 ? "CrossAttnUpBlock2D" : "UpBlock2D") })),
            ("upcast_attention", false), ("use_linear_projection", .bool(linearProjection)),
        ]
        return .object(members.map { JSONMember($0.0, $0.1) })
    }
}
