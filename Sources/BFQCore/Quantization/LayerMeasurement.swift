#if canImport(Glibc)
import Glibc
#endif

/// What quantizing one layer at each candidate choice costs (bits, as spec/bfq.md section 7 counts them) and loses:
/// the distortion the allocator weighs, in weight space (the squared error of the decoded weights, measured) or in
/// output space (the squared change of the noise prediction, rerun or predicted: see `QuantizationOptions.Sensitivity`).
public struct LayerMeasurement: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var choice: LayerChoice
        /// Accounted bits of the whole tensor.
        public var bits: Double
        /// What the allocator weighs: sum of (w - w')^2 over the tensor (importance-weighted when importance weights
        /// were given), w' as decoded; with output sensitivity, the squared change of the noise prediction.
        public var distortion: Double
        /// The importance-weighted sum of (w - w')^2 (equal to `distortion` in weight space).
        public var weightDistortion: Double

        public init(choice: LayerChoice, bits: Double, distortion: Double, weightDistortion: Double? = nil) {
            (self.choice, self.bits, self.distortion) = (choice, bits, distortion)
            self.weightDistortion = weightDistortion ?? distortion
        }
    }

    public var layer: String
    public var parameters: Int
    /// Sum of w^2.
    public var signal: Double
    /// In increasing order of bits.
    public var candidates: [Candidate]

    /// 10 log10(signal / distortion).
    public static func sqnr(signal: Double, distortion: Double) -> Double {
        distortion == 0 ? .infinity : 10 * log10(signal / distortion)
    }

    /// Plan-file fields: the SQNR of every candidate and the chosen one's.
    func json(chosen: LayerChoice) -> [JSONMember] {
        var fields: [JSONMember] = []
        if let picked = candidates.first(where: { $0.choice == chosen }) {
            fields.append(JSONMember("sqnr_db", .double(Self.sqnr(signal: signal, distortion: picked.distortion))))
        }
        fields.append(JSONMember("candidates", .object(candidates.map {
            JSONMember($0.choice.description, .double(Self.sqnr(signal: signal, distortion: $0.distortion)))
        })))
        return fields
    }
}
