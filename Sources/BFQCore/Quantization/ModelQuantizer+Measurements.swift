#if canImport(Glibc)
import Glibc
#endif

extension ModelQuantizer {
    /// One budget of the predicted rate-distortion curve.
    public struct CurvePoint: Sendable {
        /// The requested average bits.
        public let target: Double
        /// What the allocation reaches (spec/bfq.md section 7).
        public let averageBits: Double
        /// Sum of the chosen candidates' distortions.
        public let distortion: Double
        /// 10 log10(signal / distortion): the predicted noise-prediction SQNR on the calibration set in output space,
        /// the weights' SQNR in weight space.
        public let sqnr: Double
    }

    /// The measurements `makePlan` made, as a file for `--measurements` (hashes the input file).
    public func measurementsFile() throws -> MeasurementsFile {
        guard let measurements else { preconditionFailure("makePlan measures first") }
        let shapes = Dictionary(uniqueKeysWithValues: planned.map { ($0.layer!, $0.entry.shape) })
        let kind = measuredSensitivity
        return MeasurementsFile(sourceSHA256: SourceDigest.sha256(of: checkpoint.files), sourceBytes: checkpoint.fileBytes,
                                naming: layout.scheme, sensitivity: kind, calibration: kind.isOutput ? options.calibration : nil,
                                candidates: options.candidates, signal: outputSignal, shapes: shapes, layers: measurements,
                                importance: importance)
    }

    /// The measurements of `file` for this UNet's planned layers, in their order; refused, naming what differs,
    /// when the file was measured on another naming, another file, another candidate set or other layers.
    func check(_ file: MeasurementsFile) throws -> [LayerMeasurement] {
        let path = options.measurements ?? "measurements"
        func mismatch(_ reason: String) -> QuantizationError { .measurementsMismatch(path: path, reason: reason) }
        guard file.naming == layout.scheme else {
            throw mismatch("measured on \(file.naming.rawValue) names, \(checkpoint.path) has \(layout.scheme.rawValue) names")
        }
        let digest = SourceDigest.sha256(of: checkpoint.files)
        guard digest == file.sourceSHA256, checkpoint.fileBytes == file.sourceBytes else {
            throw mismatch("measured on another model (SHA-256 \(file.sourceSHA256.prefix(16))..., \(file.sourceBytes) bytes), "
                + "\(checkpoint.path) is \(digest.prefix(16))..., \(checkpoint.fileBytes) bytes")
        }
        let requested = Set(options.candidates), measured = Set(file.candidates)
        guard requested == measured else {
            let missing = options.candidates.filter { !measured.contains($0) }.map(\.description)
            let extra = file.candidates.filter { !requested.contains($0) }.map(\.description)
            throw mismatch("another candidate set: " + [missing.isEmpty ? nil : "asked for \(missing.joined(separator: ", ")), not measured",
                                                        extra.isEmpty ? nil : "measured \(extra.joined(separator: ", ")), not asked for"]
                .compactMap { $0 }.joined(separator: "; ") + " (repeat the measuring run's --no-palettes and --group-candidates)")
        }
        let layers = Dictionary(uniqueKeysWithValues: file.layers.map { ($0.layer, $0) })
        return try planned.map { tensor in
            let name = tensor.layer!
            guard let layer = layers[name] else {
                let hint = tensor.role == .time ? " (measured with --cache-timesteps; pass it here too)" : ""
                throw mismatch("layer \(name) was not measured\(hint)")
            }
            guard file.shapes[name] == tensor.entry.shape else {
                throw mismatch("layer \(name) was measured as \(file.shapes[name] ?? []), the model's is \(tensor.entry.shape)")
            }
            return layer
        }
    }

    /// The predicted rate-distortion curve: for each target average, the allocation `makePlan`'s allocator makes from
    /// the measurements and the SQNR its summed distortions predict. Targets below the smallest plan are left out.
    public func curve(_ targets: [Double]) throws -> [CurvePoint] {
        guard let measurements else { preconditionFailure("makePlan measures first") }
        let weights = Double(layout.weightCount)
        let minimum = BitAllocator.minimumCost(measurements)
        let signal = outputSignal ?? measurements.reduce(0) { $0 + $1.signal }
        return try targets.compactMap { target in
            let budget = target * weights - fixedBits
            guard budget >= minimum else { return nil }
            let picks = try options.allocator.allocate(measurements, budget: budget, eta: eta)
            let chosen = zip(measurements, picks).map { $0.candidates[$1] }
            let distortion = chosen.reduce(0) { $0 + $1.distortion }
            let bits = chosen.reduce(fixedBits) { $0 + $1.bits }
            return CurvePoint(target: target, averageBits: bits / weights, distortion: distortion,
                              sqnr: LayerMeasurement.sqnr(signal: signal, distortion: distortion))
        }
    }
}
