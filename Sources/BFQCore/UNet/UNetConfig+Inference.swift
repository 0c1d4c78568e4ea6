extension UNetConfig {
    /// The configuration the weights imply, from diffusers names (bare) and shapes. What weights cannot show is
    /// taken from the family the weights match: 32 GroupNorm groups, epsilon 1e-5, flip_sin_to_cos; heads of width 64
    /// for SDXL-family UNets (an `add_embedding`) and SD 2.x ones (linear projections, 1024-wide cross-attention),
    /// else SD 1.x's 8 heads; SDXL's 256-wide time-id sinusoids.
    /// - Parameter runnable: refuse channel counts that heads of width 64 or 32 GroupNorm groups do not divide; false
    ///   gives such blocks one head and the model one group (to recognise a structure, not to run it).
    public static func inferred(from shapes: [String: [Int]], path: String, runnable: Bool = true) throws -> UNetConfig {
        func shape(_ name: String) throws -> [Int] {
            guard let shape = shapes[name] else { throw UNetError.notAUNet(path: path, reason: "no tensor \(name)") }
            return shape
        }
        // Indices present below each prefix ("down_blocks" -> {0, 1, 2}), counted as 0..<n without gaps.
        var indices: [Substring: Set<Int>] = [:]
        for name in shapes.keys {
            var end = name.startIndex
            while let dot = name[end...].firstIndex(of: ".") {
                let rest = name[name.index(after: dot)...]
                if let next = rest.firstIndex(of: "."), let index = UNetNameParsing.index(rest[..<next]) {
                    indices[name[..<dot], default: []].insert(index)
                }
                end = name.index(after: dot)
            }
        }
        func count(_ prefix: String) -> Int {
            let present = indices[Substring(prefix)] ?? []
            var n = 0
            while present.contains(n) { n += 1 }
            return n
        }
        let convIn = try shape("conv_in.weight"), convOut = try shape("conv_out.weight")
        guard convIn.count == 4, convOut.count == 4 else {
            throw UNetError.notAUNet(path: path, reason: "conv_in and conv_out weights must be 4-D")
        }
        let blocks = count("down_blocks")
        guard blocks > 0, count("up_blocks") == blocks else {
            throw UNetError.notAUNet(path: path, reason: "\(blocks) down blocks and \(count("up_blocks")) up blocks")
        }
        let channels = try (0 ..< blocks).map { block in
            let conv = try shape("down_blocks.\(block).resnets.0.conv1.weight")
            guard conv.count == 4 else { throw UNetError.notAUNet(path: path, reason: "down block \(block)'s conv1 weight is not 4-D") }
            return conv[0]
        }
        let layers = count("down_blocks.0.resnets")
        let downAttention = (0 ..< blocks).map { shapes["down_blocks.\($0).attentions.0.proj_in.weight"] != nil }
        let upAttention = (0 ..< blocks).map { shapes["up_blocks.\($0).attentions.0.proj_in.weight"] != nil }
        func depths(_ prefix: String, _ attended: Bool, layers: Int) -> [Int] {
            (0 ..< layers).map { attended ? max(1, count("\(prefix).attentions.\($0).transformer_blocks")) : 1 }
        }
        let down = (0 ..< blocks).map { depths("down_blocks.\($0)", downAttention[$0], layers: layers) }
        let up = (0 ..< blocks).map { depths("up_blocks.\($0)", upAttention[$0], layers: layers + 1) }
        let midAttention = shapes["mid_block.attentions.0.proj_in.weight"] != nil
        // The first transformer present gives the cross-attention width and the projection kind.
        let transformer = midAttention ? "mid_block.attentions.0"
            : (0 ..< blocks).first { downAttention[$0] }.map { "down_blocks.\($0).attentions.0" }
            ?? (0 ..< blocks).first { upAttention[$0] }.map { "up_blocks.\($0).attentions.0" }
        guard let transformer else { throw UNetError.notAUNet(path: path, reason: "no spatial transformer (no proj_in weight)") }
        let crossShape = try shape("\(transformer).transformer_blocks.0.attn2.to_k.weight")
        let linear = try shape("\(transformer).proj_in.weight").count == 2
        let cross = crossShape.count == 2 ? crossShape[1] : 0
        var textTime: TextTimeConditioning?
        if let added = shapes["add_embedding.linear_1.weight"] {
            guard added.count == 2 else { throw UNetError.notAUNet(path: path, reason: "add_embedding.linear_1.weight is not 2-D") }
            guard added[1] > 256 || !runnable else {
                throw UNetError.notAUNet(path: path, reason: "add_embedding's \(added[1]) inputs leave no room for SDXL's 256-wide "
                                         + "time-id sinusoids (their width cannot be read from weights; give the model's config.json)")
            }
            textTime = TextTimeConditioning(timeWidth: added[1] > 256 ? 256 : 2, inputWidth: added[1])
        }
        let widthSixtyFour = textTime != nil || (linear && cross == 1024)
        if widthSixtyFour, runnable, let block = channels.indices.first(where: { channels[$0] % 64 != 0 }) {
            throw UNetError.notAUNet(path: path, reason: "block \(block)'s \(channels[block]) channels are not heads of width 64 "
                                     + "as in SD 2.x and SDXL (heads cannot be read from weights; give the model's config.json)")
        }
        var config = UNetConfig(inChannels: convIn[1], outChannels: convOut[0], blockChannels: channels,
                                layersPerBlock: layers, downAttention: downAttention,
                                upAttention: upAttention, heads: channels.map { widthSixtyFour ? ($0 % 64 == 0 ? $0 / 64 : 1) : 8 },
                                transformerLayers: down.map { $0.first ?? 1 }, crossAttentionDim: cross, linearProjection: linear,
                                convInKernel: convIn[2], convOutKernel: convOut[2], upTransformerLayers: up,
                                midTransformerLayers: midAttention ? max(1, count("mid_block.attentions.0.transformer_blocks")) : 0,
                                textTime: textTime)
        config.downTransformerLayers = down
        if !runnable, channels.contains(where: { $0 % config.normGroups != 0 }) { config.normGroups = 1 }
        try config.validate(path: path)
        return config
    }
}
