/// `bfq verify`: every invariant and checksum of a .bfq file, and optionally its tensors against a source checkpoint.
public struct ContainerVerification: Sendable {
    public let path: String
    public let fileSize: Int
    public let tensorCount: Int
    public let sectionCount: Int
    /// Decoded tensors against the source, when one was given (names matched across UNet naming schemes).
    public let comparison: CheckpointComparison?
    /// Parameters of the source, for size ratios.
    public let sourceParameters: Int?
    /// Source tensors the file's time-feature cache replaces (time-embedding MLP, each time_emb_proj): absent by design.
    public let cachedTensors: Int

    /// Opens `path` (invariants 1 to 11), reads every section (invariants 12, 13) and, with `source`, decodes every
    /// tensor and compares it with the source's. Throws the first broken invariant.
    public init(path: String, against source: Checkpoint? = nil) throws {
        let checkpoint = try ContainerTensorDecoder.checkpoint(MappedFile(path: path))
        let decoder = checkpoint.decoder as! ContainerTensorDecoder
        let reader = decoder.reader
        // Sections, then tensors' codes, are checked on all threads; the first failure in file order is reported.
        let sectionFailures = ParallelFailures(reader.sections.count)
        Parallel.forEach(reader.sections.count) { index in
            sectionFailures.record(index) { _ = try reader.withSection(index) { $0.count } }
        }
        try sectionFailures.throwFirst()
        let tensors = checkpoint.tensors
        let codeFailures = ParallelFailures(tensors.count)
        Parallel.forEach(tensors.count) { index in codeFailures.record(index) { try decoder.checkCodes(of: tensors[index]) } }
        try codeFailures.throwFirst()
        self.path = path
        fileSize = checkpoint.fileBytes
        tensorCount = checkpoint.tensors.count
        sectionCount = reader.sections.count
        sourceParameters = source?.parameterCount
        var source = source
        var cached = 0
        if var unet = source, reader.manifest.timeFeatures != nil, let layout = try? QuantizationLayout(unet) {
            let replaced = Set(layout.tensors.filter { $0.role == .time }.map(\.entry.name))
            unet.tensors.removeAll { replaced.contains($0.name) }
            cached = replaced.count
            source = unet
        }
        cachedTensors = cached
        comparison = try source.map { try CheckpointComparison($0, checkpoint, matchingNames: true) }
    }

    /// True when the structure holds and, against a source, both hold the same tensor names and shapes.
    public var passed: Bool {
        guard let comparison else { return true }
        return comparison.onlyInFirst.isEmpty && comparison.onlyInSecond.isEmpty && comparison.pairs.allSatisfy(\.shapeMatches)
    }

    public func text(sourcePath: String?) -> String {
        var lines = ["\(Formatting.printable(path)): \(tensorCount) tensors, \(sectionCount) sections: structure, every invariant "
            + "and every checksum hold"]
        if let comparison, let sourcePath, let sourceParameters {
            lines.append(comparison.text(firstPath: sourcePath, secondPath: path))
            if cachedTensors > 0 {
                lines.append("\(cachedTensors) source tensors (time embedding, time_emb_proj) are replaced by the time-feature cache")
            }
            let ratio = { (bytes: Int) in Formatting.fixed(Double(bytes * sourceParameters) / Double(max(self.fileSize, 1)), digits: 2) }
            lines.append("size: \(Formatting.grouped(fileSize)) bytes; the source's tensors take \(ratio(2)) times that at fp16, "
                + "\(ratio(4)) times at fp32")
        }
        return lines.joined(separator: "\n")
    }
}
