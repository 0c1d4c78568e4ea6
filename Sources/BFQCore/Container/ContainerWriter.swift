import CBFQShims

/// Streams a .bfq file: sections one at a time (each zstd-compressed when that makes it smaller), then the section
/// table and the manifest, then the header (flag bit 0 set when some tensor has byte-packed codes). Memory stays bounded by the largest section.
public final class ContainerWriter {
    private let out: AtomicFileWriter
    private let compressionLevel: Int32
    private var entries: [SectionEntry] = []

    /// Opens the temporary output file; `compressionLevel` is zstd's (fixed, so output bytes are reproducible).
    public init(target: OutputTarget, compressionLevel: Int32 = 3) throws {
        out = try target.open()
        self.compressionLevel = compressionLevel
        try out.writeZeros(ContainerHeader.size)
    }

    /// Appends a section holding `bytes` once decoded and returns the reference the manifest records.
    public func addSection(_ bytes: UnsafeRawBufferPointer, compress: Bool = true) throws -> ContainerTensor.SectionReference {
        try append(bytes, compressed: compress && !bytes.isEmpty ? try Zstd.compress(bytes, level: compressionLevel) : [])
    }

    /// Appends the section of a quantized tensor's codes (`rows` x `columns`, each below `levels`) packed as radix and
    /// as bytes, each compressed with `Zstd.compressCodes`, whichever stores fewer bytes (radix on a tie, and when
    /// both packings give the same bytes). The same codes always give the same choice and bytes.
    public func addCodes(_ codes: [UInt16], rows: Int, columns: Int,
                         levels: Int) throws -> (packing: CodePacking, section: ContainerTensor.SectionReference) {
        try addCodes(try EncodedCodes(codes, rows: rows, columns: columns, levels: levels))
    }

    /// Appends the section of codes already packed and compressed.
    public func addCodes(_ encoded: EncodedCodes) throws -> (packing: CodePacking, section: ContainerTensor.SectionReference) {
        (encoded.packing, try encoded.packed.withUnsafeBytes { try append($0, compressed: encoded.compressed) })
    }

    /// Writes `bytes` at the next multiple of 64, as `compressed` when that is non-empty and smaller.
    private func append(_ bytes: UnsafeRawBufferPointer, compressed: [UInt8]) throws -> ContainerTensor.SectionReference {
        try out.writeZeros((64 - out.offset % 64) % 64)
        let decodedCRC = bfq_crc32(0, bytes.baseAddress, bytes.count)
        var entry = SectionEntry(offset: UInt64(out.offset), storedSize: UInt64(bytes.count), decodedSize: UInt64(bytes.count),
                                 storedCRC: decodedCRC, decodedCRC: decodedCRC, compression: .none)
        if !compressed.isEmpty, compressed.count < bytes.count {
            entry.storedSize = UInt64(compressed.count)
            entry.storedCRC = bfq_crc32(0, compressed, compressed.count)
            entry.compression = .zstd
            try out.write(compressed)
        } else {
            try out.write(bytes)
        }
        entries.append(entry)
        return ContainerTensor.SectionReference(index: entries.count - 1, storedSize: Int(entry.storedSize),
                                                decodedSize: bytes.count, crc32: decodedCRC)
    }

    /// Writes the table and `manifest` (with its totals filled in), fills in the header and renames the file into place.
    /// Returns the manifest as written and the file's size.
    @discardableResult
    public func finish(manifest: ContainerManifest) throws -> (manifest: ContainerManifest, fileSize: Int) {
        try out.writeZeros((64 - out.offset % 64) % 64)
        var header = ContainerHeader()
        header.tableOffset = UInt64(out.offset)
        header.sectionCount = UInt64(entries.count)
        if manifest.tensors.contains(where: { $0.packing == .bytes }) { header.flags = ContainerHeader.bytePackingFlag }
        let table = entries.flatMap(\.bytes)
        try out.write(table)
        // The totals count the whole file, manifest included, whose length depends on them: settle the fixed point.
        var manifest = manifest
        var text: [UInt8] = []
        for _ in 0 ..< 8 {
            manifest.totals = ContainerAccounting(manifest: manifest, fileSize: out.offset + text.count).totals
            let next = Array(JSONWriter.compact(manifest.json).utf8)
            if next == text { break }
            text = next
        }
        header.manifestOffset = UInt64(out.offset)
        try out.write(text)
        header.manifestSize = UInt64(text.count)
        header.fileSize = UInt64(out.offset)
        header.tableCRC = bfq_crc32(0, table, table.count)
        header.manifestCRC = bfq_crc32(0, text, text.count)
        try out.patch(header.bytes, at: 0)
        try out.commit()
        return (manifest, Int(header.fileSize))
    }
}
