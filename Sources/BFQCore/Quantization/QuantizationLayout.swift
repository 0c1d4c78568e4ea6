/// The tensors of a checkpoint as the quantizer sees them: which are conv and linear weights of the UNet to give
/// bits to, which are fixed (conv_in, conv_out at 8 bits, as the paper), which belong to the time embedding (cacheable),
/// and which are kept (1-D tensors, non-UNet parts of a full SD checkpoint).
///
/// Layers are named by their diffusers module name (`down_blocks.0.attentions.0.proj_in`), whatever the file's
/// naming, so plans carry across namings; output tensors keep the file's names unless a scheme is asked for.
public struct QuantizationLayout: Sendable {
    public enum Role: Equatable, Sendable {
        /// A conv or linear weight whose bits the plan or the allocator chooses.
        case allocated
        /// conv_in and conv_out: stored as the choice says, outside the allocation.
        case fixed(LayerChoice)
        /// Weights and biases of the time-embedding MLP and of each ResNet's time_emb_proj. Weights are allocated
        /// like the others unless the time-feature cache replaces them.
        case time
        /// Stored raw: 1-D UNet tensors (biases, norms) and everything outside the UNet.
        case kept
    }

    public struct Tensor: Sendable {
        public var entry: TensorEntry
        /// The name written to the output.
        public var outputName: String
        /// The diffusers module name for UNet weights with two or more dimensions, else nil.
        public var layer: String?
        public var role: Role
        /// The diffusers tensor name (`down_blocks.0.resnets.0.conv1.bias`) for UNet tensors, else nil.
        public var unetName: String?
        /// Output channels (first dimension).
        public var rows: Int { entry.shape.first ?? 1 }
        /// Weights per output channel.
        public var columns: Int { entry.shape.count < 2 ? entry.elementCount : entry.shape.dropFirst().reduce(1, *) }
        /// True for a weight with two or more dimensions (a conv or linear weight).
        public var isMatrix: Bool { layer != nil }
    }

    /// Every selected tensor, in file order.
    public let tensors: [Tensor]
    /// The file's UNet naming.
    public let scheme: NamingScheme

    /// Classifies `checkpoint`'s tensors; `names` renames the UNet's tensors in the output.
    public init(_ checkpoint: Checkpoint, names: NamingScheme? = nil) throws {
        let entries = checkpoint.tensors
        let inputNames = entries.map(\.name)
        guard let scheme = UNetNaming.detect(inputNames) else { throw QuantizationError.notAUNet(path: checkpoint.path) }
        self.scheme = scheme
        let unet = Set(UNetNaming.groups(inputNames).flatMap(\.indices))
        let canonical = try UNetNaming.rename(inputNames, to: .diffusers)
        let outputNames = try names.map { try UNetNaming.rename(inputNames, to: $0) } ?? inputNames
        tensors = entries.indices.map { index in
            let entry = entries[index]
            guard unet.contains(index) else {
                return Tensor(entry: entry, outputName: outputNames[index], layer: nil, role: .kept)
            }
            var name = canonical[index]
            if name.hasPrefix(UNetNaming.diffusersPrefix) { name.removeFirst(UNetNaming.diffusersPrefix.count) }
            let module = name.hasSuffix(".weight") || name.hasSuffix(".bias") ? String(name[..<name.lastIndex(of: ".")!]) : name
            let isTime = module.hasPrefix("time_embedding.") || module.hasSuffix(".time_emb_proj")
            guard entry.shape.count >= 2, name.hasSuffix(".weight") else {
                return Tensor(entry: entry, outputName: outputNames[index], layer: nil, role: isTime ? .time : .kept, unetName: name)
            }
            let role: Role
            if module == "conv_in" || module == "conv_out" {
                role = .fixed(.grid(8))
            } else {
                role = isTime ? .time : .allocated
            }
            return Tensor(entry: entry, outputName: outputNames[index], layer: module, role: role, unetName: name)
        }
    }

    /// Conv and linear weights of the UNet (N_w of spec/bfq.md section 7).
    public var weightCount: Int { tensors.filter(\.isMatrix).reduce(0) { $0 + $1.entry.elementCount } }
}
