/// The paper's published 1.99-bit SD-v1.5 recipe (BitsFusion, arXiv 2406.04333v2, App. H): bits for each of the
/// 256 quantized layers, conv_in and conv_out at 8 bits, by diffusers layer name, so it applies to any UNet with the
/// SD-v1.5 block structure. With 50 cached timesteps it averages 1.9885 bits on SD-v1.5.
public enum BitsFusionRecipe {
    /// The name `--plan` takes.
    public static let name = "bitsfusion-sd15"

    /// The recipe as a plan (conv_in and conv_out are fixed by the layout, not the plan).
    public static var plan: QuantizationPlan {
        let choices = layers.filter { $0.name != "conv_in" && $0.name != "conv_out" }.map { ($0.name, LayerChoice.grid($0.bits)) }
        return QuantizationPlan(choices: Dictionary(uniqueKeysWithValues: choices), origin: name)
    }
}
