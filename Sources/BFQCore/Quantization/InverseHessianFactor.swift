import CBFQShims

/// The upper Cholesky factor U of H^-1 (H^-1 = U^T U) that error-compensating rounding sweeps with, from LAPACK in
/// the OpenBLAS system library: with J the order reversal, J H J = M M^T (spotrf) gives U = J M^-1 J (strtri), one
/// factorisation and one triangular inverse instead of GPTQ's factorise, invert, factorise again.
enum InverseHessianFactor {
    /// U (n x n, row-major, zero below the diagonal) for H = P h P^T + damping I, the symmetric `h` (n x n) with its
    /// rows and columns taken in `order` (nil: as stored), or nil when H is not positive definite in f32 (LAPACK stops
    /// at a non-positive pivot) or the inverse is not finite.
    static func upper(of h: UnsafeBufferPointer<Float>, n: Int, order: [Int]? = nil, damping: Float = 0) -> [Float]? {
        precondition(h.count == n * n && (order?.count ?? n) == n)
        MatrixProduct.configure()
        // J H J, whole, built in one pass; being symmetric, it reads the same row- or column-major.
        let source = (0 ..< n).map { order?[n - 1 - $0] ?? (n - 1 - $0) }
        var a = [Float](unsafeUninitializedCapacity: n * n) { a, initialized in
            for i in 0 ..< n {
                for j in 0 ..< n { a[i * n + j] = h[source[i] * n + source[j]] }
                a[i * n + i] += damping
            }
            initialized = n * n
        }
        let info = a.withUnsafeMutableBufferPointer { a in
            // Column-major lower triangles: element (r, c), r >= c, at r + c n.
            let info = bfq_spotrf_lower(Int32(n), a.baseAddress, Int32(n))
            return info == 0 ? bfq_strtri_lower(Int32(n), a.baseAddress, Int32(n)) : info
        }
        guard info == 0 else { return nil }
        // U[i][j] = M^-1[n-1-i][n-1-j], stored column-major at (n-1-i) + (n-1-j) n, for j >= i.
        var u = [Float](repeating: 0, count: n * n)
        for i in 0 ..< n {
            for j in i ..< n {
                let value = a[(n - 1 - i) + (n - 1 - j) * n]
                guard value.isFinite else { return nil }
                u[i * n + j] = value
            }
        }
        return u
    }
}
