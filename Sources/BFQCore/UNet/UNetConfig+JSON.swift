extension UNetConfig {
    /// Keys whose other values select features bfq's UNet does not have, with the values it runs (absent is fine).
    private static let fixedKeys: [(key: String, allowed: [JSONValue])] = [
        ("_class_name", [.string("UNet2DConditionModel")]),
        ("mid_block_type", [.string("UNetMidBlock2DCrossAttn"), .string("UNetMidBlock2D")]),
        ("act_fn", [.string("silu")]),
        ("time_embedding_type", [.string("positional")]),
        ("resnet_time_scale_shift", [.string("default")]),
        ("attention_type", [.string("default")]),
        ("class_embed_type", [.null]), ("addition_embed_type", [.null, .string("text_time")]), ("encoder_hid_dim", [.null]),
        ("encoder_hid_dim_type", [.null]), ("time_cond_proj_dim", [.null]), ("time_embedding_act_fn", [.null]),
        ("timestep_post_act", [.null]), ("cross_attention_norm", [.null]), ("num_class_embeds", [.null]),
        ("time_embedding_dim", [.null]),
        ("dual_cross_attention", [.bool(false)]), ("only_cross_attention", [.bool(false)]),
        ("center_input_sample", [.bool(false)]), ("resnet_skip_time_act", [.bool(false)]),
        ("class_embeddings_concat", [.bool(false)]), ("mid_block_only_cross_attention", [.null, .bool(false)]),
        ("mid_block_scale_factor", [.int(1), .double(1)]), ("resnet_out_scale_factor", [.int(1), .double(1)]),
        ("downsample_padding", [.int(1)]),
    ]

    /// Reads a diffusers UNet `config.json` (SD 1.x/2.x and SDXL-family features only; anything else is refused
    /// naming the key).
    public init(json: JSONValue, path: String) throws {
        func bad(_ key: String, _ reason: String) -> UNetError { .unsupportedConfig(path: path, key: key, reason: reason) }
        guard json.objectValue != nil else { throw bad("", "the file is not a JSON object") }
        for (key, allowed) in Self.fixedKeys {
            if let value = json[key], !allowed.contains(value) {
                throw bad(key, "bfq runs only \(allowed.map(\.text).joined(separator: " or ")), found \(value.text)")
            }
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let member = json[key] else {
                guard let value else { throw bad(key, "missing") }
                return value
            }
            guard let number = member.intValue, let result = Int(exactly: number) else { throw bad(key, "not an integer") }
            return result
        }
        func number(_ key: String, default value: Double) throws -> Double {
            switch json[key] {
            case nil: return value
            case let .int(number)?: return Double(number)
            case let .double(number)?: return number
            default: throw bad(key, "not a number")
            }
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            switch json[key] {
            case nil, .null?: return value
            case let .bool(flag)?: return flag
            default: throw bad(key, "not a boolean")
            }
        }
        func strings(_ key: String) throws -> [String] {
            guard let items = json[key]?.arrayValue else { throw bad(key, "missing or not an array") }
            return try items.map { try $0.stringValue ?? { throw bad(key, "holds a non-string") }() }
        }
        /// An integer or a list of one integer per block.
        func perBlock(_ key: String, count: Int) throws -> [Int]? {
            switch json[key] {
            case nil, .null?: return nil
            case let .int(value)?: return Array(repeating: Int(value), count: count)
            case let .array(items)?:
                let values = try items.map { try $0.intValue.map(Int.init) ?? { throw bad(key, "holds a non-integer") }() }
                guard values.count == count else { throw bad(key, "has \(values.count) entries for \(count) blocks") }
                return values
            default: throw bad(key, "not an integer or a list")
            }
        }
        /// An integer, or per block an integer or a list of one integer per layer ([block][layer]).
        func perLayer(_ key: String, blocks: Int, layers: Int) throws -> [[Int]]? {
            func integer(_ value: JSONValue) throws -> Int {
                guard let number = value.intValue, let result = Int(exactly: number) else { throw bad(key, "holds a non-integer") }
                return result
            }
            let slots = (1 ... 17).contains(layers) ? layers : 0
            switch json[key] {
            case nil, .null?: return nil
            case let .int(value)?: return Array(repeating: Array(repeating: Int(value), count: slots), count: blocks)
            case let .array(items)?:
                guard items.count == blocks else { throw bad(key, "has \(items.count) entries for \(blocks) blocks") }
                return try items.map { item in
                    guard case let .array(values) = item else { return Array(repeating: try integer(item), count: slots) }
                    guard values.count == layers else { throw bad(key, "lists \(values.count) layers where blocks have \(layers)") }
                    return try values.map(integer)
                }
            default: throw bad(key, "not an integer or a list")
            }
        }
        guard let channels = json["block_out_channels"]?.arrayValue?.compactMap({ $0.intValue.map(Int.init) }),
              channels.count == json["block_out_channels"]?.arrayValue?.count else {
            throw bad("block_out_channels", "missing or not a list of integers")
        }
        let down = try strings("down_block_types"), up = try strings("up_block_types")
        guard down.count == channels.count, up.count == channels.count else {
            throw bad("down_block_types", "\(down.count) down and \(up.count) up blocks for \(channels.count) channel counts")
        }
        let downAttention = try down.map { type -> Bool in
            guard ["CrossAttnDownBlock2D", "DownBlock2D"].contains(type) else { throw bad("down_block_types", "unsupported \(type)") }
            return type == "CrossAttnDownBlock2D"
        }
        let upAttention = try up.map { type -> Bool in
            guard ["CrossAttnUpBlock2D", "UpBlock2D"].contains(type) else { throw bad("up_block_types", "unsupported \(type)") }
            return type == "CrossAttnUpBlock2D"
        }
        // diffusers' SD-1 quirk: without num_attention_heads, attention_head_dim is the number of heads.
        let heads = try perBlock("num_attention_heads", count: channels.count)
            ?? perBlock("attention_head_dim", count: channels.count) ?? Array(repeating: 8, count: channels.count)
        let layers = try int("layers_per_block", default: 2)
        let depths = try perLayer("transformer_layers_per_block", blocks: channels.count, layers: layers)
        let perLayerDepths = json["transformer_layers_per_block"]?.arrayValue?.contains { $0.arrayValue != nil } ?? false
        if perLayerDepths, json["reverse_transformer_layers_per_block"] == nil || json["reverse_transformer_layers_per_block"] == .null {
            throw bad("reverse_transformer_layers_per_block", "required when transformer_layers_per_block lists depths per layer")
        }
        let midAttention = json["mid_block_type"]?.stringValue != "UNetMidBlock2D"
        var textTime: TextTimeConditioning?
        if json["addition_embed_type"]?.stringValue == "text_time" {
            textTime = TextTimeConditioning(timeWidth: try int("addition_time_embed_dim"),
                                            inputWidth: try int("projection_class_embeddings_input_dim"))
        }
        self.init(inChannels: try int("in_channels", default: 4), outChannels: try int("out_channels", default: 4),
                  blockChannels: channels, layersPerBlock: layers,
                  downAttention: downAttention, upAttention: upAttention, heads: heads,
                  transformerLayers: depths?.map { $0.first ?? 1 } ?? Array(repeating: 1, count: channels.count),
                  crossAttentionDim: try int("cross_attention_dim", default: 1280),
                  linearProjection: try bool("use_linear_projection", default: false),
                  normGroups: try int("norm_num_groups", default: 32),
                  normEpsilon: Float(try number("norm_eps", default: 1e-5)),
                  convInKernel: try int("conv_in_kernel", default: 3), convOutKernel: try int("conv_out_kernel", default: 3),
                  flipSinToCos: try bool("flip_sin_to_cos", default: true),
                  frequencyShift: Float(try number("freq_shift", default: 0)),
                  upTransformerLayers: try perLayer("reverse_transformer_layers_per_block", blocks: channels.count, layers: layers + 1)
                      ?? depths.map { $0.reversed().map { Array(repeating: $0.first ?? 1, count: layers + 1) } },
                  midTransformerLayers: midAttention ? depths?.last?.first ?? 1 : 0,
                  textTime: textTime)
        if let depths { downTransformerLayers = depths }
        // Blocks without attention have no transformers: their depths (diffusers repeats the number it was given) are 1,
        // as in a configuration inferred from weights.
        for block in downAttention.indices where !downAttention[block] {
            downTransformerLayers[block] = downTransformerLayers[block].map { _ in 1 }
        }
        for block in upAttention.indices where !upAttention[block] && block < upTransformerLayers.count {
            upTransformerLayers[block] = upTransformerLayers[block].map { _ in 1 }
        }
        try validate(path: path)
    }

    /// Reads a diffusers `config.json` file.
    public static func load(_ path: String) throws -> UNetConfig {
        let file = try MappedFile(path: path)
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch {
            throw UNetError.unsupportedConfig(path: path, key: "", reason: "\(error)")
        }
        return try UNetConfig(json: json, path: path)
    }
}

private extension JSONValue {
    /// The value as JSON text, for messages.
    var text: String {
        switch self {
        case .null: return "null"
        case let .bool(flag): return flag ? "true" : "false"
        case let .int(value): return String(value)
        case let .double(value): return Formatting.general(value)
        case let .string(value): return "\"\(Formatting.printable(value))\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
