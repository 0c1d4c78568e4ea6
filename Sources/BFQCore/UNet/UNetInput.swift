/// One batch of UNet inputs: latents [batch][channels][height][width], one timestep per image, encoder hidden
/// states [batch][tokens][width], and for SDXL-family UNets the pooled text embedding [batch][textWidth] and the
/// micro-conditioning ids [batch][timeIdCount], all f32.
public struct UNetInput: Sendable {
    public var sample: [Float]
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var timesteps: [Float]
    public var encoder: [Float]
    public var tokens: Int
    public var encoderWidth: Int
    /// SDXL's `text_embeds` [batch][textWidth], or empty.
    public var textEmbeds: [Float] = []
    public var textWidth = 0
    /// SDXL's `time_ids` [batch][timeIdCount], or empty.
    public var timeIds: [Float] = []
    public var timeIdCount = 0
    /// Where the input came from, for messages.
    public var source: String

    public init(sample: [Float], batch: Int, channels: Int, height: Int, width: Int, timesteps: [Float],
                encoder: [Float], tokens: Int, encoderWidth: Int, source: String = "input") {
        self.sample = sample
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.timesteps = timesteps
        self.encoder = encoder
        self.tokens = tokens
        self.encoderWidth = encoderWidth
        self.source = source
    }

    /// Latent positions per image a forward pass accepts (128x128 latents, SD's 1024x1024 pixels): self-attention's
    /// work grows with their square, so no file can make a pass run for hours.
    public static let maximumImagePositions = 1 << 14
    /// Latent positions over the whole batch (8 images of 128x128 latents, 32 of 64x64): SD then peaks at a few GB,
    /// so memory stays bounded whatever a file declares.
    public static let maximumPositions = 1 << 17
    /// Encoder tokens per image a forward pass accepts.
    public static let maximumTokens = 4096
    /// Encoder values (batch x tokens x width) a forward pass accepts: 256 MB of f32.
    public static let maximumEncoderValues = 1 << 26
    /// Latent channels a file may declare (SD uses 4, inpainting 9).
    public static let maximumChannels = 64
    /// Width of `text_embeds` or `time_ids` a file may declare (SDXL: 1280 and 6).
    public static let maximumAddedWidth = 1 << 16

    /// Attaches SDXL's added conditioning: `textEmbeds` [batch][textWidth] and `timeIds` [batch][timeIdCount].
    public mutating func condition(textEmbeds: [Float], textWidth: Int, timeIds: [Float], timeIdCount: Int) {
        self.textEmbeds = textEmbeds
        self.textWidth = textWidth
        self.timeIds = timeIds
        self.timeIdCount = timeIdCount
    }

    static let positionLimits = "at most \(maximumImagePositions) latent positions per image (128x128) and \(maximumPositions) over the batch"

    /// Checks the input against the model it is about to run through.
    func check(_ config: UNetConfig) throws {
        func mismatch(_ tensor: String, _ expected: String, _ found: String) -> UNetError {
            .inputMismatch(path: source, tensor: tensor, expected: expected, found: found)
        }
        guard channels == config.inChannels, batch > 0, height > 0, width > 0,
              sample.count == batch * channels * height * width else {
            throw mismatch("sample", "shape [batch, \(config.inChannels), height, width]",
                           "[\(batch), \(channels), \(height), \(width)]")
        }
        guard height * width <= Self.maximumImagePositions, batch * height * width <= Self.maximumPositions else {
            throw mismatch("sample", Self.positionLimits, "[\(batch), \(channels), \(height), \(width)]")
        }
        guard encoderWidth == config.crossAttentionDim, tokens > 0, tokens <= Self.maximumTokens, encoder.count == batch * tokens * encoderWidth else {
            throw mismatch("encoder_hidden_states", "shape [\(batch), tokens <= \(Self.maximumTokens), \(config.crossAttentionDim)]",
                           "[\(encoder.count / max(1, tokens * encoderWidth)), \(tokens), \(encoderWidth)]")
        }
        guard timesteps.count == batch else { throw mismatch("timestep", "\(batch) values", "\(timesteps.count)") }
        guard let textTime = config.textTime else {
            if !textEmbeds.isEmpty || !timeIds.isEmpty {
                throw mismatch(textEmbeds.isEmpty ? "time_ids" : "text_embeds", "none (the UNet has no added conditioning)",
                               "[\(batch), \(textEmbeds.isEmpty ? timeIdCount : textWidth)]")
            }
            return
        }
        let expected = "text_embeds [\(batch), P] and time_ids [\(batch), K] with P + K x \(textTime.timeWidth) = \(textTime.inputWidth)"
        guard !textEmbeds.isEmpty else { throw mismatch("text_embeds", expected + " (an SDXL-family UNet)", "none") }
        guard !timeIds.isEmpty else { throw mismatch("time_ids", expected + " (an SDXL-family UNet)", "none") }
        guard textEmbeds.count == batch * textWidth else { throw mismatch("text_embeds", "\(batch) rows", "\(textEmbeds.count / max(1, textWidth))") }
        guard timeIds.count == batch * timeIdCount else { throw mismatch("time_ids", "\(batch) rows", "\(timeIds.count / max(1, timeIdCount))") }
        guard textTime.textWidth(timeIds: timeIdCount) == textWidth else {
            let width = textTime.textWidth(timeIds: timeIdCount).map { "text_embeds [\(batch), \($0)] for \(timeIdCount) time ids" }
            throw mismatch("text_embeds", width.map { $0 + " (" + expected + ")" } ?? expected, "[\(batch), \(textWidth)]")
        }
    }

    /// The add_embedding input [P + K x timeWidth][batch]: `text_embeds`, then each time id's sinusoids.
    func addedConditioning(_ textTime: TextTimeConditioning, flipSinToCos: Bool, shift: Float) -> FeatureMap {
        let ids = TimeFeatureCache.sinusoids(timeIds, width: textTime.timeWidth, flipSinToCos: flipSinToCos, shift: shift)
        let width = textWidth + timeIdCount * textTime.timeWidth
        var values = [Float](repeating: 0, count: width * batch)
        for b in 0 ..< batch {
            for c in 0 ..< textWidth { values[c * batch + b] = textEmbeds[b * textWidth + c] }
            let row = b * timeIdCount * textTime.timeWidth
            for c in 0 ..< timeIdCount * textTime.timeWidth { values[(textWidth + c) * batch + b] = ids[row + c] }
        }
        return FeatureMap(channels: width, batch: batch, height: 1, width: 1, values: values)
    }

    /// Reads `sample`, `timestep` and `encoder_hidden_states` from a checkpoint file (safetensors, .ckpt, .bfq):
    /// floating-point latents and states, timesteps of any numeric type, one per image or one for all.
    public static func load(_ path: String) throws -> UNetInput {
        let checkpoint = try CheckpointFile.open(path)
        func mismatch(_ tensor: String, _ expected: String, _ found: String) -> UNetError {
            .inputMismatch(path: path, tensor: tensor, expected: expected, found: found)
        }
        func tensor(_ name: String, rank: [Int], floating: Bool) throws -> (TensorEntry, [Float]) {
            guard let entry = checkpoint.tensors.first(where: { $0.name == name }) else {
                throw mismatch(name, "a tensor", "none")
            }
            guard rank.contains(entry.shape.count), !floating || entry.dtype.isFloatingPoint, entry.dtype != .bool else {
                throw mismatch(name, "\(floating ? "a floating-point" : "a numeric") tensor of rank "
                               + rank.map(String.init).joined(separator: " or "),
                               "\(entry.dtype.rawValue) \(entry.shape)")
            }
            let values = entry.dtype.isFloatingPoint ? try checkpoint.floats(of: entry) : try integers(entry, in: checkpoint)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw UNetError.nonFiniteInput(path: path, tensor: name, index: bad) }
            return (entry, values)
        }
        // Declared shapes are checked against the limits before anything is decoded.
        func declared(_ name: String) -> [Int]? { checkpoint.tensors.first { $0.name == name }?.shape }
        if let shape = declared("sample"), shape.count == 4 {
            let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
            guard (1 ... maximumChannels).contains(channels) else {
                throw mismatch("sample", "1 to \(maximumChannels) channels", "\(shape)")
            }
            guard batch >= 1, height >= 1, width >= 1, height <= maximumImagePositions, width <= maximumImagePositions,
                  height * width <= maximumImagePositions, batch <= maximumPositions, batch * height * width <= maximumPositions else {
                throw mismatch("sample", "at least one image of at least 1x1, " + positionLimits, "\(shape)")
            }
        }
        if let shape = declared("encoder_hidden_states"), shape.count == 3 {
            guard shape.allSatisfy({ $0 >= 1 && $0 <= maximumEncoderValues }), shape[1] <= maximumTokens,
                  shape[0] * shape[1] <= maximumEncoderValues, shape[0] * shape[1] * shape[2] <= maximumEncoderValues else {
                throw mismatch("encoder_hidden_states", "[batch, 1 to \(maximumTokens) tokens, width] of at most "
                               + "\(maximumEncoderValues) values", "\(shape)")
            }
        }
        for name in ["text_embeds", "time_ids"] {
            if let shape = declared(name), shape.count == 2 {
                guard (1 ... maximumPositions).contains(shape[0]), (1 ... maximumAddedWidth).contains(shape[1]),
                      shape[0] * shape[1] <= maximumEncoderValues else {
                    throw mismatch(name, "[batch, 1 to \(maximumAddedWidth)] of at most \(maximumEncoderValues) values", "\(shape)")
                }
            }
        }
        if let shape = declared("timestep"), shape.count <= 1 {
            guard shape.reduce(1, *) <= maximumPositions else { throw mismatch("timestep", "one value per image", "\(shape)") }
        }
        let (sampleEntry, sample) = try tensor("sample", rank: [4], floating: true)
        let (encoderEntry, encoder) = try tensor("encoder_hidden_states", rank: [3], floating: true)
        let (timeEntry, times) = try tensor("timestep", rank: [0, 1], floating: false)
        let batch = sampleEntry.shape[0]
        guard encoderEntry.shape[0] == batch else {
            throw mismatch("encoder_hidden_states", "\(batch) images, like sample", "\(encoderEntry.shape)")
        }
        guard times.count == batch || times.count == 1 else {
            throw mismatch("timestep", batch == 1 ? "1 value" : "1 or \(batch) values", "\(timeEntry.shape)")
        }
        var input = UNetInput(sample: sample, batch: batch, channels: sampleEntry.shape[1], height: sampleEntry.shape[2],
                              width: sampleEntry.shape[3], timesteps: times.count == batch ? times : Array(repeating: times[0], count: batch),
                              encoder: encoder, tokens: encoderEntry.shape[1], encoderWidth: encoderEntry.shape[2], source: path)
        // SDXL's added conditioning, when present: both or neither, one row per image.
        let present = ["text_embeds", "time_ids"].filter { declared($0) != nil }
        if present.count == 1 {
            let missing = present[0] == "text_embeds" ? "time_ids" : "text_embeds"
            throw mismatch(missing, "a tensor (SDXL's added conditioning needs text_embeds and time_ids)", "none")
        }
        if present.count == 2 {
            let (textEntry, text) = try tensor("text_embeds", rank: [2], floating: true)
            let (idsEntry, ids) = try tensor("time_ids", rank: [2], floating: false)
            for (name, entry) in [("text_embeds", textEntry), ("time_ids", idsEntry)] where entry.shape[0] != batch {
                throw mismatch(name, "\(batch) rows, like sample", "\(entry.shape)")
            }
            input.condition(textEmbeds: text, textWidth: textEntry.shape[1], timeIds: ids, timeIdCount: idsEntry.shape[1])
        }
        return input
    }

    /// An integer tensor's values as f32 (timesteps up to 2^24 are exact).
    private static func integers(_ entry: TensorEntry, in checkpoint: Checkpoint) throws -> [Float] {
        var wide = [Double](repeating: 0, count: entry.elementCount)
        try checkpoint.withContiguousBytes(of: entry) { bytes in
            wide.withUnsafeMutableBufferPointer { ElementDecoder.decode(bytes.baseAddress!, dtype: entry.dtype, count: entry.elementCount, into: $0.baseAddress!) }
        }
        return wide.map { Float($0) }
    }
}
