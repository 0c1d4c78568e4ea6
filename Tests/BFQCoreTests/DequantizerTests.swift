import XCTest
@testable import BFQCore

/// The lookup-table dequantizer against a naive reference (s * q + o in f32, palette lookups, Float16 rounding),
/// bit for bit, on the AVX2 and the scalar kernels, on one thread and on several.
final class DequantizerTests: XCTestCase {
    private static let gridLevels = [2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257]

    /// The reference: element by element from the codes, as spec/bfq.md section 3.2 says.
    private func reference(_ codes: [UInt16], rows: Int, columns: Int, levels: Int, _ values: QuantizedValues) -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        for row in 0 ..< rows {
            for i in 0 ..< columns {
                let c = Int(codes[row * columns + i])
                switch values {
                case let .grid(scales, groupSize, offsets):
                    let q = Float(c - levels / 2)
                    let s = groupSize.map { scales[row * ((columns + $0 - 1) / $0) + i / $0] } ?? scales[row]
                    let product = s * q
                    out[row * columns + i] = product + (offsets?[row] ?? 0)
                case let .palette(table, perRow):
                    out[row * columns + i] = table[(perRow ? row * levels : 0) + c]
                }
            }
        }
        return out
    }

    /// Decodes with both kernels, on the caller's thread and on Parallel's (BFQ_THREADS, else every core), checks the
    /// results agree bit for bit, and returns the f32 and f16 bit patterns.
    private func decodeAllWays(_ packed: [UInt8], rows: Int, columns: Int, levels: Int, _ values: QuantizedValues,
                               packing: CodePacking, file: StaticString = #filePath,
                               line: UInt = #line) throws -> (f32: [UInt32], f16: [UInt16]) {
        var results: [(f32: [UInt32], f16: [UInt16])] = []
        for (vectorized, parallel) in [(true, false), (false, false), (true, true), (false, true)] {
            var dequantizer = try Dequantizer(rows: rows, columns: columns, levels: levels, values: values, packing: packing)
            dequantizer.vectorized = vectorized
            dequantizer.parallel = parallel
            var f32 = [Float](repeating: .nan, count: rows * columns)
            var f16 = [UInt16](repeating: 0xFFFF, count: rows * columns)
            try packed.withUnsafeBytes { packed in
                try f32.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f32) }
                try f16.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f16) }
            }
            results.append((f32.map(\.bitPattern), f16))
        }
        for other in results.dropFirst() {
            XCTAssertTrue(other.f32 == results[0].f32 && other.f16 == results[0].f16, "kernels disagree", file: file, line: line)
        }
        return results[0]
    }

    /// Packs random codes each way, decodes them every way and compares with the reference.
    private func check(levels: Int, rows: Int, columns: Int, _ makeValues: (inout SeededGenerator) -> QuantizedValues,
                       seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        var random = SeededGenerator(seed: seed)
        let codes = (0 ..< rows * columns).map { _ in UInt16.random(in: 0 ..< UInt16(levels), using: &random) }
        let values = makeValues(&random)
        let expected = reference(codes, rows: rows, columns: columns, levels: levels, values)
        for packing in CodePacking.allCases {
            let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels, packing: packing)
            let decoded = try decodeAllWays(packed, rows: rows, columns: columns, levels: levels, values, packing: packing,
                                            file: file, line: line)
            let context = "L = \(levels), \(rows) x \(columns), \(values.kind), \(packing)"
            XCTAssertEqual(decoded.f32, expected.map(\.bitPattern), context, file: file, line: line)
            XCTAssertEqual(decoded.f16, expected.map { Float16($0).bitPattern }, context, file: file, line: line)
        }
    }

    /// Scales over a wide range of magnitudes and both signs, with zeros: f16 results overflow, go subnormal, and
    /// the -0 of a zero scale meets the offset.
    private static func scales(_ count: Int, _ random: inout SeededGenerator) -> [Float] {
        (0 ..< count).map { _ in
            if Int.random(in: 0 ..< 8, using: &random) == 0 { return 0 }
            let magnitude = Float(sign: .plus, exponent: Int.random(in: -30 ... 12, using: &random),
                                  significand: Float.random(in: 1 ..< 2, using: &random))
            return Bool.random(using: &random) ? magnitude : -magnitude
        }
    }

    private static func palette(_ count: Int, _ random: inout SeededGenerator) -> [Float] {
        (0 ..< count).map { _ in
            let sign: UInt16 = Bool.random(using: &random) ? 0x8000 : 0
            return Float(Float16(bitPattern: UInt16.random(in: 0 ... 0x7BFF, using: &random) | sign))
        }
    }

    func testGridPerRowScales() throws {
        for (index, levels) in Self.gridLevels.enumerated() {
            for columns in [1, 7, 45, 2053] {
                try check(levels: levels, rows: 5, columns: columns, { .grid(scales: Self.scales(5, &$0)) }, seed: UInt64(index))
                try check(levels: levels, rows: 5, columns: columns,
                          { .grid(scales: Self.scales(5, &$0), offsets: Self.scales(5, &$0)) }, seed: UInt64(index))
            }
        }
    }

    func testGridPerGroupScales() throws {
        for (index, levels) in Self.gridLevels.enumerated() {
            for (columns, groupSize) in [(1, 32), (45, 32), (2053, 33), (2053, 256), (4100, 128)] {
                let groups = (columns + groupSize - 1) / groupSize
                try check(levels: levels, rows: 3, columns: columns,
                          { .grid(scales: Self.scales(3 * groups, &$0), groupSize: groupSize) }, seed: UInt64(index))
                try check(levels: levels, rows: 3, columns: columns,
                          { .grid(scales: Self.scales(3 * groups, &$0), groupSize: groupSize, offsets: Self.scales(3, &$0)) },
                          seed: UInt64(index))
            }
        }
    }

    func testPalettePerRowAndPerTensor() throws {
        for levels in CodeLayout.levelRange {
            for columns in [1, 13, 300] {
                try check(levels: levels, rows: 3, columns: columns, { .palette(Self.palette(3 * levels, &$0), perRow: true) },
                          seed: UInt64(levels))
                try check(levels: levels, rows: 3, columns: columns, { .palette(Self.palette(levels, &$0), perRow: false) },
                          seed: UInt64(levels))
            }
        }
    }

    /// Enough rows for several tasks, so two threads really split the work.
    func testManyRowsOnSeveralTasks() throws {
        let rows = 3 * Dequantizer.codesPerTask / 1000 + 7
        try check(levels: 3, rows: rows, columns: 1000, { .grid(scales: Self.scales(rows, &$0)) }, seed: 42)
        try check(levels: 9, rows: rows, columns: 1000,
                  { .grid(scales: Self.scales(rows * 8, &$0), groupSize: 128, offsets: Self.scales(rows, &$0)) }, seed: 43)
    }

    func testCorruptGroupReportedFromEveryKernel() throws {
        var packed = try CodePacker.pack([UInt8](repeating: 1, count: 4 * 50), rows: 4, columns: 50, levels: 3)
        packed[2 * 10 + 7] = 250 // row 2, group 7
        for vectorized in [true, false] {
            var dequantizer = try Dequantizer(rows: 4, columns: 50, levels: 3, values: .grid(scales: [1, 1, 1, 1]))
            dequantizer.vectorized = vectorized
            var out = [Float](repeating: 0, count: 200)
            XCTAssertThrowsError(try packed.withUnsafeBytes { packed in
                try out.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f32) }
            }) { XCTAssertEqual($0 as? PackingError, .invalidGroup(row: 2, group: 7, value: 250, limit: 243)) }
        }
        var plain = try CodePacker.pack([UInt8](repeating: 1, count: 3), rows: 1, columns: 3, levels: 16)
        plain[1] |= 0x10
        let dequantizer = try Dequantizer(rows: 1, columns: 3, levels: 16,
                                          values: .palette(Array(repeating: 0, count: 16), perRow: false))
        var out = [UInt16](repeating: 0, count: 3)
        XCTAssertThrowsError(try plain.withUnsafeBytes { packed in
            try out.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f16) }
        }) { XCTAssertEqual($0 as? PackingError, .nonzeroPadding(row: 0)) }
    }

    /// Byte-packed rows: a byte at or above L^G and a padded code that is not 0, from both kernels.
    func testCorruptBytePackedRowsReportedFromEveryKernel() throws {
        func refused(_ packed: [UInt8], rows: Int, columns: Int, levels: Int, _ expected: PackingError, line: UInt = #line) throws {
            for vectorized in [true, false] {
                var dequantizer = try Dequantizer(rows: rows, columns: columns, levels: levels,
                                                  values: .grid(scales: Array(repeating: 1, count: rows)), packing: .bytes)
                dequantizer.vectorized = vectorized
                var out = [Float](repeating: 0, count: rows * columns)
                XCTAssertThrowsError(try packed.withUnsafeBytes { packed in
                    try out.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: .f32) }
                }, line: line) { XCTAssertEqual($0 as? PackingError, expected, line: line) }
            }
        }
        var packed = try CodePacker.pack([UInt8](repeating: 2, count: 3 * 60), rows: 3, columns: 60, levels: 5, packing: .bytes)
        packed[20 + 13] = 125 // row 1, group 13: 5^3
        try refused(packed, rows: 3, columns: 60, levels: 5, .invalidGroup(row: 1, group: 13, value: 125, limit: 125))
        packed = try CodePacker.pack([UInt8](repeating: 16, count: 2 * 40), rows: 2, columns: 40, levels: 17, packing: .bytes)
        packed[40 + 39] = 17
        try refused(packed, rows: 2, columns: 40, levels: 17, .invalidGroup(row: 1, group: 39, value: 17, limit: 17))
        packed = try CodePacker.pack([UInt8](repeating: 1, count: 2 * 41), rows: 2, columns: 41, levels: 9, packing: .bytes)
        packed[21 + 20] += 9 // row 1's last byte holds one code; the padded code becomes 1
        try refused(packed, rows: 2, columns: 41, levels: 9, .nonzeroPadding(row: 1))
    }

    func testInconsistentParametersRefused() {
        func refused(_ levels: Int, _ values: QuantizedValues, rows: Int = 2, columns: Int = 64, _ expected: PackingError,
                     line: UInt = #line) {
            XCTAssertThrowsError(try Dequantizer(rows: rows, columns: columns, levels: levels, values: values), line: line) {
                XCTAssertEqual($0 as? PackingError, expected, line: line)
            }
        }
        refused(1, .grid(scales: [1, 1]), .levelsOutOfRange(1))
        refused(300, .palette([], perRow: false), .levelsOutOfRange(300))
        refused(6, .grid(scales: [1, 1]), .notAGrid(levels: 6))
        refused(3, .grid(scales: [1]), .scaleCountMismatch(expected: 2, found: 1))
        refused(3, .grid(scales: [1, 1], groupSize: 32), .scaleCountMismatch(expected: 4, found: 2))
        refused(3, .grid(scales: [1, 1], groupSize: 31), .groupSizeOutOfRange(31))
        refused(3, .grid(scales: [1, 1], groupSize: 257), .groupSizeOutOfRange(257))
        refused(3, .grid(scales: [1, 1], offsets: [0]), .offsetCountMismatch(expected: 2, found: 1))
        refused(5, .palette([1, 2, 3, 4, 5], perRow: true), .paletteCountMismatch(expected: 10, found: 5))
        refused(5, .palette([1, 2, 3, 4], perRow: false), .paletteCountMismatch(expected: 5, found: 4))
        refused(5, .palette([], perRow: true), rows: Int.max / 4, columns: 0, .shapeInvalid(rows: Int.max / 4, columns: 0))
        refused(3, .grid(scales: []), rows: -2, .shapeInvalid(rows: -2, columns: 64))
    }

    func testInconsistentBuffersRefused() throws {
        let dequantizer = try Dequantizer(rows: 2, columns: 6, levels: 3, values: .grid(scales: [1, 2]))
        XCTAssertEqual(dequantizer.packedByteCount, 4)
        func refused(packed: Int, output: Int, _ dtype: DType, _ expected: PackingError, line: UInt = #line) {
            let packed = [UInt8](repeating: 0, count: packed)
            var out = [UInt8](repeating: 0, count: output)
            XCTAssertThrowsError(try packed.withUnsafeBytes { packed in
                try out.withUnsafeMutableBytes { try dequantizer.decode(packed, into: $0, as: dtype) }
            }, line: line) { XCTAssertEqual($0 as? PackingError, expected, line: line) }
        }
        refused(packed: 3, output: 48, .f32, .packedSizeMismatch(expected: 4, found: 3))
        refused(packed: 4, output: 47, .f32, .outputSizeMismatch(expected: 48, found: 47))
        refused(packed: 4, output: 48, .f16, .outputSizeMismatch(expected: 24, found: 48))
        refused(packed: 4, output: 24, .bf16, .unsupportedOutput(.bf16))
    }
}

private extension QuantizedValues {
    var kind: String {
        switch self {
        case let .grid(_, groupSize, offsets):
            return "grid, " + (groupSize.map { "groups of \($0)" } ?? "per-row scales") + (offsets == nil ? "" : ", offsets")
        case let .palette(_, perRow): return perRow ? "palette per row" : "palette per tensor"
        }
    }
}
