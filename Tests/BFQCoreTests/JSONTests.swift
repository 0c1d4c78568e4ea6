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
