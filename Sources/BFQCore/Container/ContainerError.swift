/// Why a .bfq file was refused: one case per reader invariant of spec/bfq.md section 8, each naming the file.
public enum ContainerError: Error, CustomStringConvertible, Equatable {
    case notBFQ(path: String)
    case unsupportedVersion(path: String, major: UInt16, minor: UInt16)
    case headerChecksum(path: String, stored: UInt32, computed: UInt32)
    case reservedNotZero(path: String, offset: Int)
    case fileSizeMismatch(path: String, declared: UInt64, actual: Int)
    case tableOutOfBounds(path: String, rule: String)
    case tableChecksum(path: String, stored: UInt32, computed: UInt32)
    case sectionBounds(path: String, section: Int, rule: String)
    case manifestChecksum(path: String, stored: UInt32, computed: UInt32)
    case manifestInvalid(path: String, rule: String)
    case sectionReference(path: String, rule: String)
    case encodingInvalid(path: String, tensor: String, rule: String)
    case sectionSize(path: String, tensor: String, role: String, declared: Int, expected: Int)
    case sectionChecksum(path: String, section: Int, which: String, stored: UInt32, computed: UInt32)
    case decompression(path: String, section: Int, reason: String)
    case codeInvalid(path: String, tensor: String, rule: String)

    public var description: String {
        switch self {
        case let .notBFQ(path): return "\(path): not a .bfq file (too short or wrong magic; invariant 1)"
        case let .unsupportedVersion(path, major, minor):
            return "\(path): format version \(major).\(minor) is not supported (this bfq reads 1.x; invariant 2)"
        case let .headerChecksum(path, stored, computed):
            return "\(path): header CRC-32 \(hex(computed)) does not match the stored \(hex(stored)) (invariant 3)"
        case let .reservedNotZero(path, offset): return "\(path): reserved or padding byte at offset \(offset) is not zero"
        case let .fileSizeMismatch(path, declared, actual):
            return "\(path): header says \(declared) bytes but the file has \(actual) (truncated or extended; invariant 4)"
        case let .tableOutOfBounds(path, rule): return "\(path): section table: \(rule) (invariant 5)"
        case let .tableChecksum(path, stored, computed):
            return "\(path): section table CRC-32 \(hex(computed)) does not match the stored \(hex(stored)) (invariant 6)"
        case let .sectionBounds(path, section, rule): return "\(path): section \(section): \(rule) (invariant 7)"
        case let .manifestChecksum(path, stored, computed):
            return "\(path): manifest CRC-32 \(hex(computed)) does not match the stored \(hex(stored)) (invariant 8)"
        case let .manifestInvalid(path, rule): return "\(path): manifest: \(rule)"
        case let .sectionReference(path, rule): return "\(path): manifest: \(rule) (invariant 10)"
        case let .encodingInvalid(path, tensor, rule): return "\(path): tensor \(tensor): \(rule) (invariant 11)"
        case let .sectionSize(path, tensor, role, declared, expected):
            return "\(path): tensor \(tensor): \(role) section holds \(declared) decoded bytes but needs \(expected) (invariant 11)"
        case let .sectionChecksum(path, section, which, stored, computed):
            return "\(path): section \(section): \(which) bytes have CRC-32 \(hex(computed)), not the stored \(hex(stored)) (invariant 12)"
        case let .decompression(path, section, reason): return "\(path): section \(section): \(reason) (invariant 12)"
        case let .codeInvalid(path, tensor, rule): return "\(path): tensor \(tensor): \(rule) (invariant 13)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
