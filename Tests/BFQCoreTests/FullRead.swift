@testable import BFQCore

/// Reads a checkpoint to its last byte, as bfq's commands would: opens it, produces every tensor's elements (in place,
/// gathered from a view, or decoded from .bfq sections or GGUF blocks) and every floating-point tensor widened to f32 (quantized .bfq
/// tensors decode straight to f32 that way); a .bfq also goes through every check of `bfq verify` and gives its
/// time-feature cache.
enum FullRead {
    static func checkpoint(_ path: String) throws {
        let checkpoint = try CheckpointFile.open(path)
        if let decoder = checkpoint.decoder as? ContainerTensorDecoder {
            _ = try ContainerVerification(path: path)
            _ = try decoder.reader.timeFeatureValues()
        }
        for tensor in checkpoint.tensors {
            _ = try checkpoint.withContiguousBytes(of: tensor) { $0.count }
            if tensor.dtype.isFloatingPoint { _ = try checkpoint.floats(of: tensor) }
        }
    }

    /// Whether `error` is a checkpoint reader's refusal (the errors bfq reports for a bad input file).
    static func isReaderError(_ error: Error) -> Bool {
        error is SafeTensorsError || error is PyTorchError || error is ContainerError || error is CheckpointError
            || error is GGUFError || error is AssemblyError
    }
}
