#if canImport(Glibc)
import Glibc
#endif

/// How far a candidate's noise predictions are from a reference's over a set of predictions.
public struct NoiseError: Equatable, Sendable {
    /// Mean squared difference per element.
    public var mse: Double
    /// 10 log10(sum ref^2 / sum (ref - cand)^2); nil when the difference is exactly zero (infinite).
    public var sqnrDB: Double?
    /// Cosine similarity of the flattened predictions.
    public var cosine: Double
    /// BitsFusion's latent-space error: the mean over predictions of (1 - abar_t) / abar_t x ||eps_ref - eps_cand||^2.
    public var latentError: Double

    public var json: JSONValue {
        .object([JSONMember("mse", .double(mse)),
                 JSONMember("sqnr_db", sqnrDB.map { .double($0) } ?? .null),
                 JSONMember("cosine", .double(cosine)),
                 JSONMember("latent_error", .double(latentError))])
    }
}

/// Sums over predictions, in f64, from which a `NoiseError` follows; add predictions in a fixed order for
/// reproducible figures.
public struct NoiseErrorSums: Sendable {
    private var referenceSquares = 0.0, candidateSquares = 0.0, differenceSquares = 0.0, dot = 0.0
    private var elements = 0, predictions = 0
    private var latent = 0.0

    public init() {}

    /// Adds one prediction of the reference and the candidate at a timestep whose abar_t is `alphaBar`.
    public mutating func add(reference: ArraySlice<Float>, candidate: ArraySlice<Float>, alphaBar: Double) {
        var difference = 0.0
        for (r, c) in zip(reference, candidate) {
            let (r, c) = (Double(r), Double(c))
            referenceSquares += r * r
            candidateSquares += c * c
            dot += r * c
            difference += (r - c) * (r - c)
        }
        differenceSquares += difference
        latent += (1 - alphaBar) / alphaBar * difference
        elements += reference.count
        predictions += 1
    }

    /// Combines two sets of sums.
    public mutating func add(_ other: NoiseErrorSums) {
        referenceSquares += other.referenceSquares
        candidateSquares += other.candidateSquares
        differenceSquares += other.differenceSquares
        dot += other.dot
        elements += other.elements
        predictions += other.predictions
        latent += other.latent
    }

    public var error: NoiseError {
        let norms = (referenceSquares * candidateSquares).squareRoot()
        return NoiseError(mse: differenceSquares / Double(max(elements, 1)),
                          sqnrDB: differenceSquares == 0 ? nil : 10 * log10(referenceSquares / differenceSquares),
                          cosine: norms == 0 ? (differenceSquares == 0 ? 1 : 0) : dot / norms,
                          latentError: latent / Double(max(predictions, 1)))
    }
}
