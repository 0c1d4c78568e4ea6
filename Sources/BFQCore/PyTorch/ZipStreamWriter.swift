/// Writes a stored (uncompressed) zip archive sequentially through an `AtomicFileWriter`, as torch's
/// PyTorchStreamWriter lays it out: every record's data starts on a 64-byte boundary, padded by an "FB" extra
/// field in the local header. Sizes are known before the data; each CRC-32 is computed while the data streams
/// and patched into the local header afterwards. ZIP64 fields are used for any value at or above `zip64Threshold`
/// (0xFFFFFFFF normally; tests lower it). Timestamps are fixed (1980-01-01 00:00) so output is deterministic.
final class ZipStreamWriter {
    static let alignment = 64
    private static let dosDate = 0x21

    private struct Central {
        let name: [UInt8]
        let crc: UInt32
        let size: Int
        let offset: Int
    }

    let out: AtomicFileWriter
    let zip64Threshold: Int
    private var records: [Central] = []
    private var open: (name: [UInt8], size: Int, header: Int, dataStart: Int)?

    init(out: AtomicFileWriter, zip64Threshold: Int = 0xFFFF_FFFF) {
        self.out = out
        self.zip64Threshold = zip64Threshold
    }

    /// Writes a whole small record.
    func add(_ name: String, _ data: [UInt8]) throws {
        try begin(name, size: data.count)
        try out.write(data)
        try end()
    }

    /// Writes the local header of a record of `size` bytes; the caller then writes exactly `size` bytes and calls `end()`.
    func begin(_ name: String, size: Int) throws {
        let nameBytes = Array(name.utf8)
        let header = out.offset
        let wide = size >= zip64Threshold
        var extra: [UInt8] = []
        if wide { extra += le16(1) + le16(16) + le64(size) + le64(size) }
        let unpadded = header + 30 + nameBytes.count + extra.count + 4
        let padding = (ZipStreamWriter.alignment - unpadded % ZipStreamWriter.alignment) % ZipStreamWriter.alignment
        extra += [0x46, 0x42] + le16(padding) + [UInt8](repeating: 0x5A, count: padding)  // "FB" + 'Z' padding
        var bytes = le32(Int(ZipArchive.localSignature)) + le16(wide ? 45 : 20) + le16(0x0800) + le16(0)
        bytes += le16(0) + le16(ZipStreamWriter.dosDate) + le32(0)
        bytes += le32(wide ? 0xFFFF_FFFF : size) + le32(wide ? 0xFFFF_FFFF : size)
        bytes += le16(nameBytes.count) + le16(extra.count) + nameBytes + extra
        try out.write(bytes)
        open = (nameBytes, size, header, out.offset)
        out.beginCRC()
    }

    /// Finishes the open record: checks its size and patches its CRC-32 into the local header.
    func end() throws {
        let crc = out.endCRC()
        guard let record = open else { return }
        open = nil
        let written = out.offset - record.dataStart
        guard written == record.size else {
            throw PyTorchError.cannotWrite(path: out.path, tensor: String(decoding: record.name, as: UTF8.self),
                                           rule: "source wrote \(written) bytes, expected \(record.size)")
        }
        try out.patch(le32(Int(crc)), at: record.header + 14)
        records.append(Central(name: record.name, crc: crc, size: record.size, offset: record.header))
    }

    /// CRC-32s of the records written so far, in order.
    var crcs: [UInt32] { records.map(\.crc) }

    /// Writes the central directory and the end records.
    func finish() throws {
        let directoryOffset = out.offset
        var directory: [UInt8] = []
        for record in records {
            let wideSize = record.size >= zip64Threshold, wideOffset = record.offset >= zip64Threshold
            var extra: [UInt8] = []
            if wideSize { extra += le64(record.size) + le64(record.size) }
            if wideOffset { extra += le64(record.offset) }
            if !extra.isEmpty { extra = le16(1) + le16(extra.count) + extra }
            directory += le32(Int(ZipArchive.centralSignature)) + le16(45) + le16(wideSize || wideOffset ? 45 : 20)
            directory += le16(0x0800) + le16(0) + le16(0) + le16(ZipStreamWriter.dosDate) + le32(Int(record.crc))
            directory += le32(wideSize ? 0xFFFF_FFFF : record.size) + le32(wideSize ? 0xFFFF_FFFF : record.size)
            directory += le16(record.name.count) + le16(extra.count) + le16(0) + le16(0) + le16(0) + le32(0)
            directory += le32(wideOffset ? 0xFFFF_FFFF : record.offset) + record.name + extra
            if directory.count >= 1 << 20 {
                try out.write(directory)
                directory.removeAll(keepingCapacity: true)
            }
        }
        try out.write(directory)
        let directorySize = out.offset - directoryOffset
        let count = records.count
        let wide = count >= 0xFFFF || directoryOffset >= zip64Threshold || directorySize >= zip64Threshold
            || records.contains { $0.size >= zip64Threshold || $0.offset >= zip64Threshold }
        var end: [UInt8] = []
        if wide {
            let record64 = out.offset
            end += le32(Int(ZipArchive.end64Signature)) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
            end += le64(count) + le64(count) + le64(directorySize) + le64(directoryOffset)
            end += le32(Int(ZipArchive.locatorSignature)) + le32(0) + le64(record64) + le32(1)
        }
        end += le32(Int(ZipArchive.endSignature)) + le16(0) + le16(0)
        end += le16(wide ? 0xFFFF : count) + le16(wide ? 0xFFFF : count)
        end += le32(wide ? 0xFFFF_FFFF : directorySize) + le32(wide ? 0xFFFF_FFFF : directoryOffset) + le16(0)
        try out.write(end)
    }

    private func le16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian, Array.init) }
    private func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, Array.init) }
    private func le64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(truncatingIfNeeded: v).littleEndian, Array.init) }
}
