/// How one row of codes is packed (spec/bfq.md section 5): groups of `codesPerGroup` codes G, each group's value
/// V = c0 + c1 L + ... stored in a `bitsPerGroup`-bit field W, least significant bit first; every row starts on a
/// byte boundary. Radix packing picks the densest (G, W) (plain bit packing when L is a power of two); byte packing
/// keeps W = 8, or 16 for L = 257.
public struct CodeLayout: Equatable, Sendable {
    /// The level counts a layout exists for.
    public static let levelRange = 2 ... 257

    /// L: codes are 0 ..< levels.
    public let levels: Int
    /// G: codes per group, 1 for plain packing.
    public let codesPerGroup: Int
    /// W: bits per group (per code for plain packing).
    public let bitsPerGroup: Int
    public let packing: CodePacking

    /// The layout for `levels` L. Radix packing: among G = 1...8 with W = ceil(log2(L^G)) <= 16, the smallest W / G,
    /// ties to the smaller G, in exact integer arithmetic. Byte packing: the largest G with L^G <= 256 and W = 8, or
    /// (1, 16) for L = 257.
    public init(levels: Int, packing: CodePacking = .radix) throws {
        guard Self.levelRange.contains(levels) else { throw PackingError.levelsOutOfRange(levels) }
        self.levels = levels
        self.packing = packing
        if packing == .bytes {
            var codes = 1
            while codes < 8, (0 ... codes).reduce(1, { product, _ in product * levels }) <= 256 { codes += 1 }
            (codesPerGroup, bitsPerGroup) = levels > 256 ? (1, 16) : (codes, 8)
            return
        }
        if levels & (levels - 1) == 0 {
            (codesPerGroup, bitsPerGroup) = (1, levels.trailingZeroBitCount)
            return
        }
        var best = (codes: 1, bits: Self.bitsToHold(levels))
        var power = levels
        for codes in 2 ... 8 {
            power *= levels // stays below 2^25: the loop stops once W passes 16
            let bits = Self.bitsToHold(power)
            if bits > 16 { break }
            if bits * best.codes < best.bits * codes { best = (codes, bits) }
        }
        (codesPerGroup, bitsPerGroup) = best
    }

    /// L^G: group values at or above it are invalid (for plain packing, every field value is valid).
    public var groupLimit: Int {
        (0 ..< codesPerGroup).reduce(1) { product, _ in product * levels }
    }

    /// Bytes one row of `columns` codes occupies.
    public func rowBytes(columns: Int) throws -> Int {
        try byteCount(rows: 1, columns: columns)
    }

    /// Bytes `rows` packed rows of `columns` codes occupy, or `shapeInvalid` when negative or too large.
    public func byteCount(rows: Int, columns: Int) throws -> Int {
        guard rows >= 0, columns >= 0 else { throw PackingError.shapeInvalid(rows: rows, columns: columns) }
        let groups = columns / codesPerGroup + (columns % codesPerGroup == 0 ? 0 : 1)
        let (bits, overflow) = groups.multipliedReportingOverflow(by: bitsPerGroup)
        let (total, overflow2) = (bits / 8 + (bits % 8 == 0 ? 0 : 1)).multipliedReportingOverflow(by: rows)
        guard !overflow, !overflow2 else { throw PackingError.shapeInvalid(rows: rows, columns: columns) }
        return total
    }

    /// Values `rows` x `columns` codes make, or `shapeInvalid` when negative or too large.
    static func elementCount(rows: Int, columns: Int) throws -> Int {
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard rows >= 0, columns >= 0, !overflow else { throw PackingError.shapeInvalid(rows: rows, columns: columns) }
        return count
    }

    /// Bits to hold the values 0 ..< count: the bit width of count - 1.
    private static func bitsToHold(_ count: Int) -> Int { Int.bitWidth - (count - 1).leadingZeroBitCount }
}
