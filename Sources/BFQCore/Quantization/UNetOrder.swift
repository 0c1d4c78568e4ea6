/// Orders diffusers layer names as the UNet runs them: conv_in, the time embedding, down blocks (each ResNet before
/// its transformer, then the downsampler), the mid block, up blocks, the output norm and conv_out; inside a block,
/// proj_in before the transformer before proj_out, attn1 before attn2 before the feed-forward, to_q, to_k, to_v,
/// to_out, and conv1, time_emb_proj, conv2, conv_shortcut in a ResNet.
enum UNetOrder {
    private static let rank: [String: Int] = [
        "conv_in": 0, "time_embedding": 1, "down_blocks": 2, "mid_block": 3, "up_blocks": 4, "conv_norm_out": 5, "conv_out": 6,
        "norm": 0, "proj_in": 1, "transformer_blocks": 2, "proj_out": 3,
        "norm1": 0, "attn1": 1, "norm2": 2, "attn2": 3, "norm3": 4, "ff": 5,
        "to_q": 0, "to_k": 1, "to_v": 2, "to_out": 3,
        "conv1": 1, "time_emb_proj": 2, "conv2": 4, "conv_shortcut": 5,
        "linear_1": 0, "linear_2": 1, "downsamplers": 9, "upsamplers": 9,
    ]

    /// True when `a` runs before `b`.
    static func precedes(_ a: String, _ b: String) -> Bool {
        let x = key(a), y = key(b)
        for (p, q) in zip(x, y) where p != q { return p < q }
        return x.count < y.count
    }

    /// One sortable element per name component; resnets.i and attentions.i interleave (ResNet i, then transformer i),
    /// which also puts the mid block's second ResNet after its transformer.
    private static func key(_ name: String) -> [Key] {
        let parts = name.split(separator: ".").map(String.init)
        var keys: [Key] = []
        var index = 0
        while index < parts.count {
            let part = parts[index]
            if (part == "resnets" || part == "attentions"), index + 1 < parts.count, let n = Int(parts[index + 1]) {
                keys.append(Key(rank: 1, number: part == "resnets" ? 2 * n : 2 * n + 1, text: ""))
                index += 2
                continue
            }
            if let n = Int(part) {
                keys.append(Key(rank: 1, number: n, text: ""))
            } else {
                keys.append(Key(rank: 2, number: rank[part] ?? 50, text: part))
            }
            index += 1
        }
        return keys
    }

    private struct Key: Comparable {
        var rank: Int
        var number: Int
        var text: String
        static func < (a: Key, b: Key) -> Bool { (a.rank, a.number, a.text) < (b.rank, b.number, b.text) }
    }
}
