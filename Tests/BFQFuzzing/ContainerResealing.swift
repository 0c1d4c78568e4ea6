import CBFQShims

/// Recomputes a .bfq's header, table and manifest CRC-32s after an edit, so an edited (or fuzzed) file reaches the
/// invariants behind the checksums. Fields outside the bytes present are left alone.
public enum ContainerResealing {
    /// Reads the little-endian integer of `T`'s width at `offset`.
    public static func field<T: FixedWidthInteger>(_: T.Type, in bytes: [UInt8], at offset: Int) -> T {
        bytes[offset ..< offset + MemoryLayout<T>.size].reversed().reduce(0) { $0 << 8 | T($1) }
    }

    /// Writes `value` little-endian at `offset`.
    public static func set<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset ..< offset + $0.count, with: $0) }
    }

    /// Recomputes the table, manifest and header CRCs (spec/bfq.md section 2); shorter than a header: unchanged.
    public static func reseal(_ bytes: inout [UInt8]) {
        guard bytes.count >= 68 else { return }
        let table = field(UInt64.self, in: bytes, at: 16), manifest = field(UInt64.self, in: bytes, at: 32)
        let size = field(UInt64.self, in: bytes, at: 40), count = UInt64(bytes.count)
        if table <= manifest, manifest <= count {
            set(bfq_crc32(0, Array(bytes[Int(table) ..< Int(manifest)]), Int(manifest - table)), in: &bytes, at: 56)
        }
        if manifest <= count, size <= count - manifest {
            set(bfq_crc32(0, Array(bytes[Int(manifest) ..< Int(manifest + size)]), Int(size)), in: &bytes, at: 60)
        }
        set(bfq_crc32(0, bytes, 64), in: &bytes, at: 64)
    }
}
