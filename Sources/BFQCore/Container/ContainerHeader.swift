import CBFQShims

/// The 128-byte header of a .bfq file (spec/bfq.md section 2.1).
struct ContainerHeader: Equatable {
    static let size = 128
    static let magic: [UInt8] = [0x89, 0x42, 0x46, 0x51, 0x0D, 0x0A, 0x1A, 0x0A]
    static let majorVersion: UInt16 = 1
    static let minorVersion: UInt16 = 1
    /// Flag bit 0 (since 1.1): some tensor has byte-packed codes, which a 1.0 reader would misread; 1.0 readers
    /// refuse any flag.
    static let bytePackingFlag: UInt32 = 1
    static let knownFlags = bytePackingFlag

    var major = majorVersion
    var minor = minorVersion
    var flags: UInt32 = 0
    var tableOffset: UInt64 = 0
    var sectionCount: UInt64 = 0
    var manifestOffset: UInt64 = 0
    var manifestSize: UInt64 = 0
    var fileSize: UInt64 = 0
    var tableCRC: UInt32 = 0
    var manifestCRC: UInt32 = 0

    /// The header bytes, with header_crc32 filled in.
    var bytes: [UInt8] {
        var out = ContainerHeader.magic
        out.reserveCapacity(ContainerHeader.size)
        LittleEndian.append(major, to: &out)
        LittleEndian.append(minor, to: &out)
        LittleEndian.append(flags, to: &out)
        for value in [tableOffset, sectionCount, manifestOffset, manifestSize, fileSize] { LittleEndian.append(value, to: &out) }
        LittleEndian.append(tableCRC, to: &out)
        LittleEndian.append(manifestCRC, to: &out)
        LittleEndian.append(bfq_crc32(0, out, 64), to: &out)
        out += [UInt8](repeating: 0, count: ContainerHeader.size - out.count)
        return out
    }

    /// Parses and checks invariants 1 to 3 (magic, version, header CRC, unknown flags and reserved bytes).
    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard bytes.count >= ContainerHeader.size, bytes.starts(with: ContainerHeader.magic) else {
            throw ContainerError.notBFQ(path: path)
        }
        major = LittleEndian.load(bytes, 8)
        minor = LittleEndian.load(bytes, 10)
        guard major == ContainerHeader.majorVersion else {
            throw ContainerError.unsupportedVersion(path: path, major: major, minor: minor)
        }
        let stored: UInt32 = LittleEndian.load(bytes, 64)
        let computed = bfq_crc32(0, bytes.baseAddress, 64)
        guard stored == computed else { throw ContainerError.headerChecksum(path: path, stored: stored, computed: computed) }
        flags = LittleEndian.load(bytes, 12)
        if flags & ~ContainerHeader.knownFlags != 0 { throw ContainerError.reservedNotZero(path: path, offset: 12) }
        if let nonzero = (68 ..< ContainerHeader.size).first(where: { bytes[$0] != 0 }) {
            throw ContainerError.reservedNotZero(path: path, offset: nonzero)
        }
        tableOffset = LittleEndian.load(bytes, 16)
        sectionCount = LittleEndian.load(bytes, 24)
        manifestOffset = LittleEndian.load(bytes, 32)
        manifestSize = LittleEndian.load(bytes, 40)
        fileSize = LittleEndian.load(bytes, 48)
        tableCRC = LittleEndian.load(bytes, 56)
        manifestCRC = LittleEndian.load(bytes, 60)
    }

    init() {}
}

/// Little-endian integers in byte buffers.
enum LittleEndian {
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func load<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
