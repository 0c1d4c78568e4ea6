import BFQCore

/// OpenBLAS for the commands that multiply matrices (running the UNet, output-space sensitivity, GPTQ rounding).
enum MatrixKernels {
    /// Throws when OpenBLAS cannot be loaded (one line, exit status 2); warns once on stderr when its kernels are
    /// narrower than AVX2 and FMA.
    static func require() throws {
        let runtime = try BLASRuntime.load()
        if let warning = runtime.narrowKernelWarning { printError("bfq: warning: \(warning)") }
    }
}
