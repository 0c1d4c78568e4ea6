/// A tensor's codes packed both ways (spec/bfq.md section 5) and compressed with the code-section zstd setting,
/// keeping the packing whose section is smaller (ties, and level counts where both packings are the same bytes,
/// stay radix).
public struct EncodedCodes: Sendable {
    public let packing: CodePacking
    /// The packed rows: the section's decoded bytes.
    public let packed: [UInt8]
    /// zstd frame of `packed`; empty for no codes.
    public let compressed: [UInt8]

    public init(_ codes: [UInt16], rows: Int, columns: Int, levels: Int) throws {
        var best: (packing: CodePacking, packed: [UInt8], compressed: [UInt8])?
        for packing in [CodePacking.radix, .bytes] {
            let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels, packing: packing)
            if let best, best.packed == packed { continue }
            let compressed = packed.isEmpty ? [] : try packed.withUnsafeBytes { try Zstd.compressCodes($0) }
            if best == nil || Self.storedSize(packed, compressed) < Self.storedSize(best!.packed, best!.compressed) {
                best = (packing, packed, compressed)
            }
        }
        (packing, packed, compressed) = best!
    }

    /// Bytes the section takes in the file: the compressed frame when it is smaller.
    public var storedSize: Int { Self.storedSize(packed, compressed) }

    private static func storedSize(_ bytes: [UInt8], _ compressed: [UInt8]) -> Int {
        compressed.isEmpty ? bytes.count : min(compressed.count, bytes.count)
    }
}
