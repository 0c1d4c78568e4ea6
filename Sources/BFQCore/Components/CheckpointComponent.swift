/// The parts of a full SD/SDXL checkpoint, found by the prefixes the original (ldm, sgm) and diffusers layouts use.
public enum CheckpointComponent: String, Sendable, CaseIterable {
    case unet
    case vae
    /// CLIP ViT-L (SD 1.x, SDXL base), or SD 2.x's OpenCLIP ViT-H.
    case textEncoder = "text_encoder"
    /// SDXL's OpenCLIP ViT-bigG.
    case textEncoder2 = "text_encoder_2"

    /// The component a non-UNet tensor name belongs to and how many leading characters its standalone file drops:
    /// `first_stage_model.` and `vae.` for the VAE; `cond_stage_model.transformer.` (CLIP, leaving transformers'
    /// `text_model.` names), `cond_stage_model.model.` (OpenCLIP), `conditioner.embedders.N.transformer.` and
    /// `text_encoder.` for the text encoder; `conditioner.embedders.N.model.` and `text_encoder_2.` for the second.
    /// UNet names are recognised by `UNetNaming`, not here.
    static func classify(_ name: String) -> (component: CheckpointComponent, prefixLength: Int)? {
        for (prefix, component) in fixedPrefixes where name.hasPrefix(prefix) { return (component, prefix.count) }
        if name.hasPrefix("cond_stage_model.") {
            for inner in ["transformer.", "model."] where name.dropFirst(17).hasPrefix(inner) { return (.textEncoder, 17 + inner.count) }
            return (.textEncoder, 17)
        }
        let embedders = "conditioner.embedders."
        guard name.hasPrefix(embedders) else { return nil }
        let rest = name.dropFirst(embedders.count)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, rest.dropFirst(digits.count).hasPrefix(".") else { return nil }
        let inner = rest.dropFirst(digits.count + 1)
        let length = embedders.count + digits.count + 1
        if inner.hasPrefix("transformer.") { return (.textEncoder, length + 12) }
        if inner.hasPrefix("model.") { return (.textEncoder2, length + 6) }
        return nil
    }

    private static let fixedPrefixes: [(String, CheckpointComponent)] = [
        ("first_stage_model.", .vae), ("vae.", .vae), ("text_encoder_2.", .textEncoder2), ("text_encoder.", .textEncoder),
    ]

    /// The prefix of an ldm checkpoint's EMA copies (`model_ema.` + the UNet name after `model.` without its dots).
    public static let emaPrefix = "model_ema."

    /// Whether `name` is an EMA weight (not the EMA's `decay` and `num_updates` counters).
    static func isEMAWeight(_ name: String) -> Bool {
        name.hasPrefix(emaPrefix) && name != "model_ema.decay" && name != "model_ema.num_updates"
    }
}
