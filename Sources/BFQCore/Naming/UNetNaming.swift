/// Tensor names of Stable Diffusion UNets (SD 1.x and 2.x block structure) in ldm and diffusers naming.
///
/// The mapping is the one diffusers publishes (`scripts/convert_diffusers_to_original_stable_diffusion.py`,
/// `convert_ldm_unet_checkpoint`), expressed as rules over the block structure found in the names, so a UNet
/// with the same blocks but other channel widths or layer counts renames too.
///
/// UNet tensors are recognised by prefix: ldm names under `model.diffusion_model.` (or bare, when they include
/// `input_blocks`/`middle_block`/`output_blocks`), diffusers names under `unet.` (or bare, when they include
/// `down_blocks`/`mid_block`/`up_blocks`). Renamed ldm names get the `model.diffusion_model.` prefix;
/// renamed diffusers names get none, as in a diffusers `unet/` file.
public enum UNetNaming {
    /// The prefix of ldm UNet names in a full checkpoint.
    public static let ldmPrefix = "model.diffusion_model."
    /// The prefix of diffusers UNet names in a combined checkpoint.
    public static let diffusersPrefix = "unet."

    /// Which scheme a set of tensor names uses for an SD UNet, or nil if neither (e.g. not a UNet).
    /// Only UNet tensors count; when both schemes occur, the one with more tensors wins.
    public static func detect(_ names: [String]) -> NamingScheme? {
        var counts: [NamingScheme: Int] = [:]
        for group in groups(names) { counts[group.scheme, default: 0] += group.indices.count }
        let ldm = counts[.ldm] ?? 0, diffusers = counts[.diffusers] ?? 0
        if ldm == diffusers { return nil }
        return ldm > diffusers ? .ldm : .diffusers
    }

    /// Renames every UNet tensor name to `target`; names outside the UNet (VAE, text encoder, EMA, schedule
    /// buffers) and UNet names already in `target` are returned unchanged, in the same order.
    /// - Throws: `UNetNamingError` naming the first UNet tensor that cannot be mapped, or two inputs that
    ///   would end up with the same name.
    public static func rename(_ names: [String], to target: NamingScheme) throws -> [String] {
        var result = names
        for group in groups(names) where group.scheme != target {
            let addresses = try self.addresses(of: group, in: names)
            let layout = UNetLayout(addresses.map(\.module))
            for (index, address) in zip(group.indices, addresses) {
                switch target {
                case .diffusers: result[index] = DiffusersUNetNames.name(of: address)
                case .ldm: result[index] = ldmPrefix + (try LDMUNetNames.name(of: address, layout: layout))
                }
            }
        }
        var seen: [String: Int] = [:]
        for (index, name) in result.enumerated() {
            if let earlier = seen.updateValue(index, forKey: name) {
                throw UNetNamingError.nameCollision(name, first: names[earlier], second: names[index])
            }
        }
        return result
    }

    /// UNet names of one scheme sharing one prefix.
    struct Group {
        var scheme: NamingScheme
        var prefix: String
        /// Positions of the group's names in the input.
        var indices: [Int]
    }

    /// The groups of UNet names in `names`. Bare names count only when the group contains UNet block names.
    static func groups(_ names: [String]) -> [Group] {
        var groups = [Group(scheme: .ldm, prefix: ldmPrefix, indices: []), Group(scheme: .ldm, prefix: "", indices: []),
                      Group(scheme: .diffusers, prefix: diffusersPrefix, indices: []),
                      Group(scheme: .diffusers, prefix: "", indices: [])]
        var bareHasBlocks = [false, false]
        for (index, name) in names.enumerated() {
            if name.hasPrefix(ldmPrefix) {
                groups[0].indices.append(index)
            } else if name.hasPrefix(diffusersPrefix) {
                groups[2].indices.append(index)
            } else {
                let head = name.prefix { $0 != "." }
                if LDMUNetNames.topLevel.contains(head) {
                    groups[1].indices.append(index)
                    bareHasBlocks[0] = bareHasBlocks[0] || LDMUNetNames.blockLevel.contains(head)
                } else if DiffusersUNetNames.topLevel.contains(head) {
                    groups[3].indices.append(index)
                    bareHasBlocks[1] = bareHasBlocks[1] || DiffusersUNetNames.blockLevel.contains(head)
                }
            }
        }
        if !bareHasBlocks[0] { groups[1].indices = [] }
        if !bareHasBlocks[1] { groups[3].indices = [] }
        return groups.filter { !$0.indices.isEmpty }
    }

    /// The scheme-independent addresses of a group's names, in the group's order.
    static func addresses(of group: Group, in names: [String]) throws -> [UNetAddress] {
        let locals = group.indices.map { names[$0].dropFirst(group.prefix.count) }
        switch group.scheme {
        case .diffusers:
            return try zip(locals, group.indices).map { try DiffusersUNetNames.address(of: $0, name: names[$1]) }
        case .ldm:
            let ldm = LDMUNetNames(locals: locals)
            return try zip(locals, group.indices).map { try ldm.address(of: $0, name: names[$1]) }
        }
    }
}
