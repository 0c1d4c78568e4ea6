/// In-memory f32 tensors written as a checkpoint (bfq's own outputs: noise predictions, importance moments).
public struct FloatTensors: TensorByteSource {
    public var tensors: [(name: String, shape: [Int], values: [Float])]

    public init(_ tensors: [(name: String, shape: [Int], values: [Float])]) {
        for tensor in tensors { precondition(tensor.shape.reduce(1, *) == tensor.values.count, "\(tensor.name): shape and count differ") }
        self.tensors = tensors
    }

    public func emit(_ index: Int, to out: ByteSink) throws {
        try tensors[index].values.withUnsafeBytes { try out.write($0) }
    }

    /// Writes the tensors to `target` in the format its name says, atomically.
    public func write(to target: OutputTarget, metadata: [String: String] = [:]) throws {
        let outputs = tensors.map { OutputTensor(name: $0.name, dtype: .f32, shape: $0.shape) }
        try CheckpointFile.writer(for: target.path).write(to: target, tensors: outputs, metadata: metadata, source: self)
    }
}
