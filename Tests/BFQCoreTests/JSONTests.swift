import XCTest
@testable import BFQCore

final class JSONTests: XCTestCase {
    func testRoundTripKeepsOrderAndEscapes() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":[true,null,"x/\"y\"\u00e9\n"],"m":{"k":-5}}"#)
        XCTAssertEqual(value["z"], .int(1))
        XCTAssertEqual(value["a"], .array([.bool(true), .null, .string("x/\"y\"é\n")]))
        XCTAssertEqual(JSONWriter.compact(value), #"{"z":1,"a":[true,null,"x/\"y\"é\n"],"m":{"k":-5}}"#)
    }

    func testStrictModeRefusesExtensions() {
        for text in ["{'a':1}", "{\"a\":NaN}", "{\"a\":-Infinity}", "[1,]", "{\"a\":1,}", "/* c */ {}", "{\"a\":01}", "[0x10]"] {
            XCTAssertThrowsError(try JSONParser.parse(text), text)
        }
    }

    func testNumbersWithExponentsAccepted() throws {
        XCTAssertEqual(try JSONParser.parse("[1e5,2.5E-3,-0.0,true,false,null]").arrayValue?.count, 6)
    }

    func testNonFiniteDoublesWrittenAsNull() {
        XCTAssertEqual(JSONWriter.compact(.array([.double(.nan), .double(.infinity), .double(1.5)])), "[null,null,1.5]")
    }

    func testDuplicateKeysInNestedObjects() {
        XCTAssertThrowsError(try JSONParser.parse(#"{"a":{"b":1,"c":{"d":1,"d":2}}}"#)) {
            XCTAssertEqual($0 as? JSONError, .duplicateKey(key: "d", offset: 23))
        }
        XCTAssertNoThrow(try JSONParser.parse(#"{"a":{"d":1},"b":{"d":2},"c":["d","d"]}"#))
    }
}

final class JSONStrictnessTests: XCTestCase {
    func testRawControlCharacterInStringRefused() {
        XCTAssertThrowsError(try JSONParser.parse("{\"a\u{01}b\":1}")) {
            XCTAssertEqual($0 as? JSONError, .syntax(offset: 3, reason: "raw control character in a string"))
        }
    }

    func testUnpairedSurrogateRefused() {
        XCTAssertThrowsError(try JSONParser.parse(#"{"\ud800x":1}"#)) {
            XCTAssertEqual($0 as? JSONError, .syntax(offset: 2, reason: "\\u escape of an unpaired surrogate"))
        }
        XCTAssertEqual(try JSONParser.parse(#"["\ud83d\ude00"]"#), .array([.string("😀")]))
    }

    func testDoublesWrittenInShortestRoundTripForm() {
        XCTAssertEqual(JSONWriter.compact(.array([.double(0.7071067811865476), .double(1e-5), .double(5)])),
                       "[0.7071067811865476,1e-05,5.0]")
    }
}

final class JSONTreeCostTests: XCTestCase {
    private func estimate(_ text: String) -> Int {
        var text = text
        return text.withUTF8 { JSONTreeCost.estimate(UnsafeRawBufferPointer($0)) }
    }

    func testEstimateCountsValuesAndMembersOutsideStrings() {
        XCTAssertEqual(estimate("[]"), 128 + 256)
        XCTAssertEqual(estimate(#"{"a":[1,2]}"#), 128 + 1024 + 128 + 128 + 256 + 128)
        XCTAssertEqual(estimate(#"["{[,:\"]"]"#), 128 + 256 + 128)  // punctuation and an escaped quote inside a string
    }

    /// 65,000 empty objects (195 KB) would take about 53 MB in json-c: refused; as many bytes of strings parse.
    func testTextsOfTinyValuesAreRefusedBeforeParsing() throws {
        let objects = "[" + Array(repeating: "{}", count: 65_000).joined(separator: ",") + "]"
        XCTAssertThrowsError(try JSONParser.parse(objects)) {
            XCTAssertEqual($0 as? JSONError, .tooManyValues(textBytes: 195_001, estimate: 74_880_256, limit: (64 << 20) + 8 * 195_001))
        }
        let strings = "[" + Array(repeating: "\"" + String(repeating: "x", count: 1000) + "\"", count: 195).joined(separator: ",") + "]"
        XCTAssertEqual(try JSONParser.parse(strings).arrayValue?.count, 195)
    }

    /// Real headers and manifests estimate at under 48 bytes per byte, so texts up to 1.6 MB are accepted (a quantized
    /// SD UNet's manifest, plan included, is about 210 KB).
    func testRealHeadersAndManifestsAreWellUnderTheLimit() throws {
        for name in ["unet/tiny_unet.ldm.safetensors", "quantizer/cases.safetensors"] {
            let file = try MappedFile(path: TestFiles.path(name))
            let length = Int(file.bytes.loadUnaligned(as: UInt64.self).littleEndian)
            let header = file.bytes(in: 8 ..< 8 + length)
            XCTAssertLessThan(JSONTreeCost.estimate(header), 48 * header.count, name)
        }
        let manifest = try ContainerReader(MappedFile(path: TestFiles.path("bfq/encodings.bfq"))).file
        let offset = Int(manifest.bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian)
        XCTAssertLessThan(JSONTreeCost.estimate(manifest.bytes(in: offset ..< manifest.count)), 48 * (manifest.count - offset))
    }
}
