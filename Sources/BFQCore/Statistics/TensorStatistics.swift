/// Summary statistics of one tensor, computed in one streaming pass in double precision.
/// Moments, min, max and absmax cover the finite values; NaNs and infinities are only counted.
public struct TensorStatistics: Sendable, Equatable {
    public var count: Int
    public var min: Double
    public var max: Double
    public var mean: Double
    /// Population standard deviation (ddof 0).
    public var std: Double
    public var absmax: Double
    /// Fraction of all elements that are exactly zero.
    public var zeroFraction: Double
    public var nanCount: Int
    public var infCount: Int
    /// Population skewness (scipy.stats.skew default).
    public var skewness: Double
    /// Excess kurtosis (scipy.stats.kurtosis default: Fisher, biased).
    public var kurtosis: Double

    /// Elements per block; blocks are fixed by position, so results do not depend on the thread count.
    static let blockSize = 65_536

    /// Computes the statistics of `count` elements of type `dtype` at `bytes`, spreading blocks over threads.
    public init(bytes: UnsafeRawBufferPointer, dtype: DType) {
        let count = bytes.count / dtype.byteSize
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        let partials = UnsafeMutableBufferPointer<BlockSummary>.allocate(capacity: Swift.max(blocks, 1))
        defer { partials.deallocate() }
        let base = bytes.baseAddress
        Parallel.forEach(blocks) { block in
            let start = block * Self.blockSize
            let n = Swift.min(Self.blockSize, count - start)
            partials[block] = BlockSummary(base! + start * dtype.byteSize, dtype: dtype, count: n)
        }
        var total = BlockSummary()
        for block in 0 ..< blocks { total.merge(partials[block]) }
        self.count = count
        min = total.finite > 0 ? total.min : .nan
        max = total.finite > 0 ? total.max : .nan
        mean = total.moments.count > 0 ? total.moments.mean : .nan
        std = total.moments.standardDeviation
        absmax = total.finite > 0 ? Swift.max(-total.min, total.max) : .nan
        zeroFraction = count > 0 ? Double(total.zeros) / Double(count) : .nan
        nanCount = total.nans
        infCount = total.infs
        skewness = total.moments.skewness
        kurtosis = total.moments.kurtosis
    }
}

/// Statistics of one block of elements, mergeable in block order.
struct BlockSummary {
    var moments = Moments()
    var min = Double.infinity
    var max = -Double.infinity
    var finite = 0
    var zeros = 0
    var nans = 0
    var infs = 0

    init() {}

    init(_ start: UnsafeRawPointer, dtype: DType, count: Int) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { values in
            ElementDecoder.decode(start, dtype: dtype, count: count, into: values.baseAddress!)
            var kept = 0
            for value in values {
                if value.isNaN {
                    nans += 1
                } else if value.isInfinite {
                    infs += 1
                } else {
                    if value == 0 { zeros += 1 }
                    if value < min { min = value }
                    if value > max { max = value }
                    values[kept] = value
                    kept += 1
                }
            }
            finite = kept
            moments = Moments(UnsafeBufferPointer(rebasing: values[..<kept]))
        }
    }

    mutating func merge(_ other: BlockSummary) {
        moments.merge(other.moments)
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        finite += other.finite
        zeros += other.zeros
        nans += other.nans
        infs += other.infs
    }
}
