/// The central directory of a zip archive held in a mapped file, read without copying record data.
///
/// Handles ZIP64 (end-of-central-directory locator and record, zip64 extra fields). Every offset and size read
/// from the file is checked against the file size with overflow-checked arithmetic before it is used.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: Int
        let flags: Int
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let path: String
    let entries: [Entry]
    private let bytes: UnsafeRawBufferPointer
    private let byName: [String: Int]

    static let localSignature: UInt32 = 0x0403_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let endSignature: UInt32 = 0x0605_4b50
    static let end64Signature: UInt32 = 0x0606_4b50
    static let locatorSignature: UInt32 = 0x0706_4b50

    init(path: String, bytes: UnsafeRawBufferPointer) throws {
        self.path = path
        self.bytes = bytes
        let count = bytes.count
        func fail(_ offset: Int, _ rule: String) -> PyTorchError { .zip(path: path, entry: "", offset: offset, rule: rule) }

        guard let end = ZipArchive.findEnd(bytes) else { throw fail(count, "no end-of-central-directory record") }
        var entryCount = bytes.le16(end + 10)
        var directorySize = bytes.le32(end + 12)
        var directoryOffset = bytes.le32(end + 16)
        guard bytes.le16(end + 4) == 0, bytes.le16(end + 6) == 0 else { throw fail(end, "multi-disk archives are not supported") }

        // ZIP64: a locator sits right before the classic record and points at the zip64 record.
        if end >= 20, bytes.le32(end - 20) == Int(ZipArchive.locatorSignature) {
            let record = bytes.le64(end - 20 + 8)
            guard record >= 0, record <= count - 56, bytes.le32(record) == Int(ZipArchive.end64Signature) else {
                throw fail(end - 20, "ZIP64 locator points to \(record), which holds no ZIP64 end record")
            }
            entryCount = bytes.le64(record + 32)
            directorySize = bytes.le64(record + 40)
            directoryOffset = bytes.le64(record + 48)
        }
        guard directoryOffset >= 0, directorySize >= 0, entryCount >= 0 else {
            throw fail(end, "central directory offset or size out of range")
        }
        let (directoryEnd, overflow) = directoryOffset.addingReportingOverflow(directorySize)
        guard !overflow, directoryEnd <= count else {
            throw fail(directoryOffset, "central directory (\(directorySize) bytes at \(directoryOffset)) runs past the end of the file (\(count) bytes)")
        }
        guard entryCount <= directorySize / 46 else {
            throw fail(directoryOffset, "\(entryCount) entries cannot fit in a \(directorySize)-byte central directory")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var byName: [String: Int] = [:]
        byName.reserveCapacity(entryCount)
        var position = directoryOffset
        for _ in 0 ..< entryCount {
            guard directoryEnd - position >= 46 else { throw fail(position, "central directory truncated") }
            guard bytes.le32(position) == Int(ZipArchive.centralSignature) else {
                throw fail(position, "bad central directory signature")
            }
            let nameLength = bytes.le16(position + 28), extraLength = bytes.le16(position + 30)
            let commentLength = bytes.le16(position + 32)
            let recordLength = 46 + nameLength + extraLength + commentLength
            guard directoryEnd - position >= recordLength else { throw fail(position, "central directory truncated") }
            let name = String(decoding: bytes[position + 46 ..< position + 46 + nameLength], as: UTF8.self)
            let extra = position + 46 + nameLength
            let fields = try ZipArchive.widened([bytes.le32(position + 24), bytes.le32(position + 20), bytes.le32(position + 42)],
                                                extra: extra ..< extra + extraLength, in: bytes, path: path, entry: name)
            let (size, compressed, local) = (fields[0], fields[1], fields[2])
            guard size >= 0, compressed >= 0, local >= 0, local < count else {
                throw PyTorchError.zip(path: path, entry: name, offset: position, rule: "local header offset \(local) is past the end of the file (\(count) bytes)")
            }
            if byName[name] != nil { throw PyTorchError.zip(path: path, entry: name, offset: position, rule: "duplicate entry name") }
            byName[name] = entries.count
            entries.append(Entry(name: name, method: bytes.le16(position + 10), flags: bytes.le16(position + 8),
                                 compressedSize: compressed, size: size, localHeaderOffset: local))
            position += recordLength
        }
        self.entries = entries
        self.byName = byName
    }

    func entry(named name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The folder all entries lie in, torch's rule: the first entry's folder, and no entry outside it.
    func rootFolder() throws -> String {
        guard let first = entries.first else { throw PyTorchError.zip(path: path, entry: "", offset: 0, rule: "archive has no entries") }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw PyTorchError.zip(path: path, entry: first.name, offset: first.localHeaderOffset,
                                   rule: "is not in a folder; torch keeps every record under one root folder")
        }
        let root = String(first.name[..<slash])
        if let stray = entries.first(where: { !$0.name.hasPrefix(root + "/") }) {
            throw PyTorchError.zip(path: path, entry: stray.name, offset: stray.localHeaderOffset,
                                   rule: "is outside the root folder '\(root)/' of the first entry; torch refuses such archives")
        }
        return root
    }

    /// The file byte range holding the stored data of `entry`, found from its local header.
    func dataRange(of entry: Entry) throws -> Range<Int> {
        func fail(_ offset: Int, _ rule: String) -> PyTorchError { .zip(path: path, entry: entry.name, offset: offset, rule: rule) }
        guard entry.flags & 1 == 0 else { throw fail(entry.localHeaderOffset, "entry is encrypted") }
        guard entry.method == 0 else { throw PyTorchError.compressedEntry(path: path, entry: entry.name, method: entry.method) }
        guard entry.compressedSize == entry.size else {
            throw fail(entry.localHeaderOffset, "stored entry has compressed size \(entry.compressedSize) but size \(entry.size)")
        }
        let header = entry.localHeaderOffset
        guard bytes.count - header >= 30 else { throw fail(header, "local header runs past the end of the file") }
        guard bytes.le32(header) == Int(ZipArchive.localSignature) else { throw fail(header, "bad local header signature") }
        let nameLength = bytes.le16(header + 26), extraLength = bytes.le16(header + 28)
        let start = header + 30 + nameLength + extraLength
        let (end, overflow) = start.addingReportingOverflow(entry.size)
        guard start <= bytes.count, !overflow, end <= bytes.count else {
            throw fail(start, "data (\(entry.size) bytes at \(start)) runs past the end of the file (\(bytes.count) bytes)")
        }
        // The local header repeats the name, and the sizes unless a data descriptor follows the data (flag bit 3).
        let localName = String(decoding: bytes[header + 30 ..< header + 30 + nameLength], as: UTF8.self)
        guard localName.utf8.elementsEqual(entry.name.utf8) else {
            throw fail(header, "local header names '\(localName)', the central directory '\(entry.name)'")
        }
        if bytes.le16(header + 6) & 8 == 0 {
            let sizes = try ZipArchive.widened([bytes.le32(header + 22), bytes.le32(header + 18)],
                                               extra: header + 30 + nameLength ..< start, in: bytes, path: path, entry: entry.name)
            guard sizes == [entry.size, entry.compressedSize] else {
                throw fail(header, "local header sizes \(sizes[0]) and \(sizes[1]) (compressed) differ from the central directory's \(entry.size) and \(entry.compressedSize)")
            }
        }
        return start ..< end
    }

    /// `fields` (size, compressed size, then optionally the local header offset) with each one saturated at 0xFFFFFFFF
    /// replaced, in that order, by the next 8 bytes of the zip64 extra field (id 1) found in `extra`.
    private static func widened(_ fields: [Int], extra: Range<Int>, in bytes: UnsafeRawBufferPointer, path: String,
                                entry: String) throws -> [Int] {
        var fields = fields
        var position = extra.lowerBound
        while extra.upperBound - position >= 4 {
            let id = bytes.le16(position), length = bytes.le16(position + 2)
            guard extra.upperBound - position - 4 >= length else {
                throw PyTorchError.zip(path: path, entry: entry, offset: position, rule: "extra field runs past its record")
            }
            if id == 1 {
                var field = position + 4
                for index in fields.indices where fields[index] == 0xFFFF_FFFF {
                    guard position + 4 + length - field >= 8 else {
                        throw PyTorchError.zip(path: path, entry: entry, offset: field, rule: "zip64 extra field too short")
                    }
                    fields[index] = bytes.le64(field)
                    field += 8
                }
            }
            position += 4 + length
        }
        return fields
    }

    /// Offset of the end-of-central-directory record: the last signature whose comment fits in the file.
    static func findEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 22 else { return nil }
        var position = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        while position >= lowest {
            if bytes.le32(position) == Int(endSignature), position + 22 + bytes.le16(position + 20) <= bytes.count {
                return position
            }
            position -= 1
        }
        return nil
    }
}

fileprivate extension UnsafeRawBufferPointer {
    /// Little-endian unsigned loads at a byte offset the caller has bounds-checked.
    @inline(__always) func le16(_ offset: Int) -> Int { Int(UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))) }
    @inline(__always) func le32(_ offset: Int) -> Int { Int(UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
    /// A u64 as Int; values above Int.max come back negative, which callers reject.
    @inline(__always) func le64(_ offset: Int) -> Int { Int(truncatingIfNeeded: UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))) }
}
