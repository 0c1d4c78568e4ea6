import BFQCore

/// The fuzz targets' bodies: each feeds one input to a reader, which either reads it or throws.
/// Shared by the libFuzzer driver (Fuzz/, tools/fuzz.sh), which ignores the error (only a crash, a hang or a sanitizer
/// report fails), and by the regression test that replays testdata/fuzz/<target>/.
public enum FuzzEntry: String, CaseIterable, Sendable {
    case safetensors, pytorch, pickle, bfq, bfqResealed = "bfq-resealed", plan, unetConfig = "unet-config", gguf

    /// Runs the reader behind this target on `bytes`; throws its error when the input is refused.
    public func run(_ bytes: UnsafeRawBufferPointer) throws {
        switch self {
        case .pickle: try PyTorchReader.checkPickles(bytes, path: "input")
        case .unetConfig: _ = try UNetConfig(json: JSONParser.parse(bytes), path: "input")
        case .safetensors: try Self.readAll(SafeTensorsReader.read(MappedFile(path: FuzzInputFile.shared.write(bytes))))
        case .pytorch: try Self.readAll(PyTorchReader.read(MappedFile(path: FuzzInputFile.shared.write(bytes))))
        case .bfq: try Self.container(bytes)
        case .bfqResealed:
            var copy = [UInt8](bytes)
            ContainerResealing.reseal(&copy)
            try copy.withUnsafeBytes { try Self.container($0) }
        case .plan: _ = try QuantizationPlan.load(FuzzInputFile.shared.write(bytes))
        case .gguf:
            let checkpoint = try GGUFReader.read(MappedFile(path: FuzzInputFile.shared.write(bytes)))
            for tensor in checkpoint.tensors where tensor.dtype.isFloatingPoint { _ = try checkpoint.floats(of: tensor) }
        }
    }

    /// Reads every tensor's bytes, so the per-tensor checks run too.
    static func readAll(_ checkpoint: Checkpoint) throws {
        for tensor in checkpoint.tensors { _ = try checkpoint.withContiguousBytes(of: tensor) { $0.count } }
    }

    /// Verifies a .bfq (every invariant, section and code) and decodes every tensor to f32 as the evaluator does.
    static func container(_ bytes: UnsafeRawBufferPointer) throws {
        let path = FuzzInputFile.shared.write(bytes)
        _ = try ContainerVerification(path: path)
        let checkpoint = try ContainerTensorDecoder.checkpoint(MappedFile(path: path))
        for tensor in checkpoint.tensors where tensor.dtype.isFloatingPoint { _ = try checkpoint.floats(of: tensor) }
    }
}
