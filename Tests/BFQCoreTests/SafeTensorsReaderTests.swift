import XCTest
@testable import BFQCore

/// One test per rule, each from literal bytes, as the reference implementation's tests do.
final class SafeTensorsReaderTests: XCTestCase {
    private func read(_ bytes: [UInt8]) throws -> Checkpoint {
        try SafeTensorsReader.read(MappedFile(path: TestFiles.write(bytes)))
    }

    private func expect(_ bytes: [UInt8], _ check: (SafeTensorsError) -> Bool, _ message: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try read(bytes), file: file, line: line) { error in
            guard let error = error as? SafeTensorsError else { return XCTFail("unexpected \(error)", file: file, line: line) }
            XCTAssertTrue(check(error), "wrong case: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(message), "\(error.description)", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix("/"), "message must start with the path", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
        }
    }

    private let tensor = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    private let eight = [UInt8](repeating: 1, count: 8)

    /// An empty tensor whose other dimensions multiply past Int.max (the GGUF fuzz target found the same in GGUF):
    /// it holds nothing and reads, converts and gives statistics without trapping.
    func testEmptyTensorWithHugeDimensionsReads() throws {
        let checkpoint = try read(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}"#,
                                                        data: []))
        XCTAssertEqual(checkpoint.tensors[0].elementCount, 0)
        XCTAssertEqual(checkpoint.tensors[0].strides, [Int.max, 1_099_511_627_776, 1])
        XCTAssertEqual(try checkpoint.floats(of: checkpoint.tensors[0]), [])
        XCTAssertEqual(try checkpoint.withContiguousBytes(of: checkpoint.tensors[0]) { $0.count }, 0)
    }

    func testReadsValidFileZeroCopy() throws {
        let bytes = TestFiles.safetensors(header: #"{"__metadata__":{"k":"v"},"b":{"dtype":"F16","shape":[],"data_offsets":[8,10]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                                          data: [0, 0, 128, 63, 0, 0, 0, 64, 0, 60])
        let checkpoint = try read(bytes)
        XCTAssertEqual(checkpoint.format, .safetensors)
        XCTAssertEqual(checkpoint.metadata, ["k": "v"])
        XCTAssertEqual(checkpoint.tensors.map(\.name), ["b", "a"])
        XCTAssertEqual(checkpoint.tensors[0].shape, [])
        XCTAssertEqual(checkpoint.tensors[0].elementCount, 1)
        let headerEnd = bytes.count - 10
        XCTAssertEqual(checkpoint.tensors[1].storage, headerEnd ..< headerEnd + 8)
        let values = try checkpoint.withContiguousBytes(of: checkpoint.tensors[1]) { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(values, [1.0, 2.0])
    }

    func testFileUnderEightBytes() {
        expect([1, 2, 3], { if case .fileTooSmall(_, 3) = $0 { true } else { false } }, "too small")
    }

    func testHeaderOverLimit() {
        expect(withUnsafeBytes(of: UInt64(100_000_001).littleEndian, Array.init) + [0x7B],
               { if case .headerTooLarge(_, 100_000_001, _) = $0 { true } else { false } }, "exceeds the limit")
    }

    func testHeaderPastEnd() {
        expect(withUnsafeBytes(of: UInt64(50).littleEndian, Array.init) + Array("{}".utf8),
               { if case .headerPastEnd(_, 50, 10) = $0 { true } else { false } }, "past the end")
    }

    func testHeaderLengthOverflow() {
        expect(withUnsafeBytes(of: UInt64.max.littleEndian, Array.init) + Array("{}".utf8),
               { if case .headerTooLarge = $0 { true } else { false } }, "exceeds")
    }

    func testHeaderNotUTF8() {
        expect(TestFiles.safetensors(header: "{\"\u{00}\"") .enumerated().map { $0.offset == 10 ? 0xFF : $0.element },
               { if case .headerJSON(_, .invalidUTF8) = $0 { true } else { false } }, "UTF-8")
    }

    func testHeaderNotStartingWithBrace() {
        expect(TestFiles.safetensors(header: " {}"), { if case .headerNotObject = $0 { true } else { false } }, "'{'")
        expect(TestFiles.safetensors(header: "[]"), { if case .headerNotObject = $0 { true } else { false } }, "'{'")
    }

    func testBadJSON() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32",}}"#), { if case .headerJSON(_, .syntax) = $0 { true } else { false } }, "syntax")
        expect(TestFiles.safetensors(header: #"{"t":1"#), { if case .headerJSON(_, .syntax) = $0 { true } else { false } }, "syntax")
        expect(TestFiles.safetensors(header: "{} x"), { if case .headerJSON(_, .trailingCharacters(3)) = $0 { true } else { false } }, "trailing")
    }

    func testPaddingSpacesAccepted() throws {
        let checkpoint = try read(TestFiles.safetensors(header: tensor + "      ", data: eight))
        XCTAssertEqual(checkpoint.tensors.count, 1)
    }

    func testDuplicateTensorKey() {
        let header = #"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .headerJSON(_, .duplicateKey("t", _)) = $0 { true } else { false } }, "appears twice")
    }

    func testDuplicateKeyThroughEscapes() {
        let header = #"{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0061b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .headerJSON(_, .duplicateKey("ab", _)) = $0 { true } else { false } }, "appears twice")
    }

    func testDuplicateFieldInsideEntry() {
        let header = #"{"t":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .headerJSON(_, .duplicateKey("dtype", _)) = $0 { true } else { false } }, "appears twice")
    }

    func testKeyWithNULRefused() {
        let header = #"{"a\u0000x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .headerJSON(_, .syntax) = $0 { true } else { false } }, "NUL")
    }

    func testTensorNamedMetadata() {
        let header = #"{"__metadata__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight), { if case .reservedName = $0 { true } else { false } }, "__metadata__")
    }

    func testMetadataValueNotString() {
        expect(TestFiles.safetensors(header: #"{"__metadata__":{"step":5}}"#),
               { if case .metadataNotStrings(_, "step") = $0 { true } else { false } }, "not a string")
    }

    func testUnknownDType() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: eight + eight),
               { if case .unsupportedDType(_, "t", "F128") = $0 { true } else { false } }, "unsupported dtype")
    }

    func testMissingFields() {
        expect(TestFiles.safetensors(header: #"{"t":{"shape":[1],"data_offsets":[0,4]}}"#),
               { if case .missingField(_, "t", "dtype") = $0 { true } else { false } }, "no \"dtype\"")
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","data_offsets":[0,4]}}"#),
               { if case .missingField(_, "t", "shape") = $0 { true } else { false } }, "no \"shape\"")
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[1]}}"#),
               { if case .missingField(_, "t", "data_offsets") = $0 { true } else { false } }, "no \"data_offsets\"")
        expect(TestFiles.safetensors(header: #"{"t":5}"#), { if case .entryNotObject(_, "t") = $0 { true } else { false } }, "not an object")
    }

    func testNegativeOffset() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, data: eight),
               { if case .badField(_, "t", "data_offsets", _) = $0 { true } else { false } }, "non-negative")
    }

    func testNegativeOrFractionalDimension() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
               { if case .badField(_, "t", "shape", _) = $0 { true } else { false } }, "non-negative integer")
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: eight),
               { if case .badField(_, "t", "shape", _) = $0 { true } else { false } }, "non-negative integer")
    }

    func testThreeOffsets() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, data: eight),
               { if case .badField(_, "t", "data_offsets", _) = $0 { true } else { false } }, "exactly two")
    }

    func testEndBeforeBegin() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
               { if case .badField(_, "t", "data_offsets", _) = $0 { true } else { false } }, "before begin")
    }

    func testShapeOverflow() {
        let header = #"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight), { if case .sizeOverflow(_, "t") = $0 { true } else { false } }, "overflows")
    }

    func testHugeIntegerBeyondInt64() {
        let header = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .badField(_, "t", "data_offsets", _) = $0 { true } else { false } }, "non-negative integer")
    }

    func testByteLengthMismatch() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
               { if case .byteLengthMismatch(_, "t", 12, 8) = $0 { true } else { false } }, "need 12")
    }

    func testHoleBetweenTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        expect(TestFiles.safetensors(header: header, data: eight + [1, 2, 3, 4]),
               { if case .misplacedTensor(_, "b", 8, 4) = $0 { true } else { false } }, "hole or overlap")
    }

    func testOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expect(TestFiles.safetensors(header: header, data: eight),
               { if case .misplacedTensor(_, _, 4, _) = $0 { true } else { false } }, "hole or overlap")
    }

    func testFirstTensorNotAtZero() {
        expect(TestFiles.safetensors(header: #"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
               { if case .misplacedTensor(_, "t", 4, 0) = $0 { true } else { false } }, "previous tensor ends at 0")
    }

    func testTrailingBytesAfterLastTensor() {
        expect(TestFiles.safetensors(header: tensor, data: eight + [0]),
               { if case .dataSizeMismatch(_, 8, 9) = $0 { true } else { false } }, "holds 9 bytes")
    }

    func testTruncatedData() {
        expect(TestFiles.safetensors(header: tensor, data: [1, 2, 3]),
               { if case .dataSizeMismatch(_, 8, 3) = $0 { true } else { false } }, "holds 3 bytes")
    }

    func testDeepNestingRefused() {
        let header = #"{"__metadata__":"# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"
        expect(TestFiles.safetensors(header: header), { if case .headerJSON(_, .syntax) = $0 { true } else { false } }, "syntax")
    }

    func testReadsPythonWrittenFile() throws {
        let checkpoint = try SafeTensorsReader.read(MappedFile(path: TestFiles.path("safetensors/dtypes.safetensors")))
        XCTAssertEqual(checkpoint.metadata, ["source": "tools/testdata/safetensors_cases.py"])
        XCTAssertEqual(Set(checkpoint.tensors.map(\.dtype)), Set(DType.allCases))
        let scalar = try XCTUnwrap(checkpoint.tensors.first { $0.name == "scalar.f32" })
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(try checkpoint.withContiguousBytes(of: scalar) { $0.loadUnaligned(as: Float.self) }, 3.5)
        let range = try XCTUnwrap(checkpoint.tensors.first { $0.name == "i64.range" })
        XCTAssertEqual(try checkpoint.withContiguousBytes(of: range) { Array($0.bindMemory(to: Int64.self)) }, Array(-5 ..< 7))
        let empty = try XCTUnwrap(checkpoint.tensors.first { $0.name == "empty.f32" })
        XCTAssertEqual(empty.shape, [0, 4])
        XCTAssertEqual(empty.byteCount, 0)
    }
}
