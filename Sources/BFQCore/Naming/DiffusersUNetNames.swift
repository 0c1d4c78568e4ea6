/// Reads and writes UNet tensor names in diffusers spelling (`down_blocks.0.resnets.1.conv1.weight`),
/// without any prefix.
enum DiffusersUNetNames {
    /// First components of a diffusers UNet tensor name (including embeddings SD 1.x/2.x lack).
    static let topLevel: Set<Substring> = [
        "conv_in", "time_embedding", "down_blocks", "mid_block", "up_blocks", "conv_norm_out", "conv_out",
        "class_embedding", "add_embedding", "add_time_proj", "encoder_hid_proj",
    ]
    /// First components that only a UNet's blocks use.
    static let blockLevel: Set<Substring> = ["down_blocks", "mid_block", "up_blocks"]
    /// The parts a diffusers ResNet holds.
    static let resnetParts: Set<Substring> = ["norm1", "conv1", "time_emb_proj", "norm2", "conv2", "conv_shortcut"]

    /// The address of `local` (the name without prefix); `name` is the full name, for errors.
    static func address(of local: Substring, name: String) throws -> UNetAddress {
        let parts = local.split(separator: ".", omittingEmptySubsequences: false)
        func fail(_ reason: String) -> UNetNamingError { .unmappableName(name, reason: reason) }
        func rest(_ from: Int) throws -> [Substring] {
            guard parts.count > from else { throw fail("no parameter below the module") }
            return Array(parts[from...])
        }
        switch parts[0] {
        case "conv_in": return UNetAddress(module: .convIn, suffix: try rest(1))
        case "conv_norm_out": return UNetAddress(module: .convNormOut, suffix: try rest(1))
        case "conv_out": return UNetAddress(module: .convOut, suffix: try rest(1))
        case "time_embedding":
            switch parts.count > 1 ? parts[1] : "" {
            case "linear_1": return UNetAddress(module: .timeEmbedding(linear: 1), suffix: try rest(2))
            case "linear_2": return UNetAddress(module: .timeEmbedding(linear: 2), suffix: try rest(2))
            case "cond_proj": throw fail("time_embedding.cond_proj (an LCM guidance embedding) has no ldm name and bfq does not run it")
            default: throw fail("unknown time_embedding part")
            }
        case "down_blocks", "up_blocks":
            guard parts.count > 2, let block = UNetNameParsing.index(parts[1]) else {
                throw fail("expected a block number after \(parts[0])")
            }
            let sampler: Substring = parts[0] == "down_blocks" ? "downsamplers" : "upsamplers"
            let (layer, suffix) = try self.layer(parts, at: 2, sampler: sampler, fail: fail)
            return UNetAddress(module: parts[0] == "down_blocks" ? .down(block: block, layer) : .up(block: block, layer),
                               suffix: suffix)
        case "mid_block":
            let (layer, suffix) = try self.layer(parts, at: 1, sampler: nil, fail: fail)
            return UNetAddress(module: .mid(layer), suffix: suffix)
        case "add_embedding":
            switch parts.count > 1 ? parts[1] : "" {
            case "linear_1": return UNetAddress(module: .addEmbedding(linear: 1), suffix: try rest(2))
            case "linear_2": return UNetAddress(module: .addEmbedding(linear: 2), suffix: try rest(2))
            default: throw fail("unknown add_embedding part (SDXL's text_time embedding has linear_1 and linear_2)")
            }
        case "class_embedding", "add_time_proj", "encoder_hid_proj":
            throw fail("\(parts[0]) is not part of an SD 1.x/2.x or SDXL-family UNet")
        default:
            throw fail("unknown UNet module '\(parts[0])'")
        }
    }

    /// Parses `resnets.J.…`, `attentions.J.…` or `<sampler>.0.conv.…` starting at `parts[start]`.
    private static func layer(_ parts: [Substring], at start: Int, sampler: Substring?,
                              fail: (String) -> UNetNamingError) throws -> (UNetAddress.Layer, [Substring]) {
        guard parts.count > start + 2, let index = UNetNameParsing.index(parts[start + 1]) else {
            throw fail("expected resnets.N, attentions.N or a sampler followed by a parameter")
        }
        let suffix = Array(parts[(start + 2)...])
        switch parts[start] {
        case "resnets":
            guard resnetParts.contains(suffix[0]), suffix.count > 1 else { throw fail("unknown ResNet part '\(suffix[0])'") }
            return (.resnet(index), suffix)
        case "attentions":
            return (.attention(index), suffix)
        case let kind where kind == sampler:
            guard index == 0, suffix[0] == "conv", suffix.count > 1 else { throw fail("expected \(kind).0.conv") }
            return (.sampler, Array(suffix.dropFirst()))
        default:
            throw fail("unknown block part '\(parts[start])'")
        }
    }

    /// The diffusers name (without prefix) of `address`.
    static func name(of address: UNetAddress) -> String {
        let head: String
        switch address.module {
        case .convIn: head = "conv_in"
        case .convNormOut: head = "conv_norm_out"
        case .convOut: head = "conv_out"
        case let .timeEmbedding(linear): head = "time_embedding.linear_\(linear)"
        case let .addEmbedding(linear): head = "add_embedding.linear_\(linear)"
        case let .down(block, layer): head = "down_blocks.\(block)." + part(layer, sampler: "downsamplers")
        case let .up(block, layer): head = "up_blocks.\(block)." + part(layer, sampler: "upsamplers")
        case let .mid(layer): head = "mid_block." + part(layer, sampler: "samplers")
        }
        return head + "." + address.suffixString
    }

    private static func part(_ layer: UNetAddress.Layer, sampler: String) -> String {
        switch layer {
        case let .resnet(index): return "resnets.\(index)"
        case let .attention(index): return "attentions.\(index)"
        case .sampler: return "\(sampler).0.conv"
        }
    }
}

/// Small parsing helpers shared by both schemes.
enum UNetNameParsing {
    /// A non-negative decimal index in canonical spelling (no sign, no leading zeros), or nil.
    static func index(_ text: Substring) -> Int? {
        guard let value = Int(text), value >= 0, String(value) == text else { return nil }
        return value
    }
}
