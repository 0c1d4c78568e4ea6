import CBFQShims
import COpenBLAS

/// Error-compensating rounding (Optimal Brain Quantization as GPTQ computes it: Frantar et al., arXiv 2210.17323)
/// of one layer whose quantizer parameters are fixed (the row's grid or group scales, or its table, from the nearest
/// rounding): columns are rounded one at a time and each one's error is spread over the columns not yet rounded
/// through the upper Cholesky factor of H^-1, H the layer's input second moments (`LayerInputMoments`, per diagonal
/// block), damped by `damping` x mean diag H. Within a block, `order` decides which columns go first; updates beyond
/// `lazyColumns` columns are deferred to one matrix product per batch of columns. Rows are independent: they run in
/// chunks of `chunkRows` on all threads, so the codes are the same for any thread count.
struct ErrorCompensation {
    static let lazyColumns = 128
    static let chunkRows = 32
    /// Damping multiplies by 10 after a failed factorisation, at most this many times.
    static let dampingRetries = 4

    var damping: Double
    var order: QuantizationOptions.ColumnOrder

    /// The compensated codes of `weights` (rows x `moments.columns`, finite) with `start`'s parameters, and the largest
    /// damping a block needed; nil when H carries no energy, a block stays not positive definite after the retries, or
    /// the sweep meets a value that is not finite.
    func codes(for weights: [Float], start: QuantizationResult, moments: LayerInputMoments) -> (codes: [UInt16], damping: Double)? {
        let (rows, columns) = (start.rows, start.columns)
        // H's diagonal (sums over the positions, as H is).
        let diagonal = moments.meanSquares.map { $0 * Float(moments.trainingPositions) }
        let meanDiagonal = diagonal.reduce(0.0) { $0 + Double($1) } / Double(max(columns, 1))
        guard meanDiagonal > 0, meanDiagonal.isFinite else { return nil }
        var params = bfq_compensate_params()
        let parameters: [Float], perRow: Int, groupSize: Int?
        switch start.values {
        case let .grid(scales, group, _):
            (parameters, perRow, groupSize) = (scales, scales.count / max(rows, 1), group)
            params.half = Int32(start.levels / 2)
            params.qmax = Int32(start.levels - 1 - start.levels / 2)
        case let .palette(entries, _):
            (parameters, perRow, groupSize) = (entries, start.levels, nil)
            params.palette = 1
            params.levels = UInt32(start.levels)
        }
        var codes = [UInt16](repeating: 0, count: rows * columns)
        var largestDamping = damping
        for (index, block) in moments.blocks.enumerated() {
            let n = block.size
            let permutation = order == .natural ? Array(0 ..< n)
                : (0 ..< n).sorted { diagonal[block.start + $0] > diagonal[block.start + $1]
                    || diagonal[block.start + $0] == diagonal[block.start + $1] && $0 < $1 }
            guard let (u, used) = factor(moments.hessians[index], n: n, permutation: permutation, meanDiagonal: meanDiagonal) else {
                return nil
            }
            largestDamping = max(largestDamping, used)
            let scaleIndex = groupSize.map { group in permutation.map { UInt32((block.start + $0) / group) } }
            guard let blockCodes = sweep(weights, rows: rows, columns: columns, block: block, permutation: permutation,
                                         u: u, params: params, parameters: parameters, perRow: perRow, scaleIndex: scaleIndex) else {
                return nil
            }
            for row in 0 ..< rows {
                for (i, column) in permutation.enumerated() { codes[row * columns + block.start + column] = blockCodes[row * n + i] }
            }
        }
        return (codes, largestDamping)
    }

    /// U for the block's H permuted and damped, raising the damping tenfold while the factorisation fails.
    private func factor(_ h: [Float], n: Int, permutation: [Int], meanDiagonal: Double) -> ([Float], Double)? {
        var permuted = [Float](repeating: 0, count: n * n)
        for i in 0 ..< n {
            for j in 0 ..< n { permuted[i * n + j] = h[permutation[i] * n + permutation[j]] }
        }
        var fraction = damping
        for _ in 0 ... Self.dampingRetries {
            let lambda = Float(fraction * meanDiagonal)
            var damped = permuted
            for i in 0 ..< n { damped[i * n + i] += lambda }
            if let u = damped.withUnsafeBufferPointer({ InverseHessianFactor.upper(of: $0, n: n) }) { return (u, fraction) }
            fraction *= 10
        }
        return nil
    }

    /// The sweep over one block's columns (in `permutation` order): codes rows x n in that order, or nil.
    private func sweep(_ weights: [Float], rows: Int, columns: Int, block: (start: Int, size: Int), permutation: [Int],
                       u: [Float], params: bfq_compensate_params, parameters: [Float], perRow: Int,
                       scaleIndex: [UInt32]?) -> [UInt16]? {
        let n = block.size, lazy = Self.lazyColumns, chunk = Self.chunkRows
        var w = [Float](repeating: 0, count: rows * n)
        for row in 0 ..< rows {
            for (i, column) in permutation.enumerated() { w[row * n + i] = weights[row * columns + block.start + column] }
        }
        var codes = [UInt16](repeating: 0, count: rows * n)
        var failed = [Bool](repeating: false, count: (rows + chunk - 1) / chunk)
        MatrixProduct.configure()
        w.withUnsafeMutableBufferPointer { w in
            codes.withUnsafeMutableBufferPointer { codes in
                failed.withUnsafeMutableBufferPointer { failed in
                    u.withUnsafeBufferPointer { u in
                        parameters.withUnsafeBufferPointer { values in
                            scaleIndex.withUnsafeBufferPointerIfPresent { scaleIndex in
                                var params = params
                                Parallel.forEach(failed.count) { task in
                                    let first = task * chunk, count = min(chunk, rows - first)
                                    var errors = [Float](repeating: 0, count: count * lazy)
                                    for b0 in stride(from: 0, to: n, by: lazy) {
                                        let width = min(lazy, n - b0)
                                        for row in first ..< first + count {
                                            let status = bfq_compensate_row(
                                                &params, w.baseAddress! + row * n + b0, u.baseAddress! + b0 * n + b0, n, width,
                                                values.baseAddress! + row * perRow, scaleIndex.map { $0.baseAddress! + b0 },
                                                codes.baseAddress! + row * n + b0, &errors[(row - first) * lazy])
                                            if status != 0 { failed[task] = true; return }
                                        }
                                        guard b0 + width < n else { continue }
                                        // The columns after the batch: W[:, b1:] -= E U[b0:b1, b1:].
                                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(count), Int32(n - b0 - width),
                                                    Int32(width), -1, errors, Int32(lazy), u.baseAddress! + b0 * n + b0 + width,
                                                    Int32(n), 1, w.baseAddress! + first * n + b0 + width, Int32(n))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return failed.contains(true) ? nil : codes
    }
}
