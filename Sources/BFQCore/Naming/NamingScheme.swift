/// The two tensor-naming schemes in use for Stable Diffusion UNets.
public enum NamingScheme: String, Sendable, CaseIterable {
    /// The original CompVis/Stability naming (`input_blocks.1.0.in_layers.2.weight`), under `model.diffusion_model.`.
    case ldm
    /// Hugging Face diffusers naming (`down_blocks.0.resnets.0.conv1.weight`).
    case diffusers
}
