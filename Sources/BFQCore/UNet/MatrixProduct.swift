import COpenBLAS

/// Single-precision matrix products through OpenBLAS (row-major). OpenBLAS's results depend on how a product is
/// split (its blocking follows the shape), so bfq runs OpenBLAS on one thread and cuts every product into even tiles
/// of about `tileRows` x `tileColumns` results whose sizes depend only on the product's shape, spread over
/// `Parallel`'s threads: the same bits whatever the thread count.
enum MatrixProduct {
    static let tileRows = 256
    static let tileColumns = 512
    private static let configured: Void = { openblas_set_num_threads(1) }()

    /// Sets OpenBLAS to one thread (once); callers of `cblas_sgemm` outside `multiply` call this first.
    static func configure() { _ = configured }

    /// C = alpha op(A) op(B) + beta C with C [m, n]; op(A) [m, k], op(B) [k, n]; leading dimensions as stored.
    static func multiply(m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        configure()
        guard m > 0, n > 0 else { return }
        let (rowTiles, rowStep) = split(m, tileRows), (columnTiles, columnStep) = split(n, tileColumns)
        Parallel.forEach(rowTiles * columnTiles) { tile in
            let (row, column) = (tile / columnTiles * rowStep, tile % columnTiles * columnStep)
            // Tile (row, column) reads rows of op(A) and columns of op(B); a transposed operand is stored the other way.
            let aTile = a + (transposeA ? row : row * lda)
            let bTile = b + (transposeB ? column * ldb : column)
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(min(rowStep, m - row)), Int32(min(columnStep, n - column)), Int32(k), alpha, aTile,
                        Int32(lda), bTile, Int32(ldb), beta, c + row * ldc + column, Int32(ldc))
        }
    }

    /// Even tiles covering `size`, as many as tiles of `maximum` need, sizes rounded up to multiples of 16: count and step.
    static func split(_ size: Int, _ maximum: Int) -> (count: Int, step: Int) {
        let count = (size + maximum - 1) / maximum
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
