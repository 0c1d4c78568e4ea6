/// What error-compensating rounding and bias correction need of one layer's inputs on the calibration set, in the
/// weight's column order (a convolution's im2col rows: input channel x kernel rows x kernel columns): the second
/// moments H = sum x x^T kept as diagonal blocks of whole input channels (`blocks`; one block unless the layer is wider
/// than the block limit), each column's sum, and the inputs of every `heldOutEvery`-th position kept aside, unused by
/// H and the sums, to check the result on inputs the rounding has not seen.
struct LayerInputMoments {
    /// Every this-many-th position (counting over the whole batch from 0, the last of each run) is held out.
    static let heldOutEvery = 8

    let columns: Int
    /// The diagonal blocks of H: first column and size.
    let blocks: [(start: Int, size: Int)]
    /// Per block, sum over training positions of x x^T restricted to the block (size x size, row-major).
    private(set) var hessians: [[Float]]
    /// Per column, the sum over training positions.
    private(set) var sums: [Double]
    private(set) var trainingPositions = 0
    /// Held-out inputs: `heldOutPositions` rows of `columns` values.
    private(set) var heldOut: [Float] = []
    private(set) var heldOutPositions = 0

    /// Moments of a layer with `columns` weight columns, `kernelArea` of them per input channel, H in blocks of at
    /// most `maximumBlock` columns (whole channels; at least one channel), as even as whole channels allow.
    init(columns: Int, kernelArea: Int, maximumBlock: Int) {
        self.columns = columns
        let channels = columns / kernelArea
        let perBlock = max(1, maximumBlock / kernelArea)
        let blockCount = max(1, (channels + perBlock - 1) / perBlock)
        blocks = (0 ..< blockCount).map { k in
            let first = channels * k / blockCount, last = channels * (k + 1) / blockCount
            return (first * kernelArea, (last - first) * kernelArea)
        }
        hessians = blocks.map { [Float](repeating: 0, count: $0.size * $0.size) }
        sums = [Double](repeating: 0, count: columns)
    }

    /// Adds a layer input `x` seen through a `kernel` x `kernel` convolution of `stride` (zero padding kernel / 2;
    /// kernel 1 for a linear layer).
    mutating func add(_ x: FeatureMap, kernel: Int, stride: Int) {
        precondition(x.channels * kernel * kernel == columns)
        let columns = columns, every = Self.heldOutEvery
        Convolution.columnBlocks(x, kernel: kernel, stride: stride, pad: kernel / 2) { first, count, scratch in
            let held = (0 ..< count).filter { (first + $0) % every == every - 1 }
            let start = heldOut.count
            heldOut += repeatElement(0, count: held.count * columns)
            heldOut.withUnsafeMutableBufferPointer { out in
                for row in 0 ..< columns {
                    for (k, position) in held.enumerated() { out[start + k * columns + row] = scratch[row * count + position] }
                }
            }
            heldOutPositions += held.count
            // Training columns moved to the front of each row, in order.
            let kept = count - held.count
            for row in 0 ..< columns {
                let values = scratch + row * count
                var (next, sum) = (0, 0.0)
                for position in 0 ..< count where (first + position) % every != every - 1 {
                    values[next] = values[position]
                    sum += Double(values[next])
                    next += 1
                }
                sums[row] += sum
            }
            trainingPositions += kept
            guard kept > 0 else { return }
            for (index, block) in blocks.enumerated() {
                hessians[index].withUnsafeMutableBufferPointer { h in
                    let rows = scratch + block.start * count
                    MatrixProduct.multiply(m: block.size, n: block.size, k: kept, a: rows, lda: count, b: rows, ldb: count,
                                           transposeB: true, beta: 1, c: h.baseAddress!, ldc: block.size)
                }
            }
        }
    }

    /// Per column, the mean training input (0 without training positions).
    var mean: [Float] { sums.map { Float($0 / Double(max(trainingPositions, 1))) } }

    /// Per column, the mean squared training input: H's diagonal over the positions.
    var meanSquares: [Float] {
        var out = [Float](repeating: 0, count: columns)
        for (index, block) in blocks.enumerated() {
            for i in 0 ..< block.size {
                out[block.start + i] = hessians[index][i * block.size + i] / Float(max(trainingPositions, 1))
            }
        }
        return out
    }

    /// Frees the blocks of H (the held-out inputs and sums stay).
    mutating func releaseHessians() { hessians = [] }
}
