/// Where a tensor sits in an SD-style UNet, independent of the naming scheme.
///
/// `suffix` is the rest of the name below the module, with ResNet parts in diffusers spelling
/// (`conv1.weight`); attention internals are spelt the same in both schemes.
struct UNetAddress: Hashable, Sendable {
    enum Module: Hashable, Sendable {
        case convIn
        /// `time_embedding.linear_1` / `linear_2` (ldm `time_embed.0` / `time_embed.2`).
        case timeEmbedding(linear: Int)
        /// SDXL's `add_embedding.linear_1` / `linear_2` (ldm `label_emb.0.0` / `label_emb.0.2`).
        case addEmbedding(linear: Int)
        case convNormOut
        case convOut
        case down(block: Int, Layer)
        case mid(Layer)
        case up(block: Int, Layer)
    }

    /// A module within a down, mid or up block.
    enum Layer: Hashable, Sendable {
        case resnet(Int)
        case attention(Int)
        /// The block's downsampler or upsampler convolution.
        case sampler
    }

    var module: Module
    var suffix: [Substring]

    var suffixString: String { suffix.joined(separator: ".") }
}

/// The block structure of a UNet: what each down, mid and up block holds. Built from the addresses present.
struct UNetLayout: Equatable, Sendable {
    struct Block: Equatable, Sendable {
        /// Number of layers (ResNet, optionally with an attention after it).
        var layers = 0
        /// Layer indices that carry an attention.
        var attentions: Set<Int> = []
        var hasSampler = false
    }

    var down: [Block] = []
    var up: [Block] = []
    var midResnets = 0
    var midAttentions = 0

    init<S: Sequence>(_ modules: S) where S.Element == UNetAddress.Module {
        for module in modules {
            switch module {
            case let .down(block, layer): Self.add(layer, block: block, to: &down)
            case let .up(block, layer): Self.add(layer, block: block, to: &up)
            case let .mid(.resnet(index)): midResnets = max(midResnets, index + 1)
            case let .mid(.attention(index)): midAttentions = max(midAttentions, index + 1)
            default: break
            }
        }
    }

    private static func add(_ layer: UNetAddress.Layer, block: Int, to blocks: inout [Block]) {
        while blocks.count <= block { blocks.append(Block()) }
        switch layer {
        case let .resnet(index):
            blocks[block].layers = max(blocks[block].layers, index + 1)
        case let .attention(index):
            blocks[block].layers = max(blocks[block].layers, index + 1)
            blocks[block].attentions.insert(index)
        case .sampler:
            blocks[block].hasSampler = true
        }
    }
}
