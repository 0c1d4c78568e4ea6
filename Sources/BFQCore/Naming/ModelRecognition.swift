/// What a checkpoint holds, recognised from tensor names and shapes: an SD 1.x, 2.x or SDXL-family UNet (full size
/// or with scaled channels), the other parts of a full checkpoint, and the UNet's parameter count.
public struct ModelRecognition: Sendable, Equatable {
    /// The Stable Diffusion generation a UNet's structure and conditioning match.
    public enum Family: String, Sendable {
        case sd1 = "SD 1.x"
        case sd2 = "SD 2.x"
        /// A UNet with SDXL's added conditioning (`label_emb` / `add_embedding`) and a consistent SDXL-style structure.
        case sdxl = "SDXL"
    }

    /// The released SDXL-family UNets, told apart by their exact structure.
    public enum SDXLModel: String, Sendable {
        case base = "SDXL base"
        case refiner = "SDXL refiner"
        case ssd1b = "SSD-1B"
        case vega = "Segmind Vega"
    }

    /// A part of a checkpoint.
    public enum Component: String, Sendable, CaseIterable {
        case unet = "UNet"
        case ema = "EMA"
        case vae = "VAE"
        case textEncoder = "text encoder"
    }

    /// Naming of the UNet tensors.
    public var scheme: NamingScheme
    /// SD 1.x or 2.x when the UNet has their block structure (4 down blocks, attention in the first 3,
    /// 2 ResNets per down block, 3 per up block, 686 tensors); nil for other UNets.
    public var family: Family?
    /// Whether the UNet has the released width: 320/640/1280/1280 channels and cross-attention 768 (SD 1.x,
    /// conv proj_in) or 1024 (SD 2.x, linear proj_in), or is one of the released SDXL-family UNets.
    public var isFullSize: Bool
    /// Which released SDXL-family UNet it is, when it is one (SDXL-Turbo has the base's structure).
    public var sdxlModel: SDXLModel?
    /// Transformer depth of each attention of an SDXL-family UNet, down blocks, mid, up blocks, in order.
    public var transformerDepths: [Int] = []
    /// Text encoders found (CLIP ViT-L and OpenCLIP bigG in SDXL: two).
    public var textEncoderCount = 0
    /// Output channels of each down block, when known.
    public var blockChannels: [Int]
    /// Width of the text conditioning (`attn2.to_k` input dimension), when present.
    public var crossAttentionWidth: Int?
    /// Latent channels into `conv_in` (4, or 9 for inpainting), when present.
    public var inputChannels: Int?
    public var unetTensorCount: Int
    /// True when the UNet lacks the time-embedding MLP and every time_emb_proj (a .bfq whose time-feature cache
    /// replaced them); its tensor and parameter counts leave them out.
    public var timeEmbeddingCached = false
    /// Elements of all UNet tensors.
    public var unetParameterCount: Int
    /// The parts found, UNet first.
    public var components: [Component]

    /// One line, e.g. "SD 1.x UNet, 859.5M parameters" or
    /// "SD 1.x checkpoint (UNet + VAE + text encoder), UNet 859.5M parameters".
    public var summary: String {
        var kind: String
        if let family {
            kind = sdxlModel?.rawValue ?? family.rawValue
            if inputChannels == 9 { kind += " inpainting" }
            if !isFullSize { kind += "-structured" }
        } else {
            kind = "non-SD"
        }
        let count = Formatting.millions(unetParameterCount) + " parameters"
        var details: [String] = []
        if timeEmbeddingCached { details.append("time embedding cached") }
        if family != nil, !isFullSize {
            details.append("scaled: " + blockChannels.map(String.init).joined(separator: "/") + " channels")
            if let crossAttentionWidth { details.append("cross-attention \(crossAttentionWidth)") }
            if family == .sdxl { details.append("transformer depths " + transformerDepths.map(String.init).joined(separator: "/")) }
        }
        let detail = details.isEmpty ? "" : " (" + details.joined(separator: ", ") + ")"
        if components == [.unet] { return "\(kind) UNet\(detail), \(count)" }
        let parts = components.map { component in
            guard component == .textEncoder, textEncoderCount > 1 else { return component.rawValue }
            return (textEncoderCount == 2 ? "two" : String(textEncoderCount)) + " text encoders"
        }.joined(separator: " + ")
        return "\(kind) checkpoint (\(parts)), UNet \(count)\(detail)"
    }

    /// Recognises the model in a checkpoint from its tensor names and shapes (parallel arrays).
    /// Returns nil when there is no UNet.
    public static func recognise(names: [String], shapes: [[Int]]) -> ModelRecognition? {
        precondition(names.count == shapes.count, "one shape per name")
        guard let scheme = UNetNaming.detect(names) else { return nil }
        let groups = UNetNaming.groups(names).filter { $0.scheme == scheme }
        let unet = groups.flatMap(\.indices)
        var result = ModelRecognition(
            scheme: scheme, family: nil, isFullSize: false, blockChannels: [], crossAttentionWidth: nil,
            inputChannels: nil, unetTensorCount: unet.count,
            unetParameterCount: unet.reduce(0) { $0 + shapes[$1].reduce(1, *) },
            components: [.unet] + otherComponents(names))
        result.textEncoderCount = textEncoders(names)
        // Structure: only when the UNet is in one group and every name maps.
        guard groups.count == 1, let addresses = try? UNetNaming.addresses(of: groups[0], in: names) else {
            return result
        }
        var shape: [String: [Int]] = [:]
        for (address, index) in zip(addresses, groups[0].indices) {
            shape[DiffusersUNetNames.name(of: address)] = shapes[index]
        }
        result.inputChannels = shape["conv_in.weight"].flatMap { $0.count == 4 ? $0[1] : nil }
        result.crossAttentionWidth = shape.first { $0.key.hasSuffix(".attn2.to_k.weight") && $0.value.count == 2 }?.value[1]
        let layout = UNetLayout(addresses.map(\.module))
        result.blockChannels = layout.down.indices.compactMap { shape["down_blocks.\($0).resnets.0.conv1.weight"]?.first }
        // The time-embedding MLP (4 tensors) and 22 time_emb_proj (44) are absent when a time-feature cache replaced them.
        result.timeEmbeddingCached = !shape.keys.contains { $0.hasPrefix("time_embedding.") || $0.contains(".time_emb_proj.") }
        if shape.keys.contains(where: { $0.hasPrefix("add_embedding.") }) {
            recogniseSDXL(&result, shapes: shape, addresses: addresses)
            return result
        }
        guard layout == sdLayout, unet.count == (result.timeEmbeddingCached ? 686 - 48 : 686),
              let projection = shape["down_blocks.0.attentions.0.proj_in.weight"]?.count else { return result }
        let linear = projection == 2
        switch result.crossAttentionWidth {
        case 768: result.family = .sd1
        case 1024: result.family = .sd2
        default: result.family = linear ? .sd2 : .sd1
        }
        result.isFullSize = result.blockChannels == [320, 640, 1280, 1280]
            && (result.family == .sd1 ? result.crossAttentionWidth == 768 && !linear
                                      : result.crossAttentionWidth == 1024 && linear)
        return result
    }

    /// An SDXL-family UNet: the configuration its weights imply must read exactly its tensors.
    private static func recogniseSDXL(_ result: inout ModelRecognition, shapes: [String: [Int]], addresses: [UNetAddress]) {
        let local = addresses.map(DiffusersUNetNames.name(of:))
        guard let config = try? UNetConfig.inferred(from: shapes, path: "", runnable: false),
              (try? config.checkTensors(local, shapes: shapes, timeFeaturesCached: false, path: "", fileName: { $0 })) != nil
        else { return }
        result.family = .sdxl
        let down = config.downTransformerLayers.indices.filter { config.downAttention[$0] }.flatMap { config.downTransformerLayers[$0] }
        let up = config.upTransformerLayers.indices.filter { config.upAttention[$0] }.flatMap { config.upTransformerLayers[$0] }
        result.transformerDepths = down + (config.midAttention ? [config.midTransformerLayers] : []) + up
        let sdxlChannels = config.blockChannels == [320, 640, 1280] && config.crossAttentionDim == 2048
            && config.textTime?.inputWidth == 2816
        switch result.transformerDepths {
        case [2, 2, 10, 10, 10, 10, 10, 10, 2, 2, 2] where sdxlChannels: result.sdxlModel = .base
        case [2, 2, 4, 4, 4, 4, 10, 2, 1, 1] where sdxlChannels: result.sdxlModel = .ssd1b
        case [1, 1, 2, 2, 2, 2, 2, 1, 1, 1] where sdxlChannels: result.sdxlModel = .vega
        case Array(repeating: 4, count: 11) where config.blockChannels == [384, 768, 1536, 1536]
            && config.crossAttentionDim == 1280 && config.textTime?.inputWidth == 2560: result.sdxlModel = .refiner
        default: break
        }
        result.isFullSize = result.sdxlModel != nil
    }

    /// Text encoders in a full checkpoint: each `conditioner.embedders.N` (sgm), `cond_stage_model` (ldm), or diffusers'
    /// `text_encoder` and `text_encoder_2`.
    private static func textEncoders(_ names: [String]) -> Int {
        var found: Set<Substring> = []
        for name in names {
            if name.hasPrefix("conditioner.embedders.") {
                found.insert(name.split(separator: ".", maxSplits: 3).prefix(3).joined(separator: ".")[...])
            } else if name.hasPrefix("cond_stage_model.") || name.hasPrefix("text_encoder.") || name.hasPrefix("text_encoder_2.") {
                found.insert(name.prefix { $0 != "." })
            }
        }
        return found.count
    }

    /// The block structure SD 1.x and 2.x UNets share.
    private static let sdLayout: UNetLayout = {
        var layout = UNetLayout([])
        let attended = UNetLayout.Block(layers: 2, attentions: [0, 1], hasSampler: true)
        layout.down = [attended, attended, attended, UNetLayout.Block(layers: 2, attentions: [], hasSampler: false)]
        layout.up = [UNetLayout.Block(layers: 3, attentions: [], hasSampler: true),
                     UNetLayout.Block(layers: 3, attentions: [0, 1, 2], hasSampler: true),
                     UNetLayout.Block(layers: 3, attentions: [0, 1, 2], hasSampler: true),
                     UNetLayout.Block(layers: 3, attentions: [0, 1, 2], hasSampler: false)]
        layout.midResnets = 2
        layout.midAttentions = 1
        return layout
    }()

    /// Non-UNet parts of a full checkpoint, found by the prefixes ldm, sgm and diffusers use (`CheckpointComponent`).
    private static func otherComponents(_ names: [String]) -> [Component] {
        var found = Set<Component>()
        for name in names {
            if CheckpointComponent.isEMAWeight(name) { found.insert(.ema) }
            switch CheckpointComponent.classify(name)?.component {
            case .vae?: found.insert(.vae)
            case .textEncoder?, .textEncoder2?: found.insert(.textEncoder)
            case .unet?, nil: break
            }
        }
        return [.ema, .vae, .textEncoder].filter(found.contains)
    }
}
