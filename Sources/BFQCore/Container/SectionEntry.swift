/// One entry of the section table (spec/bfq.md section 2.2).
public struct SectionEntry: Equatable, Sendable {
    static let size = 40
    /// Largest decoded section: bounds what a small compressed frame can make a reader allocate.
    static let maximumDecodedSize: UInt64 = 1 << 32

    public enum Compression: UInt8, Sendable {
        case none = 0
        case zstd = 1
    }

    public var offset: UInt64
    public var storedSize: UInt64
    public var decodedSize: UInt64
    public var storedCRC: UInt32
    public var decodedCRC: UInt32
    public var compression: Compression

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(SectionEntry.size)
        for value in [offset, storedSize, decodedSize] { LittleEndian.append(value, to: &out) }
        LittleEndian.append(storedCRC, to: &out)
        LittleEndian.append(decodedCRC, to: &out)
        out.append(compression.rawValue)
        out += [UInt8](repeating: 0, count: 7)
        return out
    }

    init(offset: UInt64, storedSize: UInt64, decodedSize: UInt64, storedCRC: UInt32, decodedCRC: UInt32, compression: Compression) {
        self.offset = offset
        self.storedSize = storedSize
        self.decodedSize = decodedSize
        self.storedCRC = storedCRC
        self.decodedCRC = decodedCRC
        self.compression = compression
    }

    /// Parses entry `index` from `bytes` (exactly 40 bytes) and checks the per-entry rules of invariant 7
    /// that do not depend on its neighbours.
    init(_ bytes: UnsafeRawBufferPointer, index: Int, tableOffset: UInt64, path: String, tableStart: Int) throws {
        offset = LittleEndian.load(bytes, 0)
        storedSize = LittleEndian.load(bytes, 8)
        decodedSize = LittleEndian.load(bytes, 16)
        storedCRC = LittleEndian.load(bytes, 24)
        decodedCRC = LittleEndian.load(bytes, 28)
        func fail(_ rule: String) -> ContainerError { .sectionBounds(path: path, section: index, rule: rule) }
        guard let compression = Compression(rawValue: bytes[32]) else { throw fail("compression \(bytes[32]) is not 0 or 1") }
        self.compression = compression
        if let nonzero = (33 ..< SectionEntry.size).first(where: { bytes[$0] != 0 }) {
            throw ContainerError.reservedNotZero(path: path, offset: tableStart + index * SectionEntry.size + nonzero)
        }
        guard offset % 64 == 0, offset >= UInt64(ContainerHeader.size) else {
            throw fail("offset \(offset) is not a multiple of 64 at or after 128")
        }
        let (end, overflow) = offset.addingReportingOverflow(storedSize)
        guard !overflow, end <= tableOffset else { throw fail("bytes \(offset)+\(storedSize) run past the section table at \(tableOffset)") }
        guard decodedSize <= SectionEntry.maximumDecodedSize else {
            throw fail("decoded_size \(decodedSize) exceeds 4 GiB")
        }
        switch compression {
        case .none:
            guard decodedSize == storedSize, decodedCRC == storedCRC else {
                throw fail("uncompressed but its decoded size or CRC differs from the stored one")
            }
        case .zstd:
            let (limit, big) = storedSize.multipliedReportingOverflow(by: 65_536)
            guard big || decodedSize <= limit else { throw fail("decoded_size \(decodedSize) exceeds 65,536 x stored_size \(storedSize)") }
        }
    }
}
