import ArgumentParser
import BFQCore

extension QuantizationOptions.Rounding: ExpressibleByArgument {}
extension QuantizationOptions.ColumnOrder: ExpressibleByArgument {}

/// How `quantize` rounds each weight to its level: nearest, or GPTQ on the calibration set, and bias correction.
struct RoundingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("gptq (default: error-compensating rounding with each layer's input second moments on the "
        + "calibration set, layers in the order the UNet runs them; a layer keeps nearest rounding when that has the smaller "
        + "output error on held-out calibration positions) or nearest (each weight to its nearest level, no UNet run).",
                               valueName: "rounding"))
    var rounding: QuantizationOptions.Rounding?

    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Let each quantized layer's bias absorb the mean of its output error "
        + "on the calibration set (default: on with gptq, off with nearest)."))
    var biasCorrection: Bool?

    @Option(help: "GPTQ: damping added to the diagonal of H, as a fraction of its mean (default 0.01; raised tenfold, up to 4 times, when H is not positive definite).")
    var damping: Double?

    @Option(help: "GPTQ: the order of each block's columns: diagonal (default; most input energy first) or natural.")
    var columnOrder: QuantizationOptions.ColumnOrder?

    @Option(help: ArgumentHelp("GPTQ: keep H as diagonal blocks of at most this many columns, whole input channels "
        + "(default 4608; a layer's blocks hold at most 96 MiB, so wider layers get narrower ones).", valueName: "columns"))
    var hessianBlock: Int?

    /// True when these options run the calibration set through the UNet.
    var calibrates: Bool { apply(to: QuantizationOptions()).calibratesRounding }

    /// `options` with these set; the GPTQ settings without GPTQ rounding are usage errors.
    func apply(to options: QuantizationOptions) -> QuantizationOptions {
        var options = options
        options.rounding = rounding
        options.biasCorrection = biasCorrection
        options.damping = damping ?? options.damping
        options.columnOrder = columnOrder ?? options.columnOrder
        options.hessianBlock = hessianBlock ?? options.hessianBlock
        return options
    }

    func validate() throws {
        if let damping, !(damping > 0 && damping <= 1) { throw ValidationError("--damping must be above 0 and at most 1, not \(damping)") }
        if let hessianBlock, !(1 ... 65536).contains(hessianBlock) { throw ValidationError("--hessian-block must be 1...65536") }
        if rounding == .nearest {
            let given = [(damping != nil, "--damping"), (columnOrder != nil, "--column-order"),
                         (hessianBlock != nil, "--hessian-block")].filter(\.0).map(\.1)
            if let option = given.first { throw ValidationError("\(option) is a GPTQ setting; it has no effect with --rounding nearest") }
        }
    }
}
