import CBFQShims

/// Packs codes into rows of bytes and unpacks them again, as spec/bfq.md section 5 lays them out.
public enum CodePacker {
    /// Packs `rows` x `columns` codes (row-major, each below `levels`) into `rows` x `rowBytes` bytes.
    public static func pack(_ codes: [UInt8], rows: Int, columns: Int, levels: Int,
                            packing: CodePacking = .radix) throws -> [UInt8] {
        try packRows(codes, rows: rows, columns: columns, layout: try CodeLayout(levels: levels, packing: packing))
    }

    /// Packs 16-bit codes: the 257 levels of the balanced 8-bit grid do not fit a byte.
    public static func pack(_ codes: [UInt16], rows: Int, columns: Int, levels: Int,
                            packing: CodePacking = .radix) throws -> [UInt8] {
        try packRows(codes, rows: rows, columns: columns, layout: try CodeLayout(levels: levels, packing: packing))
    }

    /// Unpacks `rows` x `columns` codes of `levels` levels from `packed`, refusing a size that does not match, a
    /// group value at or above L^G and nonzero padding.
    public static func unpack(_ packed: UnsafeRawBufferPointer, rows: Int, columns: Int, levels: Int,
                              packing: CodePacking = .radix) throws -> [UInt16] {
        let layout = try CodeLayout(levels: levels, packing: packing)
        let count = try CodeLayout.elementCount(rows: rows, columns: columns)
        let rowBytes = try layout.rowBytes(columns: columns)
        let expected = try layout.byteCount(rows: rows, columns: columns)
        guard packed.count == expected else { throw PackingError.packedSizeMismatch(expected: expected, found: packed.count) }
        let tables = CodeTables(layout)
        var failed = -1
        let codes = [UInt16](unsafeUninitializedCapacity: count) { codes, initialized in
            if count > 0 {
                failed = bfq_unpack_rows(tables.pointer, packed.baseAddress!.assumingMemoryBound(to: UInt8.self), rowBytes,
                                         columns, 0, rows, codes.baseAddress!)
            }
            initialized = count
        }
        if failed >= 0 { throw tables.rowError(failed, in: packed, rowBytes: rowBytes, columns: columns) }
        return codes
    }

    private static func packRows<Code: FixedWidthInteger & UnsignedInteger>(_ codes: [Code], rows: Int, columns: Int,
                                                                           layout: CodeLayout) throws -> [UInt8] {
        let count = try CodeLayout.elementCount(rows: rows, columns: columns)
        guard codes.count == count else { throw PackingError.codeCountMismatch(expected: count, found: codes.count) }
        let rowBytes = try layout.rowBytes(columns: columns)
        var packed = [UInt8](repeating: 0, count: try layout.byteCount(rows: rows, columns: columns))
        try codes.withUnsafeBufferPointer { codes in
            try packed.withUnsafeMutableBufferPointer { packed in
                for row in 0 ..< rows {
                    try packRow(codes.baseAddress! + row * columns, into: packed.baseAddress! + row * rowBytes,
                                row: row, columns: columns, layout: layout)
                }
            }
        }
        return packed
    }

    /// Packs one row: groups of G codes as V = c0 + c1 L + ... (the last group padded with code 0), each written as a
    /// W-bit field, least significant bit first.
    private static func packRow<Code: FixedWidthInteger & UnsignedInteger>(
        _ codes: UnsafePointer<Code>, into bytes: UnsafeMutablePointer<UInt8>, row: Int, columns: Int, layout: CodeLayout
    ) throws {
        let levels = UInt64(layout.levels), g = layout.codesPerGroup, w = layout.bitsPerGroup
        var pending: UInt64 = 0, pendingBits = 0, out = 0, i = 0
        while i < columns {
            let end = Swift.min(i + g, columns)
            var value: UInt64 = 0
            var k = end
            while k > i {
                k -= 1
                let code = codes[k]
                guard UInt64(code) < levels else {
                    let first = (i ..< end).first { UInt64(codes[$0]) >= levels }!
                    throw PackingError.codeOutOfRange(row: row, column: first, code: Int(codes[first]), levels: layout.levels)
                }
                value = value &* levels &+ UInt64(code)
            }
            pending |= value << UInt64(pendingBits)
            pendingBits += w
            while pendingBits >= 8 {
                bytes[out] = UInt8(truncatingIfNeeded: pending)
                pending >>= 8
                pendingBits -= 8
                out += 1
            }
            i = end
        }
        if pendingBits > 0 { bytes[out] = UInt8(truncatingIfNeeded: pending) }
    }
}
