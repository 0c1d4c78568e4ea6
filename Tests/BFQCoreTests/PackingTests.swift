import XCTest
@testable import BFQCore

/// Code packing as spec/bfq.md section 5 lays it out: the (G, W) table, hand-checked bytes, round trips, refusals.
final class PackingTests: XCTestCase {
    private func unpack(_ bytes: [UInt8], rows: Int, columns: Int, levels: Int,
                        packing: CodePacking = .radix) throws -> [UInt16] {
        try bytes.withUnsafeBytes { try CodePacker.unpack($0, rows: rows, columns: columns, levels: levels, packing: packing) }
    }

    private func assertRefused(_ bytes: [UInt8], rows: Int = 1, columns: Int, levels: Int, packing: CodePacking = .radix,
                               _ expected: PackingError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try unpack(bytes, rows: rows, columns: columns, levels: levels, packing: packing),
                             file: file, line: line) {
            XCTAssertEqual($0 as? PackingError, expected, file: file, line: line)
        }
    }

    func testGroupTable() throws {
        let expected: [Int: (Int, Int)] = [
            3: (5, 8), 5: (3, 7), 9: (5, 16), 17: (3, 13), 33: (3, 16), 65: (2, 13), 129: (2, 15), 257: (1, 9),
            2: (1, 1), 4: (1, 2), 8: (1, 3), 16: (1, 4), 256: (1, 8), 6: (5, 13), 7: (1, 3), 13: (4, 15),
        ]
        for (levels, (g, w)) in expected {
            let layout = try CodeLayout(levels: levels)
            XCTAssertEqual([layout.codesPerGroup, layout.bitsPerGroup], [g, w], "L = \(levels)")
        }
        XCTAssertEqual(try CodeLayout(levels: 3).rowBytes(columns: 6), 2)
        XCTAssertEqual(try CodeLayout(levels: 9).byteCount(rows: 3, columns: 11), 3 * 6)
    }

    /// Every layout is the rule's choice: no G = 1...8 with W <= 16 stores fewer bits per code.
    func testGroupChoiceIsOptimalForEveryLevelCount() throws {
        for levels in CodeLayout.levelRange where levels & (levels - 1) != 0 {
            let layout = try CodeLayout(levels: levels)
            var power = 1
            for g in 1 ... 8 {
                power *= levels
                let w = Int.bitWidth - (power - 1).leadingZeroBitCount
                if w > 16 { break }
                XCTAssertTrue(layout.bitsPerGroup * g < w * layout.codesPerGroup
                                  || layout.bitsPerGroup * g == w * layout.codesPerGroup && layout.codesPerGroup <= g,
                              "L = \(levels): (\(g), \(w)) beats (\(layout.codesPerGroup), \(layout.bitsPerGroup))")
            }
            XCTAssertLessThanOrEqual(layout.groupLimit, 1 << layout.bitsPerGroup)
            XCTAssertGreaterThan(layout.groupLimit, 1 << (layout.bitsPerGroup - 1))
        }
    }

    /// The worked examples of spec/bfq.md section 5, with a few more layouts, as literal bytes.
    func testWorkedExamples() throws {
        let cases: [(levels: Int, codes: [UInt16], bytes: [UInt8])] = [
            (3, [2, 0, 1, 1, 2, 1], [0xC8, 0x01]),       // 2 + 0*3 + 1*9 + 1*27 + 2*81 = 200; then 1
            (5, [4, 0, 3, 1, 2], [0xCF, 0x05]),          // 79 in bits 0-6, 11 in bits 7-13
            (4, [3, 1, 0, 2], [0x87]),                   // 3 + 1<<2 + 0<<4 + 2<<6
            (8, [5, 3, 7], [0xDD, 0x01]),                // 5 + 3<<3 + (7 & 3)<<6; 7 >> 2
            (2, [1, 0, 1, 1, 0, 0, 0, 0, 1], [0x0D, 0x01]),
            (9, [7, 8, 1, 0, 2, 4], [0xE2, 0x33, 0x04, 0x00]), // 7 + 8*9 + 1*81 + 2*6561 = 0x33E2; then 4
            (257, [256, 1, 0], [0x00, 0x03, 0x00, 0x00]), // 256 in bits 0-8, 1 in bits 9-17
        ]
        for (levels, codes, bytes) in cases {
            XCTAssertEqual(try CodePacker.pack(codes, rows: 1, columns: codes.count, levels: levels), bytes, "L = \(levels)")
            XCTAssertEqual(try unpack(bytes, rows: 1, columns: codes.count, levels: levels), codes, "L = \(levels)")
        }
        // Rows start on byte boundaries: two rows of one ternary code are two bytes.
        XCTAssertEqual(try CodePacker.pack([2, 1] as [UInt8], rows: 2, columns: 1, levels: 3), [0x02, 0x01])
    }

    /// pack then unpack gives the codes back for every level count and both packings, for short rows (n < G,
    /// n = 1), odd lengths and rows longer than one decoding step.
    func testRoundTripEveryLevelCount() throws {
        var random = SeededGenerator(seed: 1)
        for levels in CodeLayout.levelRange {
            for packing in CodePacking.allCases {
                let layout = try CodeLayout(levels: levels, packing: packing)
                for columns in Set([1, max(1, layout.codesPerGroup - 1), layout.codesPerGroup + 1, 37, 101, 2053]) {
                    let rows = columns > 1000 ? 2 : 3
                    let codes = (0 ..< rows * columns).map { _ in UInt16.random(in: 0 ..< UInt16(levels), using: &random) }
                    let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels, packing: packing)
                    XCTAssertEqual(packed.count, try layout.byteCount(rows: rows, columns: columns))
                    XCTAssertEqual(try unpack(packed, rows: rows, columns: columns, levels: levels, packing: packing), codes,
                                   "L = \(levels), n = \(columns), \(packing)")
                }
            }
        }
    }

    /// Byte packing: G is the largest with L^G <= 256 (W = 8), and L = 257 takes 16 bits; the table of spec/bfq.md
    /// section 5.2 and the rule for every L.
    func testByteGroupTable() throws {
        let expected: [Int: Int] = [2: 8, 3: 5, 4: 4, 5: 3, 6: 3, 7: 2, 8: 2, 9: 2, 15: 2, 16: 2, 17: 1, 33: 1, 65: 1, 129: 1,
                                    255: 1, 256: 1]
        for (levels, g) in expected {
            let layout = try CodeLayout(levels: levels, packing: .bytes)
            XCTAssertEqual([layout.codesPerGroup, layout.bitsPerGroup], [g, 8], "L = \(levels)")
        }
        let wide = try CodeLayout(levels: 257, packing: .bytes)
        XCTAssertEqual([wide.codesPerGroup, wide.bitsPerGroup, wide.groupLimit], [1, 16, 257])
        for levels in 2 ... 256 {
            let layout = try CodeLayout(levels: levels, packing: .bytes)
            XCTAssertLessThanOrEqual(layout.groupLimit, 256, "L = \(levels)")
            XCTAssertGreaterThan(layout.groupLimit * levels, 256, "L = \(levels)")
        }
        XCTAssertEqual(try CodeLayout(levels: 9, packing: .bytes).byteCount(rows: 3, columns: 11), 3 * 6)
    }

    /// The worked examples of spec/bfq.md section 5.2 as literal bytes: byte-packed rows, each starting a new byte.
    func testByteWorkedExamples() throws {
        let cases: [(levels: Int, codes: [UInt16], bytes: [UInt8])] = [
            (5, [4, 0, 3, 1, 2], [0x4F, 0x0B]),             // 4 + 0*5 + 3*25 = 79; 1 + 2*5 = 11
            (3, [2, 0, 1, 1, 2, 1], [0xC8, 0x01]),          // radix's layout: (G, W) = (5, 8) either way
            (9, [7, 8, 1], [0x4F, 0x01]),                   // 7 + 8*9 = 79; 1
            (8, [5, 3, 7], [0x1D, 0x07]),                   // 5 + 3*8 = 29; 7
            (17, [16, 0, 5], [0x10, 0x00, 0x05]),
            (257, [256, 1, 0], [0x00, 0x01, 0x01, 0x00, 0x00, 0x00]),
            (2, [1, 0, 1, 1, 0, 0, 0, 0, 1], [0x0D, 0x01]), // plain packing's bytes
        ]
        for (levels, codes, bytes) in cases {
            XCTAssertEqual(try CodePacker.pack(codes, rows: 1, columns: codes.count, levels: levels, packing: .bytes), bytes,
                           "L = \(levels)")
            XCTAssertEqual(try unpack(bytes, rows: 1, columns: codes.count, levels: levels, packing: .bytes), codes,
                           "L = \(levels)")
        }
        XCTAssertEqual(try CodePacker.pack([4, 0, 3, 1, 2, 0, 2] as [UInt8], rows: 1, columns: 7, levels: 5, packing: .bytes),
                       [0x4F, 0x0B, 0x02])
        XCTAssertEqual(try CodePacker.pack([4, 1] as [UInt8], rows: 2, columns: 1, levels: 5, packing: .bytes), [0x04, 0x01])
    }

    func testHostileBytePackedRowsRefused() {
        assertRefused([0x00, 0x7D], rows: 2, columns: 2, levels: 5, packing: .bytes,
                      .invalidGroup(row: 1, group: 0, value: 125, limit: 125))
        assertRefused([0x4F, 0xFF], columns: 6, levels: 5, packing: .bytes,
                      .invalidGroup(row: 0, group: 1, value: 255, limit: 125))
        assertRefused([0x40], columns: 1, levels: 8, packing: .bytes, .invalidGroup(row: 0, group: 0, value: 64, limit: 64))
        assertRefused([0x10, 0x11], columns: 2, levels: 17, packing: .bytes, .invalidGroup(row: 0, group: 1, value: 17, limit: 17))
        assertRefused([0x00, 0x01, 0x01, 0x01], columns: 2, levels: 257, packing: .bytes,
                      .invalidGroup(row: 0, group: 1, value: 257, limit: 257))
        assertRefused([0x4F, 0x0B], columns: 4, levels: 5, packing: .bytes, .nonzeroPadding(row: 0)) // code 2 past n = 4
        assertRefused([0x4F, 0x05], columns: 4, levels: 5, packing: .bytes, .nonzeroPadding(row: 0))
        assertRefused([0x4F, 0x0A], columns: 3, levels: 9, packing: .bytes, .nonzeroPadding(row: 0))
        assertRefused([0x4F, 0x0B, 0x00], columns: 5, levels: 5, packing: .bytes, .packedSizeMismatch(expected: 2, found: 3))
    }

    /// Bytes codes and 16-bit codes pack alike.
    func testByteCodesPackLikeWideCodes() throws {
        let codes: [UInt8] = [0, 4, 2, 3, 1, 4, 4]
        XCTAssertEqual(try CodePacker.pack(codes, rows: 1, columns: 7, levels: 5),
                       try CodePacker.pack(codes.map(UInt16.init), rows: 1, columns: 7, levels: 5))
    }

    func testGroupValueAtOrAboveLimitRefused() {
        // L = 3: byte 243 = 3^5 is the first invalid group value; the second row's first group is bad.
        assertRefused([0x00, 0x00, 0xF3, 0x00], rows: 2, columns: 6, levels: 3,
                      .invalidGroup(row: 1, group: 0, value: 243, limit: 243))
        assertRefused([0xFF], columns: 5, levels: 3, .invalidGroup(row: 0, group: 0, value: 255, limit: 243))
        // L = 9: 16-bit groups, 9^5 = 59049 = 0xE6A9.
        assertRefused([0x00, 0x00, 0xA9, 0xE6], columns: 10, levels: 9,
                      .invalidGroup(row: 0, group: 1, value: 59049, limit: 59049))
        // L = 5: 7-bit groups, 125 = 0b1111101 in bits 7-13.
        assertRefused([0x80, 0x3E], columns: 6, levels: 5, .invalidGroup(row: 0, group: 1, value: 125, limit: 125))
        // L = 257: a 9-bit code of 257.
        assertRefused([0x01, 0x01], columns: 1, levels: 257, .invalidGroup(row: 0, group: 0, value: 257, limit: 257))
    }

    func testNonzeroPaddingRefused() {
        assertRefused([0xC8, 0x04], columns: 6, levels: 3, .nonzeroPadding(row: 0))   // padded codes of group 1 not 0
        assertRefused([0xDD, 0x03], columns: 3, levels: 8, .nonzeroPadding(row: 0))   // bit 9 past the last code
        assertRefused([0x0D, 0x03], columns: 9, levels: 2, .nonzeroPadding(row: 0))
        assertRefused([0xCF, 0x45], columns: 5, levels: 5, .nonzeroPadding(row: 0))  // bit 14 past the last group
        assertRefused([0x00, 0x03, 0x00, 0x80], columns: 3, levels: 257, .nonzeroPadding(row: 0))
    }

    func testInconsistentSizesRefused() {
        assertRefused([0xC8], columns: 6, levels: 3, .packedSizeMismatch(expected: 2, found: 1))
        assertRefused([0xC8, 0x01, 0x00], columns: 6, levels: 3, .packedSizeMismatch(expected: 2, found: 3))
        assertRefused([], columns: 1, levels: 1, .levelsOutOfRange(1))
        assertRefused([], columns: 1, levels: 258, .levelsOutOfRange(258))
        assertRefused([], rows: -1, columns: 1, levels: 3, .shapeInvalid(rows: -1, columns: 1))
        assertRefused([], rows: 1 << 40, columns: 1 << 40, levels: 3, .shapeInvalid(rows: 1 << 40, columns: 1 << 40))
        XCTAssertThrowsError(try CodePacker.pack([0, 1, 2] as [UInt8], rows: 2, columns: 2, levels: 3)) {
            XCTAssertEqual($0 as? PackingError, .codeCountMismatch(expected: 4, found: 3))
        }
        XCTAssertThrowsError(try CodePacker.pack([0, 1, 3, 4] as [UInt8], rows: 2, columns: 2, levels: 3)) {
            XCTAssertEqual($0 as? PackingError, .codeOutOfRange(row: 1, column: 0, code: 3, levels: 3))
            XCTAssertEqual("\($0)", "row 1, column 0: code 3 is not below the level count 3")
        }
    }

    /// Empty tensors pack to nothing and unpack from nothing.
    func testEmptyShapes() throws {
        XCTAssertEqual(try CodePacker.pack([UInt8](), rows: 0, columns: 5, levels: 3), [])
        XCTAssertEqual(try CodePacker.pack([UInt8](), rows: 4, columns: 0, levels: 3), [])
        XCTAssertEqual(try unpack([], rows: 4, columns: 0, levels: 9), [])
    }
}
