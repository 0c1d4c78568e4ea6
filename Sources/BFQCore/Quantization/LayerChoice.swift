#if canImport(Glibc)
import Glibc
#endif

/// How one conv or linear weight is stored: on a balanced grid of 2^b + 1 levels (one scale per row, or per group of
/// columns), as per-row lookup tables of 2^b + 1 entries, or raw in 16 bits.
public struct LayerChoice: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// Balanced uniform grid, f16 scales (BitsFusion Eq. 1).
        case grid
        /// Per-row f16 lookup tables (1-D k-means).
        case palette
        /// f16 values, unquantized.
        case raw
    }

    public var kind: Kind
    /// b: the tensor stores 2^b + 1 levels (grid, palette); 16 for raw.
    public var bits: Int
    /// Columns per scale for a grid with group scales; nil for one scale per row.
    public var groupSize: Int?

    public init(kind: Kind, bits: Int, groupSize: Int? = nil) {
        (self.kind, self.bits, self.groupSize) = (kind, bits, groupSize)
    }

    public static func grid(_ bits: Int, groupSize: Int? = nil) -> LayerChoice { LayerChoice(kind: .grid, bits: bits, groupSize: groupSize) }
    public static func palette(_ bits: Int) -> LayerChoice { LayerChoice(kind: .palette, bits: bits) }
    public static let raw16 = LayerChoice(kind: .raw, bits: 16)

    /// 2^b + 1 for grids and palettes.
    public var levels: Int { (1 << bits) + 1 }

    /// Bits the choice counts for in spec/bfq.md section 7 for a `rows` x `columns` tensor: log2(levels) per weight,
    /// plus 16 bits for each f16 value of side information beyond one per row (extra group scales, palette entries).
    public func accountedBits(rows: Int, columns: Int) -> Double {
        let elements = Double(rows * columns)
        switch kind {
        case .raw: return 16 * elements
        case .grid:
            let groups = groupSize.map { (columns + $0 - 1) / $0 } ?? 1
            return log2(Double(levels)) * elements + 16 * Double(rows * (groups - 1))
        case .palette:
            return log2(Double(levels)) * elements + 16 * Double(rows * (levels - 1))
        }
    }

    /// The choice `description` names ("2-bit grid", "2-bit grid/64", "2-bit palette", "f16"), if valid.
    public init?(description text: String) {
        if text == "f16" {
            self = .raw16
            return
        }
        let parts = text.split(separator: " ")
        guard parts.count == 2, parts[0].hasSuffix("-bit"), let bits = Int(parts[0].dropLast(4)), (1 ... 8).contains(bits) else { return nil }
        if parts[1] == "palette" {
            self = .palette(bits)
        } else if parts[1] == "grid" {
            self = .grid(bits)
        } else if parts[1].hasPrefix("grid/"), let size = Int(parts[1].dropFirst(5)), QuantizedValues.groupSizes.contains(size) {
            self = .grid(bits, groupSize: size)
        } else {
            return nil
        }
    }

    /// "2-bit grid", "2-bit grid/64", "2-bit palette", "f16".
    public var description: String {
        switch kind {
        case .raw: return "f16"
        case .grid: return "\(bits)-bit grid" + (groupSize.map { "/\($0)" } ?? "")
        case .palette: return "\(bits)-bit palette"
        }
    }
}
