import CJSONC

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
