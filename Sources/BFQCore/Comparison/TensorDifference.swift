#if canImport(Glibc)
import Glibc
#endif

/// How far a candidate tensor is from a reference tensor of the same shape.
public struct TensorDifference: Sendable, Equatable {
    /// Largest |reference - candidate| over all elements (NaN when one side has a NaN where the other has a number).
    public var maxAbsError: Double
    /// Signal-to-quantisation-noise ratio, 10·log10(Σref² / Σ(ref - cand)²), in dB; +inf when identical.
    public var sqnrDB: Double
    /// Σref² and Σ(ref - cand)², for totals over several tensors.
    public var signalEnergy: Double
    public var noiseEnergy: Double

    static let blockSize = 65_536

    /// Compares `count` elements of two buffers, each of its own type, in double precision.
    public init(reference: UnsafeRawBufferPointer, _ referenceType: DType,
                candidate: UnsafeRawBufferPointer, _ candidateType: DType) {
        let count = reference.count / referenceType.byteSize
        precondition(candidate.count / candidateType.byteSize == count)
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        let partials = UnsafeMutableBufferPointer<(Double, Double, Double)>.allocate(capacity: Swift.max(blocks, 1))
        defer { partials.deallocate() }
        Parallel.forEach(blocks) { block in
            let start = block * Self.blockSize
            let n = Swift.min(Self.blockSize, count - start)
            partials[block] = withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * n) { scratch in
                let a = scratch.baseAddress!, b = a + n
                ElementDecoder.decode(reference.baseAddress! + start * referenceType.byteSize, dtype: referenceType, count: n, into: a)
                ElementDecoder.decode(candidate.baseAddress! + start * candidateType.byteSize, dtype: candidateType, count: n, into: b)
                var (maxError, signal, noise, sawNaN) = (0.0, 0.0, 0.0, false)
                for i in 0 ..< n {
                    signal += a[i] * a[i]
                    // Equal infinities (whose difference would be NaN) and NaN against NaN count as equal.
                    if a[i] == b[i] || (a[i].isNaN && b[i].isNaN) { continue }
                    let error = a[i] - b[i]
                    if error.isNaN { sawNaN = true }
                    maxError = Swift.max(maxError, Swift.abs(error))
                    noise += error * error
                }
                return (sawNaN ? .nan : maxError, signal, noise)
            }
        }
        var (maxError, signal, noise) = (0.0, 0.0, 0.0)
        for block in 0 ..< blocks {
            let (m, s, e) = partials[block]
            maxError = (maxError.isNaN || m.isNaN) ? .nan : Swift.max(maxError, m)
            signal += s
            noise += e
        }
        maxAbsError = maxError
        signalEnergy = signal
        noiseEnergy = noise
        sqnrDB = TensorDifference.sqnr(signal: signal, noise: noise)
    }

    /// 10·log10(signal / noise) with the conventions: identical → +inf, zero signal with noise → -inf.
    public static func sqnr(signal: Double, noise: Double) -> Double {
        if noise == 0 { return .infinity }
        if signal == 0 { return -.infinity }
        return 10 * log10(signal / noise)
    }
}
