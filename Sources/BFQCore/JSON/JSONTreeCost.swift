/// What parsing a JSON text costs in memory, estimated from its punctuation before json-c builds anything.
///
/// json-c's tree and the `JSONValue` made from it cost far more than the text: an empty object `{}` takes about
/// 800 bytes (json-c preallocates a hash table of 16 entries), `[]` about 180, a number or string about 100 (figures
/// measured with json-c 0.16). A text that is all such small values would make a reader allocate hundreds of times
/// its size, so `JSONParser` refuses texts whose estimate exceeds `limit(textBytes:)`: 8 bytes per byte of text plus
/// 64 MiB. Real headers and manifests estimate at 10 to 48 bytes per byte (a quantized SD UNet's manifest: 34), so
/// texts up to 1.6 MB always pass.
enum JSONTreeCost {
    static let objectBytes = 1024
    static let arrayBytes = 256
    /// Any other value, or the key of an object member.
    static let valueBytes = 128

    static let bytesPerTextByte = 8
    static let allowance = 64 << 20

    /// The most a text of `textBytes` may cost.
    static func limit(textBytes: Int) -> Int { allowance + bytesPerTextByte * textBytes }

    /// An upper estimate of the bytes `text` takes once parsed: every `{`, `[`, string, `,` and `:` outside strings
    /// starts a value or a member, plus the first value.
    static func estimate(_ text: UnsafeRawBufferPointer) -> Int {
        var cost = valueBytes
        var inString = false, escaped = false
        for byte in text {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "{"): cost += objectBytes
            case UInt8(ascii: "["): cost += arrayBytes
            case UInt8(ascii: "\""):
                inString = true
                cost += valueBytes
            case UInt8(ascii: ","), UInt8(ascii: ":"): cost += valueBytes
            default: break
            }
        }
        return cost
    }
}
