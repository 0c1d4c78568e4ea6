import CJSONC
import Foundation

/// Serialises `JSONValue`s with json-c. Output is deterministic: members in the order given, no slash escaping,
/// doubles in the shortest form that reads back to the same value, non-finite doubles written as `null`
/// (JSON has no NaN or Infinity).
public enum JSONWriter {
    /// Compact text, as safetensors headers are written.
    public static func compact(_ value: JSONValue) -> String { serialise(value, flags: JSON_C_TO_STRING_PLAIN) }

    /// Indented text for people.
    public static func pretty(_ value: JSONValue) -> String {
        serialise(value, flags: JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED)
    }

    /// The text Python's `json.dumps(value, indent=2) + "\n"` writes (ensure_ascii: non-ASCII as `\\u` escapes;
    /// doubles as Python's repr), as transformers and diffusers write config.json files and shard indexes. Members
    /// keep the order given.
    public static func python(_ value: JSONValue) -> String {
        var text = ""
        writePython(value, indent: 0, to: &text)
        return text + "\n"
    }

    private static func writePython(_ value: JSONValue, indent: Int, to text: inout String) {
        let inner = String(repeating: " ", count: indent + 2)
        switch value {
        case .null: text += "null"
        case let .bool(flag): text += flag ? "true" : "false"
        case let .int(number): text += String(number)
        case let .double(number):
            text += number.isFinite ? (number == number.rounded() && abs(number) < 1e16 ? String(format: "%.1f", number)
                                                                                      : number.description)
                                    : (number.isNaN ? "NaN" : number > 0 ? "Infinity" : "-Infinity")
        case let .string(string): writePython(string, to: &text)
        case let .array(elements):
            guard !elements.isEmpty else { return text += "[]" }
            text += "[\n"
            for (index, element) in elements.enumerated() {
                text += inner
                writePython(element, indent: indent + 2, to: &text)
                text += index == elements.count - 1 ? "\n" : ",\n"
            }
            text += String(repeating: " ", count: indent) + "]"
        case let .object(members):
            guard !members.isEmpty else { return text += "{}" }
            text += "{\n"
            for (index, member) in members.enumerated() {
                text += inner
                writePython(member.key, to: &text)
                text += ": "
                writePython(member.value, indent: indent + 2, to: &text)
                text += index == members.count - 1 ? "\n" : ",\n"
            }
            text += String(repeating: " ", count: indent) + "}"
        }
    }

    private static func writePython(_ string: String, to text: inout String) {
        text += "\""
        for unit in string.utf16 {
            switch unit {
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x0A: text += "\\n"
            case 0x0D: text += "\\r"
            case 0x09: text += "\\t"
            case 0x08: text += "\\b"
            case 0x0C: text += "\\f"
            case 0x20 ..< 0x7F: text.unicodeScalars.append(Unicode.Scalar(unit)!)
            default:
                let hex = String(unit, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        text += "\""
    }

    private static func serialise(_ value: JSONValue, flags: Int32) -> String {
        let object = build(value)
        defer { json_object_put(object) }
        var length = 0
        guard let text = json_object_to_json_string_length(object, flags | JSON_C_TO_STRING_NOSLASHESCAPE, &length) else {
            return "null"
        }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
    }

    private static func build(_ value: JSONValue) -> OpaquePointer? {
        switch value {
        case .null: return nil
        case let .bool(flag): return json_object_new_boolean(flag ? 1 : 0)
        case let .int(number): return json_object_new_int64(number)
        case let .double(number):
            guard number.isFinite else { return nil }
            return json_object_new_double_s(number, number.description)
        case let .string(text):
            var text = text
            return text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    guard let start = chars.baseAddress else { return json_object_new_string("") }
                    return json_object_new_string_len(start, Int32(chars.count))
                }
            }
        case let .array(elements):
            let array = json_object_new_array_ext(Int32(clamping: elements.count))
            for element in elements { json_object_array_add(array, build(element)) }
            return array
        case let .object(members):
            let object = json_object_new_object()
            for member in members { json_object_object_add(object, member.key, build(member.value)) }
            return object
        }
    }
}
