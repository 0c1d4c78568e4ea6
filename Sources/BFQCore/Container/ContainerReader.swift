import CBFQShims

/// Reads a .bfq file: opening checks reader invariants 1 to 11 of spec/bfq.md; each section is checked
/// (invariant 12) when it is read, and only the sections asked for are read.
public final class ContainerReader: @unchecked Sendable {
    public let file: MappedFile
    public let manifest: ContainerManifest
    public let sections: [SectionEntry]

    static let maximumManifestSize = 64 << 20
    static let maximumSections = 1 << 20

    /// Maps nothing itself: `file` is the mapped .bfq.
    public init(_ file: MappedFile) throws {
        self.file = file
        let path = file.path
        let bytes = file.bytes
        let header = try ContainerHeader(bytes, path: path)
        guard header.fileSize == UInt64(bytes.count) else {
            throw ContainerError.fileSizeMismatch(path: path, declared: header.fileSize, actual: bytes.count)
        }
        func bounds(_ rule: String) -> ContainerError { .tableOutOfBounds(path: path, rule: rule) }
        guard header.tableOffset % 64 == 0, header.tableOffset >= UInt64(ContainerHeader.size) else {
            throw bounds("table_offset \(header.tableOffset) is not a multiple of 64 at or after 128")
        }
        guard header.sectionCount <= UInt64(Self.maximumSections) else {
            throw bounds("section_count \(header.sectionCount) exceeds \(Self.maximumSections)")
        }
        guard header.manifestSize <= UInt64(Self.maximumManifestSize) else {
            throw bounds("manifest_size \(header.manifestSize) exceeds \(Self.maximumManifestSize)")
        }
        let tableEnd = header.tableOffset.addingReportingOverflow(header.sectionCount * UInt64(SectionEntry.size))
        guard !tableEnd.overflow, header.manifestOffset == tableEnd.partialValue else {
            throw bounds("manifest_offset \(header.manifestOffset) is not table_offset + 40 x section_count")
        }
        let manifestEnd = header.manifestOffset.addingReportingOverflow(header.manifestSize)
        guard !manifestEnd.overflow, manifestEnd.partialValue == header.fileSize else {
            throw bounds("the manifest does not end at the end of the file")
        }
        let tableStart = Int(header.tableOffset)
        let table = UnsafeRawBufferPointer(rebasing: bytes[tableStart ..< Int(header.manifestOffset)])
        let tableCRC = bfq_crc32(0, table.baseAddress, table.count)
        guard tableCRC == header.tableCRC else { throw ContainerError.tableChecksum(path: path, stored: header.tableCRC, computed: tableCRC) }

        var entries: [SectionEntry] = []
        entries.reserveCapacity(Int(header.sectionCount))
        var previousEnd = UInt64(ContainerHeader.size)
        for index in 0 ..< Int(header.sectionCount) {
            let slice = UnsafeRawBufferPointer(rebasing: table[index * SectionEntry.size ..< (index + 1) * SectionEntry.size])
            let entry = try SectionEntry(slice, index: index, tableOffset: header.tableOffset, path: path, tableStart: tableStart)
            guard entry.offset >= previousEnd else {
                throw ContainerError.sectionBounds(path: path, section: index, rule: "starts at \(entry.offset), inside the previous section or header (ends \(previousEnd))")
            }
            previousEnd = entry.offset + entry.storedSize
            entries.append(entry)
        }
        sections = entries

        let text = UnsafeRawBufferPointer(rebasing: bytes[Int(header.manifestOffset) ..< bytes.count])
        let manifestCRC = bfq_crc32(0, text.baseAddress, text.count)
        guard manifestCRC == header.manifestCRC else {
            throw ContainerError.manifestChecksum(path: path, stored: header.manifestCRC, computed: manifestCRC)
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch let error as JSONError {
            throw ContainerError.manifestInvalid(path: path, rule: "\(error)")
        }
        manifest = try ContainerManifest(json: json, path: path)
        try Self.checkPaddingIsZero(bytes, sections: entries, tableOffset: tableStart, path: path)
        try ContainerValidation(path: path, sections: entries,
                                bytePacking: header.flags & ContainerHeader.bytePackingFlag != 0).check(manifest)
    }

    /// Invariant 9: the bytes between sections, and up to the table, are zero.
    private static func checkPaddingIsZero(_ bytes: UnsafeRawBufferPointer, sections: [SectionEntry], tableOffset: Int,
                                           path: String) throws {
        var position = ContainerHeader.size
        for (start, size) in sections.map({ (Int($0.offset), Int($0.storedSize)) }) + [(tableOffset, 0)] {
            if let nonzero = (position ..< start).first(where: { bytes[$0] != 0 }) {
                throw ContainerError.reservedNotZero(path: path, offset: nonzero)
            }
            position = start + size
        }
    }

    /// Calls `body` with the decoded bytes of section `index` after checking its CRCs and, when compressed, its
    /// zstd frame (invariant 12). Uncompressed sections are passed straight from the mapping.
    public func withSection<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let path = file.path
        let entry = sections[index]
        let range = Int(entry.offset) ..< Int(entry.offset + entry.storedSize)
        let stored = file.bytes(in: range)
        defer { file.release(range) }  // keeps reading a whole file from growing the resident set
        let storedCRC = bfq_crc32(0, stored.baseAddress, stored.count)
        guard storedCRC == entry.storedCRC else {
            throw ContainerError.sectionChecksum(path: path, section: index, which: "stored", stored: entry.storedCRC, computed: storedCRC)
        }
        guard entry.compression == .zstd else { return try body(stored) }
        let decoded = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(entry.decodedSize), alignment: 64)
        defer { decoded.deallocate() }
        do {
            try Zstd.decompress(stored, into: decoded)
        } catch let error as ZstdError {
            throw ContainerError.decompression(path: path, section: index, reason: "\(error)")
        }
        let decodedCRC = bfq_crc32(0, decoded.baseAddress, decoded.count)
        guard decodedCRC == entry.decodedCRC else {
            throw ContainerError.sectionChecksum(path: path, section: index, which: "decoded", stored: entry.decodedCRC, computed: decodedCRC)
        }
        return try body(UnsafeRawBufferPointer(decoded))
    }
}

extension ContainerReader {
    /// The time-feature cache as f32 values laid out [timestep][layer][width] (spec/bfq.md section 3.3), or nil when
    /// the file has none.
    public func timeFeatureValues() throws -> [Float]? {
        guard let cache = manifest.timeFeatures else { return nil }
        return try floats(inSection: cache.features.index, of: .f16)
    }

    /// Section `index`, holding values of `type` (f16 or f32), widened to f32.
    func floats(inSection index: Int, of type: DType) throws -> [Float] {
        try withSection(index) { bytes in
            let count = bytes.count / type.byteSize
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                ElementConverter.convert(bytes.baseAddress!, type, to: UnsafeMutableRawPointer(buffer.baseAddress!), .f32, count: count)
                initialized = count
            }
        }
    }
}
