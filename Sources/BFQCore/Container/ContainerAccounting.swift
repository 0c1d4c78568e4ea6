/// The bit accounting of spec/bfq.md section 7 (BitsFusion App. H) and the file's real bits per weight.
public struct ContainerAccounting: Equatable, Sendable {
    /// Conv and linear weights, N_w: elements of every UNet tensor with two or more dimensions (of every such tensor
    /// when no name is an SD UNet name: a full SD checkpoint's VAE and text encoder do not count), plus the weights the
    /// time-feature cache replaced.
    public var weights: Int
    /// Bits per weight as the paper counts them.
    public var averageBits: Double
    /// 8 x file size / weights.
    public var fileBitsPerWeight: Double

    public init(manifest: ContainerManifest, fileSize bytes: Int) {
        var weights = 0
        var bits = 0.0
        let unet = Set(UNetNaming.groups(manifest.tensors.map(\.name)).flatMap(\.indices))
        for (index, tensor) in manifest.tensors.enumerated() where tensor.shape.count >= 2 && (unet.isEmpty || unet.contains(index)) {
            let elements = tensor.elementCount
            weights += elements
            switch tensor.encoding {
            case let .raw(dtype): bits += Double(8 * dtype.byteSize * elements)
            case let .grid(levels, _, _, _, _, _), let .palette(levels, _, _):
                bits += ContainerTensor.bits(levels) * Double(elements) + Self.sideBits(tensor)
            }
        }
        // The cache's features count 16 bits each; the weights they replace still count in N_w.
        if let cache = manifest.timeFeatures {
            bits += 16 * Double(cache.valueCount)
            weights += cache.replacedWeights
        }
        self.weights = weights
        averageBits = weights > 0 ? bits / Double(weights) : 0
        fileBitsPerWeight = weights > 0 ? 8 * Double(bytes) / Double(weights) : 0
    }

    /// Side information a quantized tensor counts beyond one value per row (its scale, as in the paper): group
    /// scales past the first of each row and offsets at their stored width, palette entries past one per row at 16
    /// bits (a per-tensor palette of L entries: max(0, L - rows) of them). In Double: a writer may be handed any shape.
    static func sideBits(_ tensor: ContainerTensor) -> Double {
        let rows = tensor.shape.first ?? 0
        let columns = rows == 0 ? 0 : tensor.elementCount / rows
        switch tensor.encoding {
        case .raw:
            return 0
        case let .grid(_, _, scaleType, groupSize, offsetType, _):
            let extraScales = groupSize.map { max(0, (columns + $0 - 1) / $0 - 1) } ?? 0
            return Double(rows) * Double(extraScales * 8 * scaleType.byteSize + 8 * (offsetType?.byteSize ?? 0))
        case let .palette(levels, perRow, _):
            return 16 * (perRow ? Double(rows) * Double(levels - 1) : Double(max(0, levels - rows)))
        }
    }

    var totals: ContainerManifest.Totals {
        ContainerManifest.Totals(weights: weights, averageBits: averageBits, fileBitsPerWeight: fileBitsPerWeight)
    }
}
