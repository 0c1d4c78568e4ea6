/// Takes parts out of a full checkpoint without copying anything: the tensors of one component (`--only`), the EMA
/// weights in place of the UNet's (`--ema`), or only the model's weights (`--prune`: no EMA copies, schedule buffers
/// or other entries). The result reads the same files; its tensors carry the names the output gets.
public struct CheckpointSurgery: Sendable, Equatable {
    /// A component (unet, vae, text_encoder, text_encoder_2, or a pipeline folder's component name), else a name prefix
    /// (names kept as they are).
    public var only: String?
    /// Put the EMA weights (`model_ema.*`, as diffusers' `extract_ema` reads them) in place of the UNet's.
    public var ema: Bool
    /// Keep only tensors of recognised components.
    public var prune: Bool

    public init(only: String? = nil, ema: Bool = false, prune: Bool = false) {
        self.only = only
        self.ema = ema
        self.prune = prune
    }

    /// Whether the surgery changes anything.
    public var isEmpty: Bool { only == nil && !ema && !prune }

    /// What a surgery kept and dropped.
    public struct Report: Sendable, Equatable {
        public var kept = 0
        public var emaSwapped = 0
        public var droppedEMA = 0
        /// Names of dropped tensors that belong to no component and are not EMA copies.
        public var droppedOther: [String] = []
        public var droppedComponents = 0

        /// One line, e.g. "kept 1,131 tensors, the UNet's 686 from its EMA; dropped 688 EMA entries, 12 other entries (betas, ...)".
        public var summary: String {
            var line = "kept \(Formatting.grouped(kept)) tensor\(kept == 1 ? "" : "s")"
            if emaSwapped > 0 { line += ", the UNet's \(Formatting.grouped(emaSwapped)) from its EMA weights" }
            var dropped: [String] = []
            if droppedEMA > 0 { dropped.append("\(Formatting.grouped(droppedEMA)) EMA entries (model_ema.*)") }
            if droppedComponents > 0 { dropped.append("\(Formatting.grouped(droppedComponents)) of other components") }
            if !droppedOther.isEmpty {
                dropped.append("\(Formatting.grouped(droppedOther.count)) other entries ("
                    + droppedOther.prefix(3).joined(separator: ", ") + (droppedOther.count > 3 ? ", ..." : "") + ")")
            }
            return line + (dropped.isEmpty ? "" : "; dropped " + dropped.joined(separator: ", "))
        }
    }

    /// The checkpoint with the surgery applied, and what it kept and dropped.
    /// - Throws: `CheckpointError` when `--ema` finds no EMA weights or a UNet tensor without its EMA copy, or when
    ///   nothing is left.
    public func apply(to checkpoint: Checkpoint) throws -> (checkpoint: Checkpoint, report: Report) {
        var result = checkpoint
        var report = Report()
        if ema { result.tensors = try swapEMA(checkpoint, report: &report) }
        let names = result.tensors.map(\.name)
        let unet = Set(UNetNaming.groups(names).flatMap(\.indices))
        // Renaming is for plain files: a .bfq's or GGUF file's decoder finds tensors by their names.
        let renames = checkpoint.decoder == nil
        var pipelineComponents: [String] = []
        if case let .pipeline(_, components)? = checkpoint.assembly { pipelineComponents = components.map(\.name) }
        let byComponent = only.map { CheckpointComponent(rawValue: $0) != nil || pipelineComponents.contains($0) } ?? false
        var kept: [TensorEntry] = []
        for (index, var entry) in result.tensors.enumerated() {
            let component = self.component(of: entry.name, isUNet: unet.contains(index), in: checkpoint)
            let keep: Bool
            if let only, byComponent {
                keep = component?.name == only
                if keep, renames { entry.name.removeFirst(component!.strip) }
            } else if let only {
                keep = entry.name.hasPrefix(only)
            } else {
                keep = !prune || component != nil
            }
            guard keep else {
                count(entry.name, component: component, in: &report)
                continue
            }
            kept.append(entry)
        }
        guard !kept.isEmpty else {
            if let only, byComponent { throw CheckpointError.noComponent(path: checkpoint.path, component: only, found: found(in: checkpoint)) }
            if let only { throw CheckpointError.noTensorsMatch(path: checkpoint.path, prefix: only) }
            throw CheckpointError.nothingToKeep(path: checkpoint.path)
        }
        var seen = Set<String>()
        for entry in kept where !seen.insert(entry.name).inserted {
            throw CheckpointError.duplicateOutputName(path: checkpoint.path, tensor: entry.name)
        }
        result.tensors = kept
        report.kept = kept.count
        return (result, report)
    }

    private func count(_ name: String, component: (name: String, strip: Int)?, in report: inout Report) {
        if component != nil { report.droppedComponents += 1 }
        else if name.hasPrefix(CheckpointComponent.emaPrefix) { report.droppedEMA += 1 }
        else { report.droppedOther.append(name) }
    }

    /// The component `name` belongs to and the characters its standalone name drops: a pipeline folder's component
    /// by its folder name; the UNet (ldm names keep `model.diffusion_model.`, diffusers names drop `unet.`); the others
    /// as `CheckpointComponent.classify` says.
    private func component(of name: String, isUNet: Bool, in checkpoint: Checkpoint) -> (name: String, strip: Int)? {
        if case let .pipeline(_, components)? = checkpoint.assembly,
           let folder = components.first(where: { name.hasPrefix($0.name + ".") }) {
            return (folder.name, folder.name.count + 1)
        }
        if isUNet {
            return (CheckpointComponent.unet.rawValue, name.hasPrefix(UNetNaming.diffusersPrefix) ? UNetNaming.diffusersPrefix.count : 0)
        }
        return CheckpointComponent.classify(name).map { ($0.component.rawValue, $0.prefixLength) }
    }

    /// The components present, for the message when `only` names none of them.
    private func found(in checkpoint: Checkpoint) -> [String] {
        let names = checkpoint.tensors.map(\.name)
        let unet = Set(UNetNaming.groups(names).flatMap(\.indices))
        var found: [String] = []
        for (index, name) in names.enumerated() {
            if let (component, _) = component(of: name, isUNet: unet.contains(index), in: checkpoint), !found.contains(component) {
                found.append(component)
            }
        }
        return found
    }

    /// The tensors with each ldm UNet tensor's storage taken from its EMA copy (`model_ema.` + the name after `model.`
    /// without dots, as diffusers' `convert_ldm_unet_checkpoint(extract_ema=True)` looks it up) and the EMA entries gone.
    private func swapEMA(_ checkpoint: Checkpoint, report: inout Report) throws -> [TensorEntry] {
        var byName: [String: TensorEntry] = [:]
        for entry in checkpoint.tensors where CheckpointComponent.isEMAWeight(entry.name) { byName[entry.name] = entry }
        let unet = UNetNaming.groups(checkpoint.tensors.map(\.name)).filter { $0.scheme == .ldm && $0.prefix == UNetNaming.ldmPrefix }
        guard !byName.isEmpty, let group = unet.first else { throw CheckpointError.noEMA(path: checkpoint.path) }
        var tensors = checkpoint.tensors
        for index in group.indices {
            let entry = tensors[index]
            let key = CheckpointComponent.emaPrefix + entry.name.split(separator: ".").dropFirst().joined()
            guard var copy = byName[key] else {
                throw CheckpointError.emaMissing(path: checkpoint.path, tensor: entry.name, ema: key)
            }
            // The copy's own dtype is kept (an fp32 EMA beside an fp16 model is the EMA the user asked for).
            guard copy.shape == entry.shape, copy.dtype.isFloatingPoint else {
                throw CheckpointError.emaMismatch(path: checkpoint.path, tensor: entry.name, ema: key,
                                                  found: "\(copy.dtype.rawValue) \(copy.shape)", expected: "\(entry.dtype.rawValue) \(entry.shape)")
            }
            copy.name = entry.name
            tensors[index] = copy
        }
        report.emaSwapped = group.indices.count
        let before = tensors.count
        tensors.removeAll { $0.name.hasPrefix(CheckpointComponent.emaPrefix) }
        report.droppedEMA = before - tensors.count
        return tensors
    }
}
