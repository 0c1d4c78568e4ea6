import CBFQShims

/// Scaled dot-product attention over channel-major projections. The work is cut into (image, head, block of
/// `queryBlock` queries) tasks spread over the threads, each computing its scores, softmax and weighted values with
/// single-threaded products of a fixed shape: at most one block of scores per thread exists at a time, and the bits do
/// not depend on the thread count.
enum Attention {
    static let queryBlock = 512

    /// softmax(Q_h^T K_h / sqrt(d)) applied to V_h for each image and head: `q` [heads x d][batch x queries],
    /// `k` and `v` [heads x d][batch x keys]; the result has `q`'s layout.
    static func apply(q: FeatureMap, k: FeatureMap, v: FeatureMap, heads: Int) -> FeatureMap {
        let d = q.channels / heads, queries = q.plane, keys = k.plane, batch = q.batch
        let scale = Float(1 / Double(d).squareRoot())
        let blocks = (queries + queryBlock - 1) / queryBlock
        return FeatureMap(channels: q.channels, batch: batch, height: q.height, width: q.width) { out in
            q.values.withUnsafeBufferPointer { q in
                k.values.withUnsafeBufferPointer { k in
                    v.values.withUnsafeBufferPointer { v in
                        let (qColumns, kColumns) = (batch * queries, batch * keys)
                        Parallel.forEach(batch * heads * blocks) { task in
                            let (b, h, first) = (task / (heads * blocks), task / blocks % heads, task % blocks * queryBlock)
                            let count = min(queryBlock, queries - first)
                            let qh = q.baseAddress! + h * d * qColumns + b * queries + first
                            let kh = k.baseAddress! + h * d * kColumns + b * keys
                            let vh = v.baseAddress! + h * d * kColumns + b * keys
                            let scores = UnsafeMutablePointer<Float>.allocate(capacity: count * keys)
                            defer { scores.deallocate() }
                            MatrixProduct.configure()
                            // scores [count, keys] = scale x Q_h^T K_h; out [d, count] = V_h scores^T
                            bfq_sgemm(1, 0, Int32(count), Int32(keys), Int32(d), scale, qh, Int32(qColumns), kh,
                                      Int32(kColumns), 0, scores, Int32(keys))
                            bfq_softmax_rows(scores, count, keys, keys, ElementwiseKernels.vectorized)
                            bfq_sgemm(0, 1, Int32(d), Int32(count), Int32(keys), 1, vh, Int32(kColumns), scores,
                                      Int32(keys), 0, out + h * d * qColumns + b * queries + first, Int32(qColumns))
                        }
                    }
                }
            }
        }
    }
}
