extension UNetConfig {
    /// The configuration the weights imply, from diffusers names (bare) and shapes. What weights cannot show is SD's:
    /// 32 GroupNorm groups, epsilon 1e-5, flip_sin_to_cos; heads are SD 2.x's width of 64 for linear projections with
    /// 1024-wide cross-attention, else SD 1.x's 8 heads.
    public static func inferred(from shapes: [String: [Int]], path: String) throws -> UNetConfig {
        func shape(_ name: String) throws -> [Int] {
            guard let shape = shapes[name] else { throw UNetError.notAUNet(path: path, reason: "no tensor \(name)") }
            return shape
        }
        func count(_ prefix: String) -> Int {
            var n = 0
            while shapes.keys.contains(where: { $0.hasPrefix("\(prefix).\(n).") }) { n += 1 }
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
        let downAttention = (0 ..< blocks).map { shapes["down_blocks.\($0).attentions.0.proj_in.weight"] != nil }
        let upAttention = (0 ..< blocks).map { shapes["up_blocks.\($0).attentions.0.proj_in.weight"] != nil }
        let transformerLayers = (0 ..< blocks).map { block in
            max(1, count("down_blocks.\(block).attentions.0.transformer_blocks"))
        }
        let attention = "mid_block.attentions.0"
        let crossShape = try shape("\(attention).transformer_blocks.0.attn2.to_k.weight")
        let linear = try shape("\(attention).proj_in.weight").count == 2
        let cross = crossShape.count == 2 ? crossShape[1] : 0
        let sd2 = linear && cross == 1024 && channels.allSatisfy { $0 % 64 == 0 }
        var config = UNetConfig(inChannels: convIn[1], outChannels: convOut[0], blockChannels: channels,
                                layersPerBlock: count("down_blocks.0.resnets"), downAttention: downAttention,
                                upAttention: upAttention, heads: channels.map { sd2 ? $0 / 64 : 8 },
                                transformerLayers: transformerLayers, crossAttentionDim: cross, linearProjection: linear,
                                convInKernel: convIn[2], convOutKernel: convOut[2])
        config.transformerLayers[blocks - 1] = max(1, count("\(attention).transformer_blocks"))
        try config.validate(path: path)
        return config
    }
}
