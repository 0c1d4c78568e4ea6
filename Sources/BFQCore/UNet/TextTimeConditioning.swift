/// SDXL's added conditioning (diffusers `addition_embed_type` "text_time"): the pooled text embedding `text_embeds`
/// [batch, P] and the micro-conditioning `time_ids` [batch, K] (original size, crop, target size, or the refiner's
/// aesthetic score), each id embedded by sinusoids of `timeWidth`, concatenated after the text, through the
/// `add_embedding` MLP and added to the time embedding.
public struct TextTimeConditioning: Equatable, Sendable {
    /// Sinusoid width of each time id (`addition_time_embed_dim`, 256 in SDXL).
    public var timeWidth: Int
    /// Input width of `add_embedding.linear_1` (`projection_class_embeddings_input_dim`): P + K x timeWidth.
    public var inputWidth: Int

    public init(timeWidth: Int, inputWidth: Int) {
        self.timeWidth = timeWidth
        self.inputWidth = inputWidth
    }

    /// SDXL's default micro-conditioning for square `pixels` images: original size, crop (0, 0), target size.
    public static func defaultTimeIds(pixels: Int) -> [Float] {
        [Float(pixels), Float(pixels), 0, 0, Float(pixels), Float(pixels)]
    }

    /// The refiner's: original size, crop (0, 0), aesthetic score 6 (diffusers' default).
    public static func defaultRefinerTimeIds(pixels: Int) -> [Float] {
        [Float(pixels), Float(pixels), 0, 0, 6]
    }

    /// The pooled text width that `timeIds` ids per image leave, or nil when they do not fit.
    public func textWidth(timeIds: Int) -> Int? {
        let rest = inputWidth - timeIds * timeWidth
        return timeIds >= 1 && rest >= 1 ? rest : nil
    }
}
