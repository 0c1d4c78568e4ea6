extension UNetConfig {
    /// Every parameter tensor the configuration reads, diffusers names and shapes in diffusers' state-dict order.
    public var tensorShapes: [(name: String, shape: [Int])] {
        var tensors: [(name: String, shape: [Int])] = []
        func parameters(_ module: String, _ shape: [Int], bias: Bool = true) {
            tensors.append((module + ".weight", shape))
            if bias { tensors.append((module + ".bias", [shape[0]])) }
        }
        func norm(_ module: String, _ channels: Int) { parameters(module, [channels]) }
        func resnet(_ prefix: String, _ inputs: Int, _ outputs: Int) {
            norm(prefix + ".norm1", inputs)
            parameters(prefix + ".conv1", [outputs, inputs, 3, 3])
            parameters(prefix + ".time_emb_proj", [outputs, timeWidth])
            norm(prefix + ".norm2", outputs)
            parameters(prefix + ".conv2", [outputs, outputs, 3, 3])
            if inputs != outputs { parameters(prefix + ".conv_shortcut", [outputs, inputs, 1, 1]) }
        }
        func transformer(_ prefix: String, _ c: Int, depth: Int) {
            let projection = linearProjection ? [c, c] : [c, c, 1, 1]
            norm(prefix + ".norm", c)
            parameters(prefix + ".proj_in", projection)
            for k in 0 ..< depth {
                let block = "\(prefix).transformer_blocks.\(k)"
                for (attention, width) in [("attn1", c), ("attn2", crossAttentionDim)] {
                    norm("\(block).norm\(attention == "attn1" ? 1 : 2)", c)
                    parameters("\(block).\(attention).to_q", [c, c], bias: false)
                    parameters("\(block).\(attention).to_k", [c, width], bias: false)
                    parameters("\(block).\(attention).to_v", [c, width], bias: false)
                    parameters("\(block).\(attention).to_out.0", [c, c])
                }
                norm(block + ".norm3", c)
                parameters(block + ".ff.net.0.proj", [8 * c, c])
                parameters(block + ".ff.net.2", [c, 4 * c])
            }
            parameters(prefix + ".proj_out", projection)
        }
        let first = blockChannels[0], n = blockCount
        parameters("conv_in", [first, inChannels, convInKernel, convInKernel])
        parameters("time_embedding.linear_1", [timeWidth, first])
        parameters("time_embedding.linear_2", [timeWidth, timeWidth])
        if let textTime {
            parameters("add_embedding.linear_1", [timeWidth, textTime.inputWidth])
            parameters("add_embedding.linear_2", [timeWidth, timeWidth])
        }
        var channels = first
        for block in 0 ..< n {
            let outputs = blockChannels[block], prefix = "down_blocks.\(block)"
            if downAttention[block] {
                for layer in 0 ..< layersPerBlock {
                    transformer("\(prefix).attentions.\(layer)", outputs, depth: downTransformerLayers[block][layer])
                }
            }
            for layer in 0 ..< layersPerBlock { resnet("\(prefix).resnets.\(layer)", layer == 0 ? channels : outputs, outputs) }
            if block < n - 1 { parameters("\(prefix).downsamplers.0.conv", [outputs, outputs, 3, 3]) }
            channels = outputs
        }
        let middle = channels
        let reversed = Array(blockChannels.reversed())
        for block in 0 ..< n {
            let outputs = reversed[block], skipInput = reversed[min(block + 1, n - 1)], prefix = "up_blocks.\(block)"
            if upAttention[block] {
                for layer in 0 ... layersPerBlock {
                    transformer("\(prefix).attentions.\(layer)", outputs, depth: upTransformerLayers[block][layer])
                }
            }
            for layer in 0 ... layersPerBlock {
                let skip = layer == layersPerBlock ? skipInput : outputs
                resnet("\(prefix).resnets.\(layer)", (layer == 0 ? channels : outputs) + skip, outputs)
            }
            if block < n - 1 { parameters("\(prefix).upsamplers.0.conv", [outputs, outputs, 3, 3]) }
            channels = outputs
        }
        // diffusers registers the mid block after the up blocks.
        if midAttention { transformer("mid_block.attentions.0", middle, depth: midTransformerLayers) }
        for index in 0 ..< (midAttention ? 2 : 1) { resnet("mid_block.resnets.\(index)", middle, middle) }
        norm("conv_norm_out", first)
        parameters("conv_out", [outChannels, first, convOutKernel, convOutKernel])
        return tensors
    }

    /// Checks that the UNet tensors of a file (diffusers names in file order, with shapes; a time-feature cache may
    /// have replaced the time-embedding MLP and every time_emb_proj) are exactly the ones this configuration reads.
    /// - Throws: `UNetError` naming the first file tensor that does not fit (unknown, or of another shape), else the
    ///   first one missing; `fileName` gives the file's own name of a tensor.
    func checkTensors(_ names: [String], shapes: [String: [Int]], timeFeaturesCached: Bool, path: String,
                      fileName: (String) -> String) throws {
        if timeFeaturesCached, textTime != nil {
            throw UNetError.notAUNet(path: path, reason: "a time-feature cache cannot stand for an SDXL-family time embedding, "
                                     + "which adds text_embeds and time_ids (spec/bfq.md section 3.3)")
        }
        var expected: [String: [Int]] = [:]
        var order: [String] = []
        for (name, shape) in tensorShapes {
            if timeFeaturesCached, name.hasPrefix("time_embedding.") || name.contains(".time_emb_proj.") { continue }
            expected[name] = shape
            order.append(name)
        }
        for name in names {
            guard let shape = expected[name] else { throw UNetError.unreadTensor(path: path, name: fileName(name)) }
            if let found = shapes[name], found != shape {
                throw UNetError.weightMismatch(path: path, name: fileName(name), expected: "\(shape) for the configured UNet",
                                               found: "\(found)")
            }
        }
        let present = Set(names)
        if let missing = order.first(where: { !present.contains($0) }) {
            throw UNetError.missingTensor(path: path, name: missing, fileName: fileName(missing))
        }
    }
}

extension UNetConfig {
    /// Checks that the UNet tensors among `names` (any scheme and prefix, with `shapes` in parallel) form one
    /// consistent UNet: the configuration inferred from them reads exactly those tensors. Files without conv_in and
    /// conv_out (a partial UNet) are not checked.
    /// - Throws: `UNetError` naming the first tensor (the file's name) that does not fit any consistent configuration.
    public static func checkConsistency(names: [String], shapes: [[Int]], path: String) throws {
        let unet = try diffusersTable(names: names, shapes: shapes, path: path)
        guard unet.shapes["conv_in.weight"] != nil, unet.shapes["conv_out.weight"] != nil else { return }
        try inferred(from: unet.shapes, path: path, runnable: false).check(unet, path: path)
    }

    /// Checks that the UNet tensors among `names` (any scheme and prefix, with `shapes` in parallel) are exactly the
    /// ones this configuration reads.
    /// - Throws: `UNetError` naming the first tensor (the file's name) that does not fit, or the first missing one.
    public func check(names: [String], shapes: [[Int]], path: String) throws {
        try check(try Self.diffusersTable(names: names, shapes: shapes, path: path), path: path)
    }

    private func check(_ unet: (order: [String], shapes: [String: [Int]], fileNames: [String: String]), path: String) throws {
        try checkTensors(unet.order, shapes: unet.shapes, timeFeaturesCached: false, path: path) { unet.fileNames[$0] ?? $0 }
    }

    /// The UNet tensors among `names` under their diffusers names: in file order, with shapes, and each one's file name.
    private static func diffusersTable(names: [String], shapes: [[Int]], path: String) throws
        -> (order: [String], shapes: [String: [Int]], fileNames: [String: String]) {
        let indices = UNetNaming.groups(names).flatMap(\.indices).sorted()
        let renamed = try UNetNaming.rename(names, to: .diffusers).map { name in
            name.hasPrefix(UNetNaming.diffusersPrefix) ? String(name.dropFirst(UNetNaming.diffusersPrefix.count)) : name
        }
        var table: [String: [Int]] = [:], fileNames: [String: String] = [:]
        for index in indices {
            if let other = fileNames.updateValue(names[index], forKey: renamed[index]) {
                throw UNetError.ambiguousTensor(path: path, first: other, second: names[index])
            }
            table[renamed[index]] = shapes[index]
        }
        return (indices.map { renamed[$0] }, table, fileNames)
    }
}
