import CBFQShims

/// The C tables that turn packed groups back into codes for one layout (`bfq_code_tables`), freed with the object.
final class CodeTables: @unchecked Sendable {
    let layout: CodeLayout
    let pointer: OpaquePointer

    init(_ layout: CodeLayout) {
        self.layout = layout
        guard let pointer = bfq_code_tables_create(UInt32(layout.levels), UInt32(layout.codesPerGroup),
                                                   UInt32(layout.bitsPerGroup)) else {
            fatalError("out of memory for the code tables of \(layout.levels) levels")
        }
        self.pointer = pointer
    }

    deinit { bfq_code_tables_free(pointer) }

    /// Why the C kernels refused `row` of `packed` (rows of `rowBytes` bytes holding `columns` codes).
    func rowError(_ row: Int, in packed: UnsafeRawBufferPointer, rowBytes: Int, columns: Int) -> PackingError {
        var group = 0
        var value: UInt32 = 0
        let start = packed.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * rowBytes
        switch bfq_check_row(pointer, start, rowBytes, columns, &group, &value) {
        case 1: return .invalidGroup(row: row, group: group, value: Int(value), limit: layout.groupLimit)
        default: return .nonzeroPadding(row: row)
        }
    }
}
