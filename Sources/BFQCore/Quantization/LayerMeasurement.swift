#if canImport(Glibc)
import Glibc
#endif

/// What quantizing one layer at each candidate choice costs (bits, as spec/bfq.md section 7 counts them) and loses
/// (squared error of the decoded weights), measured, not modelled.
public struct LayerMeasurement: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var choice: LayerChoice
        /// Accounted bits of the whole tensor.
        public var bits: Double
        /// Sum of (w - w')^2 over the tensor, w' as decoded.
        public var distortion: Double
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
