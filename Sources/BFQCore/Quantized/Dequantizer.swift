import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// Decodes a quantized tensor's packed codes to f32 or f16 weights by table lookups: the only path by which
/// quantized weights reach the rest of bfq. Rows decode in parallel; the output does not depend on the thread count
/// or on whether the AVX2 or the portable kernels run.
public struct Dequantizer: Sendable {
    public let rows: Int
    public let columns: Int
    public let layout: CodeLayout
    public let values: QuantizedValues
    /// Bytes the packed codes occupy.
    public let packedByteCount: Int
    /// False runs the portable scalar kernels; true (unless `BFQ_SCALAR` is set) uses AVX2 when the CPU has it.
    var vectorized = getenv("BFQ_SCALAR") == nil
    /// False decodes on the caller's thread only; true spreads rows over `Parallel`'s threads.
    var parallel = true
    private let tables: CodeTables

    /// Codes decoded per task, so tasks are large enough to pay for a thread hop. Fixed, so output is too.
    static let codesPerTask = 65_536

    /// A dequantizer for `rows` x `columns` codes of `levels` levels, packed as `packing` says, that become weights
    /// as `values` says.
    public init(rows: Int, columns: Int, levels: Int, values: QuantizedValues, packing: CodePacking = .radix) throws {
        layout = try CodeLayout(levels: levels, packing: packing)
        _ = try CodeLayout.elementCount(rows: rows, columns: columns)
        packedByteCount = try layout.byteCount(rows: rows, columns: columns)
        try values.validate(rows: rows, columns: columns, levels: levels)
        (self.rows, self.columns, self.values) = (rows, columns, values)
        tables = CodeTables(layout)
    }

    /// Decodes `packed` (`packedByteCount` bytes) into `output`, rows x columns values of `dtype` (f32 or f16).
    /// Throws on a size mismatch, a group value at or above L^G, or nonzero padding (naming the first such row).
    public func decode(_ packed: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, as dtype: DType) throws {
        guard dtype == .f32 || dtype == .f16 else { throw PackingError.unsupportedOutput(dtype) }
        guard packed.count == packedByteCount else {
            throw PackingError.packedSizeMismatch(expected: packedByteCount, found: packed.count)
        }
        let (outputBytes, overflow) = (rows * columns).multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw PackingError.shapeInvalid(rows: rows, columns: columns) }
        guard output.count == outputBytes else { throw PackingError.outputSizeMismatch(expected: outputBytes, found: output.count) }
        guard outputBytes > 0 else { return }
        let rowBytes = packedByteCount / rows
        let failed = withJob(rowBytes: rowBytes, f16: dtype == .f16) { job in
            run(job, packed.baseAddress!.assumingMemoryBound(to: UInt8.self), output.baseAddress!)
        }
        if let failed { throw tables.rowError(failed, in: packed, rowBytes: rowBytes, columns: columns) }
    }

    /// Runs the C kernel over tasks of whole rows; returns the first row it refused.
    private func run(_ job: UnsafePointer<bfq_dequant_job>, _ packed: UnsafePointer<UInt8>,
                     _ output: UnsafeMutableRawPointer) -> Int? {
        let rowsPerTask = Swift.max(1, Self.codesPerTask / columns)
        let tasks = (rows + rowsPerTask - 1) / rowsPerTask
        let failures = UnsafeMutableBufferPointer<Int>.allocate(capacity: tasks)
        defer { failures.deallocate() }
        let task = { (index: Int) in
            let first = index * rowsPerTask
            failures[index] = bfq_dequantize_rows(job, packed, output, first, Swift.min(rowsPerTask, rows - first))
        }
        if parallel { Parallel.forEach(tasks, task) } else { (0 ..< tasks).forEach(task) }
        return failures.first { $0 >= 0 }
    }

    /// Calls `body` with the C description of this tensor, its arrays pinned for the call.
    private func withJob<R>(rowBytes: Int, f16: Bool, _ body: (UnsafePointer<bfq_dequant_job>) -> R) -> R {
        var job = bfq_dequant_job(tables: tables.pointer, columns: columns, row_bytes: rowBytes, scales: nil,
                                  group_size: columns, offsets: nil, palette: nil, palette_stride: 0,
                                  f16: f16 ? 1 : 0, vectorized: vectorized ? 1 : 0)
        switch values {
        case let .grid(scales, groupSize, offsets):
            job.group_size = groupSize ?? columns
            return scales.withUnsafeBufferPointer { scales in
                job.scales = scales.baseAddress
                guard let offsets else { return body(&job) }
                return offsets.withUnsafeBufferPointer { offsets in
                    job.offsets = offsets.baseAddress
                    return body(&job)
                }
            }
        case let .palette(table, perRow):
            job.palette_stride = perRow ? layout.levels : 0
            return table.withUnsafeBufferPointer { table in
                job.palette = table.baseAddress
                return body(&job)
            }
        }
    }
}
