/// Count, mean and central moment sums (M2, M3, M4) of a set of values, mergeable exactly in any grouping
/// (Pébay's pairwise update formulas), accumulated in double precision.
struct Moments: Equatable {
    var count: Double = 0
    var mean: Double = 0
    var m2: Double = 0
    var m3: Double = 0
    var m4: Double = 0

    /// Moments of a block of values: mean first, then central sums, over data already in cache.
    init(_ values: UnsafeBufferPointer<Double>) {
        guard !values.isEmpty else { return }
        var sum = 0.0
        for value in values { sum += value }
        let mean = sum / Double(values.count)
        var (s2, s3, s4) = (0.0, 0.0, 0.0)
        for value in values {
            let d = value - mean
            let d2 = d * d
            s2 += d2
            s3 += d2 * d
            s4 += d2 * d2
        }
        self.count = Double(values.count)
        self.mean = mean
        (m2, m3, m4) = (s2, s3, s4)
    }

    init() {}

    /// Combines two disjoint sets.
    mutating func merge(_ other: Moments) {
        guard other.count > 0 else { return }
        guard count > 0 else {
            self = other
            return
        }
        let (na, nb) = (count, other.count)
        let n = na + nb
        let delta = other.mean - mean
        let d2 = delta * delta
        let newM4 = m4 + other.m4 + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6 * d2 * (na * na * other.m2 + nb * nb * m2) / (n * n) + 4 * delta * (na * other.m3 - nb * m3) / n
        let newM3 = m3 + other.m3 + d2 * delta * na * nb * (na - nb) / (n * n) + 3 * delta * (na * other.m2 - nb * m2) / n
        let newM2 = m2 + other.m2 + d2 * na * nb / n
        mean += delta * nb / n
        (m2, m3, m4) = (newM2, newM3, newM4)
        count = n
    }

    /// Population standard deviation (divides by n, as numpy's default).
    var standardDeviation: Double { count > 0 ? (m2 / count).squareRoot() : .nan }

    /// Population skewness g1 = m3 / m2^1.5 (scipy.stats.skew's default); NaN when all values are equal.
    var skewness: Double {
        guard count > 0, m2 > 0 else { return .nan }
        let variance = m2 / count
        return (m3 / count) / (variance * variance.squareRoot())
    }

    /// Excess kurtosis g2 = m4 / m2^2 - 3 (scipy.stats.kurtosis's default); NaN when all values are equal.
    var kurtosis: Double {
        guard count > 0, m2 > 0 else { return .nan }
        let variance = m2 / count
        return (m4 / count) / (variance * variance) - 3
    }
}
