/// Reads and writes UNet tensor names in the original ldm/sgm spelling (`input_blocks.1.0.in_layers.2.weight`),
/// without the `model.diffusion_model.` prefix: SD 1.x/2.x and the SDXL family (any number of levels, attention
/// and transformer depth per level, SDXL's `label_emb`).
///
/// ldm numbers the modules of the down path (`input_blocks`), the middle and the up path (`output_blocks`)
/// consecutively, so which block a number belongs to follows from the structure: reading the numbers in
/// order, a down block ends at its downsampler (`input_blocks.N.0.op`) and an up block at the layer holding
/// its upsampler (`output_blocks.N.1.conv`, or `.2.conv` after an attention). Middle modules alternate
/// ResNet and attention; a ResNet is recognised by its parts.
struct LDMUNetNames {
    /// First components of an ldm UNet tensor name.
    static let topLevel: Set<Substring> = ["time_embed", "input_blocks", "middle_block", "output_blocks", "out", "label_emb"]
    /// First components that only a UNet's blocks use.
    static let blockLevel: Set<Substring> = ["input_blocks", "middle_block", "output_blocks"]
    /// ldm ResNet parts and their diffusers names.
    static let resnetParts: [(ldm: [Substring], diffusers: Substring)] = [
        (["in_layers", "0"], "norm1"), (["in_layers", "2"], "conv1"), (["emb_layers", "1"], "time_emb_proj"),
        (["out_layers", "0"], "norm2"), (["out_layers", "3"], "conv2"), (["skip_connection"], "conv_shortcut"),
    ]
    private static let resnetHeads: Set<Substring> = ["in_layers", "emb_layers", "out_layers", "skip_connection"]

    private enum Role { case layer(block: Int, index: Int), downsampler(block: Int), resnet(Int), attention(Int) }
    private var input: [Int: Role] = [:]
    private var output: [Int: Role] = [:]
    private var middle: [Int: Role] = [:]

    /// Infers the block structure from all the UNet names (without prefix) of one checkpoint.
    init<S: Sequence>(locals: S) where S.Element == Substring {
        var inputs: [Int: Bool] = [:], outputs: [Int: Bool] = [:], middles: [Int: Bool] = [:]
        for local in locals {
            let parts = local.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count > 2, let number = UNetNameParsing.index(parts[1]) else { continue }
            let third: Substring = parts.count > 3 ? parts[3] : ""
            switch parts[0] {
            case "input_blocks" where number > 0:
                inputs[number, default: false] = inputs[number, default: false] || (parts[2] == "0" && third == "op")
            case "output_blocks":
                let upsampler = (parts[2] == "1" || parts[2] == "2") && third == "conv"
                outputs[number, default: false] = outputs[number, default: false] || upsampler
            case "middle_block":
                middles[number, default: false] = middles[number, default: false] || Self.resnetHeads.contains(parts[2])
            default:
                break
            }
        }
        var block = 0, layer = 0
        for (number, isDownsampler) in inputs.sorted(by: { $0.key < $1.key }) {
            if isDownsampler {
                input[number] = .downsampler(block: block)
                block += 1
                layer = 0
            } else {
                input[number] = .layer(block: block, index: layer)
                layer += 1
            }
        }
        block = 0
        layer = 0
        for (number, hasUpsampler) in outputs.sorted(by: { $0.key < $1.key }) {
            output[number] = .layer(block: block, index: layer)
            if hasUpsampler {
                block += 1
                layer = 0
            } else {
                layer += 1
            }
        }
        var resnets = 0, attentions = 0
        for (number, isResnet) in middles.sorted(by: { $0.key < $1.key }) {
            if isResnet {
                middle[number] = .resnet(resnets)
                resnets += 1
            } else {
                middle[number] = .attention(attentions)
                attentions += 1
            }
        }
    }

    /// The address of `local` (the name without prefix); `name` is the full name, for errors.
    func address(of local: Substring, name: String) throws -> UNetAddress {
        let parts = local.split(separator: ".", omittingEmptySubsequences: false)
        func fail(_ reason: String) -> UNetNamingError { .unmappableName(name, reason: reason) }
        func rest(_ from: Int) throws -> [Substring] {
            guard parts.count > from else { throw fail("no parameter below the module") }
            return Array(parts[from...])
        }
        guard parts.count > 1 else { throw fail("no parameter below the module") }
        let number = UNetNameParsing.index(parts[1])
        switch (parts[0], number) {
        case ("time_embed", 0): return UNetAddress(module: .timeEmbedding(linear: 1), suffix: try rest(2))
        case ("time_embed", 2): return UNetAddress(module: .timeEmbedding(linear: 2), suffix: try rest(2))
        case ("out", 0): return UNetAddress(module: .convNormOut, suffix: try rest(2))
        case ("out", 2): return UNetAddress(module: .convOut, suffix: try rest(2))
        case ("input_blocks", 0):
            guard parts.count > 3, parts[2] == "0" else { throw fail("expected input_blocks.0.0") }
            return UNetAddress(module: .convIn, suffix: try rest(3))
        case let ("input_blocks", number?):
            guard parts.count > 3, let role = input[number] else { throw fail("input block \(number) not understood") }
            switch (role, parts[2]) {
            case let (.downsampler(block), "0") where parts[3] == "op":
                return UNetAddress(module: .down(block: block, .sampler), suffix: try rest(4))
            case let (.layer(block, index), "0"):
                return UNetAddress(module: .down(block: block, .resnet(index)), suffix: try Self.resnetSuffix(parts[3...], fail))
            case let (.layer(block, index), "1"):
                return UNetAddress(module: .down(block: block, .attention(index)), suffix: try rest(3))
            default:
                throw fail("unexpected module \(parts[2]) in input block \(number)")
            }
        case let ("middle_block", number?):
            guard parts.count > 2, let role = middle[number] else { throw fail("middle block \(number) not understood") }
            if case let .resnet(index) = role {
                return UNetAddress(module: .mid(.resnet(index)), suffix: try Self.resnetSuffix(parts[2...], fail))
            }
            guard case let .attention(index) = role else { throw fail("middle block \(number) not understood") }
            return UNetAddress(module: .mid(.attention(index)), suffix: try rest(2))
        case let ("output_blocks", number?):
            guard parts.count > 3, case let .layer(block, index)? = output[number] else {
                throw fail("output block \(number) not understood")
            }
            switch parts[2] {
            case "0":
                return UNetAddress(module: .up(block: block, .resnet(index)), suffix: try Self.resnetSuffix(parts[3...], fail))
            case "1" where parts[3] != "conv":
                return UNetAddress(module: .up(block: block, .attention(index)), suffix: try rest(3))
            case "1", "2":
                guard parts[3] == "conv" else { throw fail("unexpected module \(parts[2]) in output block \(number)") }
                return UNetAddress(module: .up(block: block, .sampler), suffix: try rest(4))
            default:
                throw fail("unexpected module \(parts[2]) in output block \(number)")
            }
        case ("label_emb", 0):
            // SDXL's added conditioning MLP: label_emb.0.0 and label_emb.0.2 (a Sequential inside a Sequential).
            guard parts.count > 3, let linear = UNetNameParsing.index(parts[2]), linear == 0 || linear == 2 else {
                throw fail("expected label_emb.0.0 or label_emb.0.2")
            }
            return UNetAddress(module: .addEmbedding(linear: linear == 0 ? 1 : 2), suffix: try rest(3))
        default:
            throw fail("unknown UNet module '\(parts[0]).\(parts[1])'")
        }
    }

    /// Translates an ldm ResNet suffix (`in_layers.2.weight`) to diffusers spelling (`conv1.weight`).
    private static func resnetSuffix(_ parts: ArraySlice<Substring>, _ fail: (String) -> UNetNamingError) throws -> [Substring] {
        for (ldm, diffusers) in resnetParts where parts.starts(with: ldm) && parts.count > ldm.count {
            return [diffusers] + parts.dropFirst(ldm.count)
        }
        throw fail("unknown ResNet part '\(parts.prefix(2).joined(separator: "."))'")
    }

    /// The ldm name (without prefix) of `address` in a UNet with block structure `layout`.
    static func name(of address: UNetAddress, layout: UNetLayout) throws -> String {
        let suffix = address.suffixString
        switch address.module {
        case .convIn: return "input_blocks.0.0." + suffix
        case let .timeEmbedding(linear): return "time_embed.\(linear == 1 ? 0 : 2)." + suffix
        case let .addEmbedding(linear): return "label_emb.0.\(linear == 1 ? 0 : 2)." + suffix
        case .convNormOut: return "out.0." + suffix
        case .convOut: return "out.2." + suffix
        case let .down(block, layer):
            // input_blocks.0 is conv_in; each down block then has its layers and maybe a downsampler.
            let first = 1 + layout.down[..<block].reduce(0) { $0 + $1.layers + ($1.hasSampler ? 1 : 0) }
            switch layer {
            case let .resnet(index): return "input_blocks.\(first + index).0." + ldmResnetSuffix(address.suffix)
            case let .attention(index): return "input_blocks.\(first + index).1." + suffix
            case .sampler: return "input_blocks.\(first + layout.down[block].layers).0.op." + suffix
            }
        case let .up(block, layer):
            let first = layout.up[..<block].reduce(0) { $0 + $1.layers }
            switch layer {
            case let .resnet(index): return "output_blocks.\(first + index).0." + ldmResnetSuffix(address.suffix)
            case let .attention(index): return "output_blocks.\(first + index).1." + suffix
            case .sampler:
                let last = layout.up[block].layers - 1
                guard last >= 0 else {
                    throw UNetNamingError.unmappableName(DiffusersUNetNames.name(of: address),
                                                         reason: "upsampler in an up block without layers")
                }
                // The upsampler follows the last layer's ResNet, and its attention if it has one.
                let slot = layout.up[block].attentions.contains(last) ? 2 : 1
                return "output_blocks.\(first + last).\(slot).conv." + suffix
            }
        case let .mid(layer):
            switch layer {
            case let .resnet(index):
                return "middle_block.\(layout.midAttentions > 0 ? 2 * index : index)." + ldmResnetSuffix(address.suffix)
            case let .attention(index): return "middle_block.\(2 * index + 1)." + suffix
            case .sampler:
                throw UNetNamingError.unmappableName(DiffusersUNetNames.name(of: address), reason: "the middle block has no sampler")
            }
        }
    }

    private static func ldmResnetSuffix(_ suffix: [Substring]) -> String {
        let ldm = resnetParts.first { $0.diffusers == suffix[0] }?.ldm ?? [suffix[0]]
        return (ldm + suffix.dropFirst()).joined(separator: ".")
    }
}
