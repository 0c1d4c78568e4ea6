/// Opcode names and the text encodings of protocol 0 strings.
extension PickleMachine {
    /// The pickletools name of an opcode byte, for messages.
    static func name(of opcode: UInt8) -> String {
        switch opcode {
        case 0x28: return "MARK"
        case 0x2E: return "STOP"
        case 0x30: return "POP"
        case 0x31: return "POP_MARK"
        case 0x32: return "DUP"
        case 0x46: return "FLOAT"
        case 0x49: return "INT"
        case 0x4A: return "BININT"
        case 0x4B: return "BININT1"
        case 0x4C: return "LONG"
        case 0x4D: return "BININT2"
        case 0x4E: return "NONE"
        case 0x50: return "PERSID"
        case 0x51: return "BINPERSID"
        case 0x52: return "REDUCE"
        case 0x53: return "STRING"
        case 0x54: return "BINSTRING"
        case 0x55: return "SHORT_BINSTRING"
        case 0x56: return "UNICODE"
        case 0x58: return "BINUNICODE"
        case 0x61: return "APPEND"
        case 0x62: return "BUILD"
        case 0x63: return "GLOBAL"
        case 0x64: return "DICT"
        case 0x7D: return "EMPTY_DICT"
        case 0x65: return "APPENDS"
        case 0x67: return "GET"
        case 0x68: return "BINGET"
        case 0x69: return "INST"
        case 0x6A: return "LONG_BINGET"
        case 0x6C: return "LIST"
        case 0x5D: return "EMPTY_LIST"
        case 0x6F: return "OBJ"
        case 0x70: return "PUT"
        case 0x71: return "BINPUT"
        case 0x72: return "LONG_BINPUT"
        case 0x73: return "SETITEM"
        case 0x74: return "TUPLE"
        case 0x29: return "EMPTY_TUPLE"
        case 0x75: return "SETITEMS"
        case 0x47: return "BINFLOAT"
        case 0x80: return "PROTO"
        case 0x81: return "NEWOBJ"
        case 0x82: return "EXT1"
        case 0x83: return "EXT2"
        case 0x84: return "EXT4"
        case 0x85: return "TUPLE1"
        case 0x86: return "TUPLE2"
        case 0x87: return "TUPLE3"
        case 0x88: return "NEWTRUE"
        case 0x89: return "NEWFALSE"
        case 0x8A: return "LONG1"
        case 0x8B: return "LONG4"
        case 0x42: return "BINBYTES"
        case 0x43: return "SHORT_BINBYTES"
        case 0x8C: return "SHORT_BINUNICODE"
        case 0x8D: return "BINUNICODE8"
        case 0x8E: return "BINBYTES8"
        case 0x8F: return "EMPTY_SET"
        case 0x90: return "ADDITEMS"
        case 0x91: return "FROZENSET"
        case 0x92: return "NEWOBJ_EX"
        case 0x93: return "STACK_GLOBAL"
        case 0x94: return "MEMOIZE"
        case 0x95: return "FRAME"
        case 0x96: return "BYTEARRAY8"
        case 0x97: return "NEXT_BUFFER"
        case 0x98: return "READONLY_BUFFER"
        default: return "opcode 0x\(String(opcode, radix: 16))"
        }
    }

    /// The bytes of a protocol 0 STRING operand: a Python repr quoted with ' or ", with backslash escapes.
    static func unquote(_ raw: [UInt8]) -> [UInt8]? {
        guard raw.count >= 2, let quote = raw.first, quote == 0x27 || quote == 0x22, raw.last == quote else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 1
        let end = raw.count - 1
        while i < end {
            let c = raw[i]
            i += 1
            guard c == 0x5C, i < end else { out.append(c); continue }
            let e = raw[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "0") ... UInt8(ascii: "7"):
                var value = Int(e - 48)
                var digits = 1
                while digits < 3, i < end, raw[i] >= 48, raw[i] <= 55 {
                    value = value * 8 + Int(raw[i] - 48)
                    i += 1
                    digits += 1
                }
                out.append(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "x"):
                guard end - i >= 2, let value = UInt8(String(decoding: raw[i ..< i + 2], as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
                i += 2
            default: out.append(e)  // \\ \' \" and unknown escapes keep the character
            }
        }
        return out
    }

    /// Decodes raw-unicode-escape: bytes are Latin-1 code points except \uXXXX and \UXXXXXXXX.
    static func rawUnicodeEscape(_ raw: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < raw.count {
            if raw[i] == 0x5C, i + 1 < raw.count, raw[i + 1] == UInt8(ascii: "u") || raw[i + 1] == UInt8(ascii: "U") {
                let width = raw[i + 1] == UInt8(ascii: "u") ? 4 : 8
                if raw.count - i - 2 >= width, let value = UInt32(String(decoding: raw[i + 2 ..< i + 2 + width], as: UTF8.self), radix: 16),
                   let scalar = Unicode.Scalar(value) {
                    scalars.append(scalar)
                    i += 2 + width
                    continue
                }
            }
            scalars.append(Unicode.Scalar(raw[i]))
            i += 1
        }
        return String(scalars)
    }
}
