import CBFQShims

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

    /// Compensated results of `weights` on `start`'s parameters: the codes with those parameters and, for a grid with
    /// one scale per row, the codes again after refitting each row's scale to the codes under H
    /// (s = q^T H w / q^T H q, stored as f16), with the scales refitted once more to those codes; and the largest
    /// damping a block needed. Nil when H carries no energy, a block stays not positive definite after the retries,
    /// or the sweep meets a value that is not finite.
    func results(for weights: [Float], start: QuantizationResult,
                 moments: LayerInputMoments) -> (results: [(codes: [UInt16], values: QuantizedValues)], damping: Double)? {
        guard let sweeps = Sweeps(self, weights: weights, start: start, moments: moments),
              let first = sweeps.codes(start.values) else { return nil }
        var results = [(first, start.values)]
        if case let .grid(scales, nil, nil) = start.values {
            let refitted = QuantizedValues.grid(scales: sweeps.refit(scales, codes: first, moments: moments))
            if let second = sweeps.codes(refitted) {
                results.append((second, .grid(scales: sweeps.refit(scales, codes: second, moments: moments))))
            }
        }
        return (results, sweeps.damping)
    }

    /// One layer's factored blocks, ready to sweep with any parameters.
    private struct Sweeps {
        let compensation: ErrorCompensation
        let weights: [Float]
        let rows: Int, columns: Int, levels: Int
        let blocks: [(start: Int, size: Int)]
        /// Per block, the column order and the factor U.
        let factors: [(permutation: [Int], u: [Float])]
        let damping: Double

        init?(_ compensation: ErrorCompensation, weights: [Float], start: QuantizationResult, moments: LayerInputMoments) {
            (self.compensation, self.weights) = (compensation, weights)
            (rows, columns, levels, blocks) = (start.rows, start.columns, start.levels, moments.blocks)
            // H's diagonal (sums over the positions, as H is).
            let diagonal = moments.meanSquares.map { $0 * Float(moments.trainingPositions) }
            let meanDiagonal = diagonal.reduce(0.0) { $0 + Double($1) } / Double(max(columns, 1))
            guard meanDiagonal > 0, meanDiagonal.isFinite else { return nil }
            var factors: [(permutation: [Int], u: [Float])] = []
            var largest = compensation.damping
            for (index, block) in blocks.enumerated() {
                let n = block.size
                let permutation = compensation.order == .natural ? Array(0 ..< n)
                    : (0 ..< n).sorted { diagonal[block.start + $0] > diagonal[block.start + $1]
                        || diagonal[block.start + $0] == diagonal[block.start + $1] && $0 < $1 }
                guard let (u, used) = compensation.factor(moments.hessians[index], n: n, permutation: permutation,
                                                          meanDiagonal: meanDiagonal) else { return nil }
                largest = max(largest, used)
                factors.append((permutation, u))
            }
            (self.factors, damping) = (factors, largest)
        }

        /// The codes of a sweep with `values`, or nil when it meets a value that is not finite.
        func codes(_ values: QuantizedValues) -> [UInt16]? {
            var params = bfq_compensate_params()
            let parameters: [Float], perRow: Int, groupSize: Int?
            switch values {
            case let .grid(scales, group, _):
                (parameters, perRow, groupSize) = (scales, scales.count / max(rows, 1), group)
                params.half = Int32(levels / 2)
                params.qmax = Int32(levels - 1 - levels / 2)
            case let .palette(entries, _):
                (parameters, perRow, groupSize) = (entries, levels, nil)
                params.palette = 1
                params.levels = UInt32(levels)
            }
            var codes = [UInt16](repeating: 0, count: rows * columns)
            for (block, factor) in zip(blocks, factors) {
                let (n, permutation) = (block.size, factor.permutation)
                let scaleIndex = groupSize.map { group in permutation.map { UInt32((block.start + $0) / group) } }
                guard let blockCodes = compensation.sweep(weights, rows: rows, columns: columns, block: block, permutation: permutation,
                                                          u: factor.u, params: params, parameters: parameters, perRow: perRow,
                                                          scaleIndex: scaleIndex) else { return nil }
                for row in 0 ..< rows {
                    for (i, column) in permutation.enumerated() { codes[row * columns + block.start + column] = blockCodes[row * n + i] }
                }
            }
            return codes
        }

        /// Per row, the f16 scale s = q^T H w / q^T H q for the levels q of `codes` (H undamped, per block); a row whose
        /// fit is not a positive finite f16 keeps its scale from `scales`.
        func refit(_ scales: [Float], codes: [UInt16], moments: LayerInputMoments) -> [Float] {
            var numerators = [Double](repeating: 0, count: rows), denominators = numerators
            let half = Float(levels / 2)
            for (index, block) in blocks.enumerated() {
                let n = block.size
                var q = [Float](repeating: 0, count: rows * n)
                for row in 0 ..< rows {
                    for i in 0 ..< n { q[row * n + i] = Float(codes[row * columns + block.start + i]) - half }
                }
                var qh = [Float](repeating: 0, count: rows * n)
                q.withUnsafeBufferPointer { q in
                    moments.hessians[index].withUnsafeBufferPointer { h in
                        qh.withUnsafeMutableBufferPointer { qh in
                            MatrixProduct.multiply(m: rows, n: n, k: n, a: q.baseAddress!, lda: n, b: h.baseAddress!, ldb: n,
                                                   beta: 0, c: qh.baseAddress!, ldc: n)
                        }
                    }
                }
                for row in 0 ..< rows {
                    var (a, c) = (0.0, 0.0)
                    for i in 0 ..< n {
                        let v = Double(qh[row * n + i])
                        a += v * Double(weights[row * columns + block.start + i])
                        c += v * Double(q[row * n + i])
                    }
                    numerators[row] += a
                    denominators[row] += c
                }
            }
            return (0 ..< rows).map { row in
                let fitted = Float(Float16(Float(numerators[row] / denominators[row])))
                return fitted.isFinite && fitted > 0 && fitted <= 65504 ? fitted : scales[row]
            }
        }
    }

    /// U for the block's H permuted and damped, raising the damping tenfold while the factorisation fails.
    fileprivate func factor(_ h: [Float], n: Int, permutation: [Int], meanDiagonal: Double) -> ([Float], Double)? {
        var fraction = damping
        for _ in 0 ... Self.dampingRetries {
            let u = h.withUnsafeBufferPointer {
                InverseHessianFactor.upper(of: $0, n: n, order: permutation, damping: Float(fraction * meanDiagonal))
            }
            if let u { return (u, fraction) }
            fraction *= 10
        }
        return nil
    }

    /// The sweep over one block's columns (in `permutation` order): codes rows x n in that order, or nil.
    fileprivate func sweep(_ weights: [Float], rows: Int, columns: Int, block: (start: Int, size: Int), permutation: [Int],
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
                                        bfq_sgemm(0, 0, Int32(count), Int32(n - b0 - width), Int32(width), -1, errors,
                                                  Int32(lazy), u.baseAddress! + b0 * n + b0 + width, Int32(n), 1,
                                                  w.baseAddress! + first * n + b0 + width, Int32(n))
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
