#if canImport(Glibc)
import Glibc
#endif

/// A reproducible random source (SplitMix64): the same seed gives the same numbers on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` standard normal values (Box-Muller on 53-bit uniforms, computed in f64, rounded to f32).
    public mutating func gaussians(_ count: Int) -> [Float] {
        var values = [Float]()
        values.reserveCapacity(count + 1)
        while values.count < count {
            let u1 = Double(next() >> 11 + 1) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53
            let radius = (-2 * log(u1)).squareRoot()
            values.append(Float(radius * cos(2 * Double.pi * u2)))
            values.append(Float(radius * sin(2 * Double.pi * u2)))
        }
        return Array(values.prefix(count))
    }
}
