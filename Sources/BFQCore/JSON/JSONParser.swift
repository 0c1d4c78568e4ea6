import CJSONC

/// Parses JSON with json-c in strict mode, then refuses what json-c lets through (see `JSONStrictness`).
public enum JSONParser {
    /// Maximum nesting of arrays and objects.
    public static let maximumDepth: Int32 = 64

    /// Parses `bytes` as one JSON value followed only by JSON white space. Texts that would take more memory parsed
    /// than `JSONTreeCost.limit(textBytes:)` are refused before parsing.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        guard let start = bytes.baseAddress?.assumingMemoryBound(to: CChar.self), !bytes.isEmpty else {
            throw JSONError.syntax(offset: 0, reason: "empty text")
        }
        let cost = JSONTreeCost.estimate(bytes), limit = JSONTreeCost.limit(textBytes: bytes.count)
        guard cost <= limit else { throw JSONError.tooManyValues(textBytes: bytes.count, estimate: cost, limit: limit) }
        guard let tokener = json_tokener_new_ex(maximumDepth) else { throw JSONError.syntax(offset: 0, reason: "out of memory") }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8)
        let root = json_tokener_parse_ex(tokener, start, Int32(clamping: bytes.count))
        let status = json_tokener_get_error(tokener)
        let end = Int(json_tokener_get_parse_end(tokener))
        guard let root else {
            if status == json_tokener_error_parse_utf8_string { throw JSONError.invalidUTF8 }
            let reason = status == json_tokener_continue ? "unexpected end" : String(cString: json_tokener_error_desc(status))
            throw JSONError.syntax(offset: end, reason: reason)
        }
        defer { json_object_put(root) }
        if let extra = bytes[end...].firstIndex(where: { !isWhitespace($0) }) {
            throw JSONError.trailingCharacters(offset: extra)
        }
        try JSONStrictness.check(UnsafeRawBufferPointer(rebasing: bytes[..<end]))
        return convert(root)
    }

    /// Parses a string.
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parse(UnsafeRawBufferPointer($0)) }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func convert(_ object: OpaquePointer?) -> JSONValue {
        guard let object else { return .null }
        switch json_object_get_type(object) {
        case json_type_null: return .null
        case json_type_boolean: return .bool(json_object_get_boolean(object) != 0)
        case json_type_int: return .int(json_object_get_int64(object))
        case json_type_double: return .double(json_object_get_double(object))
        case json_type_string:
            let length = Int(json_object_get_string_len(object))
            let pointer = UnsafeRawPointer(json_object_get_string(object)!)
            return .string(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
        case json_type_array:
            let count = json_object_array_length(object)
            return .array((0 ..< count).map { convert(json_object_array_get_idx(object, $0)) })
        case json_type_object:
            var members: [JSONMember] = []
            var iterator = json_object_iter_begin(object)
            let end = json_object_iter_end(object)
            var last = end
            while json_object_iter_equal(&iterator, &last) == 0 {
                let key = String(cString: json_object_iter_peek_name(&iterator))
                members.append(JSONMember(key, convert(json_object_iter_peek_value(&iterator))))
                json_object_iter_next(&iterator)
            }
            return .object(members)
        default: return .null
        }
    }
}
