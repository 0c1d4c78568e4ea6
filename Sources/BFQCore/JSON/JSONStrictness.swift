/// What json-c's strict mode lets through and RFC 8259 does not, found in a text json-c has already parsed:
/// duplicate keys (json-c keeps the last), keys holding NUL (json-c cannot keep them apart), single-quoted strings,
/// bare words other than true, false and null (NaN, Infinity), raw control characters in strings and `\u`
/// escapes of unpaired surrogates.
enum JSONStrictness {
    private struct Container {
        var isObject: Bool
        var expectingKey: Bool
        var keys: Set<[UInt8]>
    }

    static func check(_ text: UnsafeRawBufferPointer) throws {
        var stack: [Container] = []
        var index = 0
        while index < text.count {
            let byte = text[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(Container(isObject: true, expectingKey: true, keys: []))
                index += 1
            case UInt8(ascii: "["):
                stack.append(Container(isObject: false, expectingKey: false, keys: []))
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
                index += 1
            case UInt8(ascii: ","):
                if !stack.isEmpty, stack[stack.count - 1].isObject { stack[stack.count - 1].expectingKey = true }
                index += 1
            case UInt8(ascii: "\""):
                let start = index
                let isKey = !stack.isEmpty && stack[stack.count - 1].isObject && stack[stack.count - 1].expectingKey
                let (decoded, next) = try decodeString(text, from: index, keep: isKey)
                index = next
                if isKey {
                    stack[stack.count - 1].expectingKey = false
                    if decoded.contains(0) {
                        throw JSONError.syntax(offset: start, reason: "object key contains a NUL character")
                    }
                    if !stack[stack.count - 1].keys.insert(decoded).inserted {
                        throw JSONError.duplicateKey(key: String(decoding: decoded, as: UTF8.self), offset: start)
                    }
                }
            case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                 UInt8(ascii: "0") ... UInt8(ascii: "9"):
                index += 1
            case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"):
                let start = index
                while index < text.count, isLetter(text[index]) { index += 1 }
                let word = String(decoding: UnsafeRawBufferPointer(rebasing: text[start ..< index]), as: UTF8.self)
                // Exponents of numbers ("1e5", "2E-3") are the only other letters JSON allows.
                let exponent = (word == "e" || word == "E") && start > 0 && isDigitOrDot(text[start - 1])
                guard ["true", "false", "null"].contains(word) || exponent else {
                    throw JSONError.syntax(offset: start, reason: "\(word) is not a JSON value")
                }
            default:
                throw JSONError.syntax(offset: index, reason: "unexpected character '\(Character(Unicode.Scalar(byte)))'")
            }
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a") ... UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A") ... UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigitOrDot(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
    }

    /// Decodes the string literal starting at the quote at `start`; returns its UTF-8 bytes (when `keep`; checked
    /// either way) and the index after it.
    private static func decodeString(_ text: UnsafeRawBufferPointer, from start: Int, keep: Bool) throws -> ([UInt8], Int) {
        var out: [UInt8] = []
        var index = start + 1
        while index < text.count {
            // A run of plain bytes is taken whole.
            let run = index
            while index < text.count, text[index] >= 0x20, text[index] != UInt8(ascii: "\""), text[index] != UInt8(ascii: "\\") {
                index += 1
            }
            if keep, index > run { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[run ..< index])) }
            guard index < text.count else { break }
            let byte = text[index]
            if byte == UInt8(ascii: "\"") { return (out, index + 1) }
            if byte < 0x20 { throw JSONError.syntax(offset: index, reason: "raw control character in a string") }
            guard index + 1 < text.count else { break }
            let escape = text[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(text, at: index) else { throw JSONError.syntax(offset: index, reason: "bad \\u escape") }
                index += 4
                if (0xD800 ..< 0xDC00).contains(scalar), index + 6 <= text.count, text[index] == UInt8(ascii: "\\"),
                   text[index + 1] == UInt8(ascii: "u"), let low = hex4(text, at: index + 2), (0xDC00 ..< 0xE000).contains(low)
                {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                }
                guard let character = Unicode.Scalar(scalar) else {
                    throw JSONError.syntax(offset: index - 6, reason: "\\u escape of an unpaired surrogate")
                }
                out.append(contentsOf: Array(String(Character(character)).utf8))
            default: out.append(escape)
            }
        }
        throw JSONError.syntax(offset: start, reason: "unterminated string")
    }

    private static func hex4(_ text: UnsafeRawBufferPointer, at index: Int) -> UInt32? {
        guard index + 4 <= text.count else { return nil }
        var value: UInt32 = 0
        for offset in 0 ..< 4 {
            guard let digit = Character(Unicode.Scalar(text[index + offset])).hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
