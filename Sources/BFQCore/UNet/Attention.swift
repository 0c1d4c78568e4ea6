import CBFQShims

/// Scaled dot-product attention over channel-major projections, one head and one block of queries at a time, so
/// at most `queryBlock` x keys scores exist at once.
enum Attention {
    static let queryBlock = 512

    /// softmax(Q_h^T K_h / sqrt(d)) applied to V_h for each image and head: `q` [heads x d][batch x queries],
    /// `k` and `v` [heads x d][batch x keys]; the result has `q`'s layout.
    static func apply(q: FeatureMap, k: FeatureMap, v: FeatureMap, heads: Int) -> FeatureMap {
        let d = q.channels / heads, queries = q.plane, keys = k.plane, batch = q.batch
        let scale = Float(1 / Double(d).squareRoot())
        let block = min(queryBlock, queries)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * keys)
        defer { scores.deallocate() }
        return FeatureMap(channels: q.channels, batch: batch, height: q.height, width: q.width) { out in
            q.values.withUnsafeBufferPointer { q in
                k.values.withUnsafeBufferPointer { k in
                    v.values.withUnsafeBufferPointer { v in
                        let (qColumns, kColumns) = (batch * queries, batch * keys)
                        for b in 0 ..< batch {
                            for h in 0 ..< heads {
                                let qh = q.baseAddress! + h * d * qColumns + b * queries
                                let kh = k.baseAddress! + h * d * kColumns + b * keys
                                let vh = v.baseAddress! + h * d * kColumns + b * keys
                                for first in stride(from: 0, to: queries, by: block) {
                                    let count = min(block, queries - first)
                                    MatrixProduct.multiply(m: count, n: keys, k: d, alpha: scale, a: qh + first, lda: qColumns,
                                                           transposeA: true, b: kh, ldb: kColumns, beta: 0, c: scores, ldc: keys)
                                    let rowsPerTask = max(1, count / (Parallel.threadCount * 4))
                                    Parallel.forEach((count + rowsPerTask - 1) / rowsPerTask) { task in
                                        let row = task * rowsPerTask
                                        bfq_softmax_rows(scores + row * keys, min(rowsPerTask, count - row), keys, keys, 1)
                                    }
                                    MatrixProduct.multiply(m: d, n: count, k: keys, a: vh, lda: kColumns, b: scores, ldb: keys,
                                                           transposeB: true, beta: 0,
                                                           c: out + h * d * qColumns + b * queries + first, ldc: qColumns)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
