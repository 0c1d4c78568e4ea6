import COpenBLAS

/// Single-precision matrix products through OpenBLAS (row-major), its threads set from `Parallel.threadCount`.
/// OpenBLAS splits a product over rows and columns of the result, never over the inner dimension, so each element is
/// summed in the same order whatever the thread count.
enum MatrixProduct {
    private static let configured: Void = { openblas_set_num_threads(Int32(Parallel.threadCount)) }()

    /// C = alpha op(A) op(B) + beta C with C [m, n]; op(A) [m, k], op(B) [k, n]; leading dimensions as stored.
    static func multiply(m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = configured
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Y = W X + b for `x` [in, columns] and `weight` [out, in]: a linear layer, or a 1x1 convolution, on every column.
    static func linear(_ x: FeatureMap, weight: [Float], bias: [Float]?, outChannels: Int) -> FeatureMap {
        FeatureMap(channels: outChannels, batch: x.batch, height: x.height, width: x.width) { out in
            let columns = x.columns
            fillRows(out, rows: outChannels, columns: columns, with: bias)
            weight.withUnsafeBufferPointer { w in
                x.values.withUnsafeBufferPointer { input in
                    multiply(m: outChannels, n: columns, k: x.channels, a: w.baseAddress!, lda: x.channels,
                             b: input.baseAddress!, ldb: columns, beta: bias == nil ? 0 : 1, c: out, ldc: columns)
                }
            }
        }
    }

    /// Sets each of `rows` rows of `columns` values to its bias, or zero.
    static func fillRows(_ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, with bias: [Float]?) {
        for row in 0 ..< rows {
            (out + row * columns).initialize(repeating: bias?[row] ?? 0, count: columns)
        }
    }
}
