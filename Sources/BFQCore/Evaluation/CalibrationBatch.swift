/// The calibration set as one batch: every sample at every calibration timestep with its conditional encoder states,
/// image t x samples + s being sample s at timestep t (seeded latents and states as `bfq eval` makes them).
struct CalibrationBatch {
    let input: UNetInput
    /// Samples per timestep.
    let samples: Int

    init(_ calibration: EvaluationOptions, unet: LoadedUNet) throws {
        // Saved states grow with the calibration batch: 8192 positions (2 samples of 64x64) per timestep at most.
        try calibration.validate(imagesPerSample: 16, option: "--calibration-size")
        let config = unet.model.config
        var generator = SeededGenerator(seed: calibration.seed)
        let conditioning = try EvaluationConditioning(calibration, config: config, generator: &generator)
        let timesteps = try NoiseEvaluation.timesteps(calibration.timesteps, caches: [unet.weights],
                                                      option: "--calibration-timesteps")
        samples = conditioning.samples
        let positions = timesteps.count * samples * calibration.height * calibration.width
        guard positions <= UNetInput.maximumPositions else {
            throw UNetError.invalidEvaluation("the calibration batch (\(timesteps.count) timesteps x \(samples) samples of "
                + "\(calibration.height)x\(calibration.width)) exceeds \(UNetInput.maximumPositions) latent positions")
        }
        var sample: [Float] = [], encoder: [Float] = [], steps: [Float] = [], text: [Float] = [], ids: [Float] = []
        for timestep in timesteps {
            let batch = conditioning.input(timestep: timestep, channels: config.inChannels, height: calibration.height,
                                           width: calibration.width)
            sample += batch.sample.prefix(batch.sample.count / 2)
            encoder += batch.encoder.suffix(batch.encoder.count / 2)
            text += batch.textEmbeds.suffix(batch.textEmbeds.count / 2)
            ids += batch.timeIds.suffix(batch.timeIds.count / 2)
            steps += repeatElement(Float(timestep), count: samples)
        }
        var input = UNetInput(sample: sample, batch: steps.count, channels: config.inChannels, height: calibration.height,
                          width: calibration.width, timesteps: steps, encoder: encoder, tokens: conditioning.tokens,
                          encoderWidth: conditioning.width, source: "calibration input")
        if conditioning.textWidth > 0 {
            input.condition(textEmbeds: text, textWidth: conditioning.textWidth, timeIds: ids, timeIdCount: conditioning.timeIdCount)
        }
        self.input = input
    }
}
