import CBFQShims

/// Single-precision matrix products through OpenBLAS (row-major; loaded by `BLASRuntime`). OpenBLAS's results depend
/// on how a product is split (its blocking follows the shape), so bfq runs OpenBLAS on one thread and cuts every
/// product into tiles whose number and sizes depend only on the product's shape, spread over `Parallel`'s threads:
/// the same bits whatever the thread count.
enum MatrixProduct {
    /// Multiply-adds below which a product is not split further, and the most tiles a product is cut into.
    static let tileWork = 1 << 24
    static let maximumTiles = 8

    /// Loads OpenBLAS (once; see `BLASRuntime`); callers of `bfq_sgemm` outside `multiply` call this first. The
    /// command-line tool loads it, and reports a failure, before any product runs.
    static func configure() {
        do { _ = try BLASRuntime.load() } catch { fatalError("bfq: \(error)") }
    }

    /// C = alpha op(A) op(B) + beta C with C [m, n]; op(A) [m, k], op(B) [k, n]; leading dimensions as stored.
    static func multiply(m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        multiply(count: 1, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
                 transposeB: transposeB, beta: beta, c: c, ldc: ldc)
    }

    /// `count` products of one shape, C_i = alpha op(A_i) op(B_i) + beta C_i with A_i at a + i x strideA (B_i, C_i
    /// likewise), their tiles spread over the threads together.
    static func multiply(count: Int, m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, strideA: Int = 0, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, strideB: Int = 0, ldb: Int, transposeB: Bool = false,
                         beta: Float, c: UnsafeMutablePointer<Float>, strideC: Int = 0, ldc: Int) {
        configure()
        guard m > 0, n > 0, count > 0 else { return }
        let tiles = tiling(m: m, n: n, k: k)
        let (rowTiles, rowStep) = split(m, tiles.rows), (columnTiles, columnStep) = split(n, tiles.columns)
        Parallel.forEach(count * rowTiles * columnTiles) { task in
            let (product, tile) = task.quotientAndRemainder(dividingBy: rowTiles * columnTiles)
            let (row, column) = (tile / columnTiles * rowStep, tile % columnTiles * columnStep)
            // Tile (row, column) reads rows of op(A) and columns of op(B); a transposed operand is stored the other way.
            let aTile = a + product * strideA + (transposeA ? row : row * lda)
            let bTile = b + product * strideB + (transposeB ? column * ldb : column)
            bfq_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(min(rowStep, m - row)), Int32(min(columnStep, n - column)),
                      Int32(k), alpha, aTile, Int32(lda), bTile, Int32(ldb), beta,
                      c + product * strideC + row * ldc + column, Int32(ldc))
        }
    }

    /// How many row and column tiles a product [m, n] with depth k is cut into: one per `tileWork` multiply-adds, at
    /// most `maximumTiles`, none narrower than 16. Every tile packs its rows of A and its columns of B again, so the
    /// split with the least packing wins (A repacked once per column tile, B once per row tile).
    static func tiling(m: Int, n: Int, k: Int) -> (rows: Int, columns: Int) {
        let wanted = max(1, min(maximumTiles, m * n * k / tileWork))
        var best = (rows: 1, columns: 1), cost = Int.max
        for rows in 1 ... wanted {
            let columns = (wanted + rows - 1) / rows
            guard rows == 1 || rows * 16 <= m, columns == 1 || columns * 16 <= n else { continue }
            if rows * n + columns * m < cost { (best, cost) = ((rows, columns), rows * n + columns * m) }
        }
        return best
    }

    /// `count` even tiles covering `size`, sizes rounded up to multiples of 16: count (fewer when rounding leaves a
    /// tile empty) and step.
    static func split(_ size: Int, _ count: Int) -> (count: Int, step: Int) {
        let step = ((size + count - 1) / max(count, 1) + 15) / 16 * 16
        return ((size + step - 1) / max(step, 1), step)
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
