import CBFQShims
import Foundation
import XCTest
@testable import BFQCore

/// The UNet's kernels against direct f64 computations, and their AVX2 and scalar code against each other.
final class UNetKernelTests: XCTestCase {
    private var generator = SeededGenerator(seed: 11)

    private func random(_ count: Int, scale: Float = 1) -> [Float] { generator.gaussians(count).map { $0 * scale } }

    /// Runs an in-place kernel with AVX2 and with scalar code; both must give the same bits.
    private func bothWays(_ input: [Float], _ kernel: (UnsafeMutablePointer<Float>, Int, Int32) -> Void) -> [Float] {
        var vector = input, scalar = input
        vector.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, $0.count, 1) }
        scalar.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, $0.count, 0) }
        XCTAssertEqual(vector.map(\.bitPattern), scalar.map(\.bitPattern))
        return vector
    }

    func testExpIsWithinTwoUlpsAndTheSameBitsEitherWay() {
        let inputs = random(10_003, scale: 30) + [-87.3, -87, 0, -0.0, 1e-30, 88.2, 88.3, -1000, 1000]
        let values = bothWays(inputs) { bfq_exp($0, $1, $2) }
        for (x, y) in zip(inputs, values) {
            // Inputs are clamped to [-87.3, 88.3], where exp stays a normal finite f32.
            let exact = Foundation.exp(Double(min(max(x, -87.3), 88.3)))
            XCTAssertLessThanOrEqual(abs(Double(y) - exact), 2 * Double(Float(exact).ulp), "exp(\(x))")
        }
    }

    func testNaNAndInfinityGiveNaNEitherWay() {
        for vectorized: Int32 in [0, 1] {
            var x: [Float] = [.nan, 1, -3, 0, 2, 5, 7, 9, 1]
            bfq_exp(&x, x.count, vectorized)
            XCTAssertTrue(x[0].isNaN)
            XCTAssertEqual(x[1], Float(M_E), accuracy: 1e-6)
            for row: [Float] in [[1, 2, .nan, 4, 5, 6, 7, 8, 9], [.infinity, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8, .nan]] {
                var values = row
                bfq_softmax_rows(&values, 1, values.count, values.count, vectorized)
                XCTAssertTrue(values.allSatisfy(\.isNaN), "\(row) \(vectorized): \(values)")
            }
        }
    }

    func testSoftmaxRowsSumToOneAndMatchF64() {
        let (rows, columns) = (5, 1001)
        let inputs = random(rows * columns, scale: 8)
        let values = bothWays(inputs) { bfq_softmax_rows($0, 5, 1001, 1001, $2); _ = $1 }
        for row in 0 ..< rows {
            let x = inputs[row * columns ..< (row + 1) * columns].map(Double.init)
            let m = x.max()!
            let sum = x.reduce(0) { $0 + Foundation.exp($1 - m) }
            for (i, value) in x.enumerated() {
                XCTAssertEqual(Double(values[row * columns + i]), Foundation.exp(value - m) / sum, accuracy: 1e-7 + 1e-6 * Foundation.exp(value - m) / sum)
            }
        }
    }

    func testSiLUAndGEGLUMatchF64() {
        let x = random(4099, scale: 4) + [-90, -20, 0, 20, 90]
        let silu = bothWays(x) { bfq_silu($0, $1, $2) }
        for (input, value) in zip(x, silu) {
            let exact = Double(input) / (1 + Foundation.exp(-Double(input)))
            XCTAssertEqual(Double(value), exact, accuracy: 4e-7 * max(1, abs(exact)), "silu(\(input))")
        }
        let hidden = random(x.count)
        var vector = [Float](repeating: 0, count: x.count), scalar = vector
        bfq_geglu(hidden, x, &vector, x.count, 1)
        bfq_geglu(hidden, x, &scalar, x.count, 0)
        XCTAssertEqual(vector.map(\.bitPattern), scalar.map(\.bitPattern))
        for i in x.indices {
            let g = Double(x[i])
            let exact = Double(hidden[i]) * 0.5 * g * (1 + erf(g / 2.0.squareRoot()))
            // Abramowitz-Stegun 7.1.26 is within 1.5e-7 of erf.
            XCTAssertEqual(Double(vector[i]), exact, accuracy: (1e-7 * abs(g) + 4e-7 * abs(exact)) * max(1, abs(Double(hidden[i]))))
        }
    }

    /// A direct f64 convolution of `x` (channel-major) for comparison.
    private func directConvolution(_ x: FeatureMap, _ weight: [Float], _ bias: [Float], outputs: Int, kernel: Int,
                                   stride: Int) -> [Double] {
        let pad = kernel / 2
        let outH = (x.height + 2 * pad - kernel) / stride + 1, outW = (x.width + 2 * pad - kernel) / stride + 1
        var out = [Double](repeating: 0, count: outputs * x.batch * outH * outW)
        for o in 0 ..< outputs {
            for b in 0 ..< x.batch {
                for y in 0 ..< outH {
                    for xx in 0 ..< outW {
                        var sum = Double(bias[o])
                        for c in 0 ..< x.channels {
                            for ky in 0 ..< kernel {
                                for kx in 0 ..< kernel {
                                    let (iy, ix) = (y * stride + ky - pad, xx * stride + kx - pad)
                                    guard (0 ..< x.height).contains(iy), (0 ..< x.width).contains(ix) else { continue }
                                    sum += Double(weight[((o * x.channels + c) * kernel + ky) * kernel + kx])
                                        * Double(x.values[(c * x.batch + b) * x.plane + iy * x.width + ix])
                                }
                            }
                        }
                        out[((o * x.batch + b) * outH + y) * outW + xx] = sum
                    }
                }
            }
        }
        return out
    }

    func testConvolutionMatchesADirectSum() {
        for (kernel, stride, height, width) in [(3, 1, 7, 5), (3, 2, 7, 5), (1, 1, 4, 6), (3, 2, 1, 1), (5, 1, 6, 3)] {
            let (channels, outputs, batch) = (6, 5, 2)
            let x = FeatureMap(channels: channels, batch: batch, height: height, width: width,
                               values: random(channels * batch * height * width))
            let weight = random(outputs * channels * kernel * kernel), bias = random(outputs)
            let actual = Convolution.apply(x, weight: weight, bias: bias, outChannels: outputs, kernel: kernel,
                                           stride: stride, pad: kernel / 2)
            let expected = directConvolution(x, weight, bias, outputs: outputs, kernel: kernel, stride: stride)
            XCTAssertEqual(actual.values.count, expected.count)
            for (a, e) in zip(actual.values, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-5 * max(1, abs(e))) }
        }
    }

    func testWinogradConvolutionMatchesADirectSum() {
        // Odd sizes (a tile's last row or column dropped), batches, several blocks of output channels, no bias.
        for (height, width, batch, outputs, budget, withBias) in [(17, 15, 2, 5, WinogradConvolution.weightBudget, true),
                                                                  (16, 16, 1, 40, 16 * 6 * 16, true),
                                                                  (9, 31, 1, 33, 16 * 6 * 16, false)] {
            let channels = 6
            let x = FeatureMap(channels: channels, batch: batch, height: height, width: width,
                               values: random(channels * batch * height * width))
            let weight = random(outputs * channels * 9), bias = random(outputs)
            XCTAssertGreaterThanOrEqual(WinogradConvolution.tiles(batch: batch, height: height, width: width),
                                        WinogradConvolution.minimumTiles)
            let actual = WinogradConvolution.apply(x, weight: weight, bias: withBias ? bias : nil, outChannels: outputs,
                                                   weightBudget: budget)
            let expected = directConvolution(x, weight, withBias ? bias : [Float](repeating: 0, count: outputs),
                                             outputs: outputs, kernel: 3, stride: 1)
            XCTAssertEqual(actual.values.count, expected.count)
            for (a, e) in zip(actual.values, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-5 * max(1, abs(e))) }
            // Convolution.apply takes this path for such planes: the same bits.
            let dispatched = Convolution.apply(x, weight: weight, bias: withBias ? bias : nil, outChannels: outputs,
                                               kernel: 3, stride: 1, pad: 1)
            XCTAssertEqual(dispatched.values.map(\.bitPattern), actual.values.map(\.bitPattern))
        }
    }

    func testProductsAreSplitWhereTheyRepackLeast() {
        // SD-v1.5's 3x3 convolutions at 64x64, 32x32 and 16x16 (im2col), a large and a small linear layer.
        XCTAssertEqual(MatrixProduct.tiling(m: 320, n: 4096, k: 2880).rows, 1)
        XCTAssertEqual(MatrixProduct.tiling(m: 320, n: 4096, k: 2880).columns, 8)
        XCTAssertEqual(MatrixProduct.tiling(m: 640, n: 1024, k: 5760).rows, 2)
        XCTAssertEqual(MatrixProduct.tiling(m: 640, n: 1024, k: 5760).columns, 4)
        XCTAssertEqual(MatrixProduct.tiling(m: 1280, n: 256, k: 11520).rows, 8)
        XCTAssertEqual(MatrixProduct.tiling(m: 1280, n: 256, k: 11520).columns, 1)
        XCTAssertEqual(MatrixProduct.tiling(m: 1280, n: 2, k: 1280).rows, 1, "16M multiply-adds or fewer: one tile")
        XCTAssertEqual(MatrixProduct.tiling(m: 8, n: 1 << 20, k: 64).rows, 1, "no tile narrower than 16 rows")
        XCTAssertEqual(MatrixProduct.tiling(m: 8, n: 1 << 20, k: 64).columns, 8)
    }

    func testBatchedTiledProductsEqualDirectSums() {
        let (count, m, n, k) = (3, 200, 300, 600)
        XCTAssertGreaterThan(MatrixProduct.tiling(m: m, n: n, k: k).rows * MatrixProduct.tiling(m: m, n: n, k: k).columns, 1)
        let a = random(count * m * k), b = random(count * k * n)
        var c = [Float](repeating: 7, count: count * m * n)
        MatrixProduct.multiply(count: count, m: m, n: n, k: k, a: a, strideA: m * k, lda: k, b: b, strideB: k * n, ldb: n,
                               beta: 0, c: &c, strideC: m * n, ldc: n)
        for p in 0 ..< count {
            for i in stride(from: 0, to: m, by: 11) {
                for j in stride(from: 0, to: n, by: 7) {
                    let exact = (0 ..< k).reduce(0.0) { $0 + Double(a[p * m * k + i * k + $1]) * Double(b[p * k * n + $1 * n + j]) }
                    XCTAssertEqual(Double(c[p * m * n + i * n + j]), exact, accuracy: 1e-4 * max(1, abs(exact)))
                }
            }
        }
    }

    func testMatrixProductTilesEqualADirectSumWithTransposes() {
        let (m, n, k) = (300, 700, 9)
        let a = random(m * k), b = random(k * n)
        // op(A) = A^T stored [k][m]; op(B) = B^T stored [n][k].
        var at = [Float](repeating: 0, count: m * k), bt = [Float](repeating: 0, count: k * n)
        for i in 0 ..< m { for j in 0 ..< k { at[j * m + i] = a[i * k + j] } }
        for i in 0 ..< k { for j in 0 ..< n { bt[j * k + i] = b[i * n + j] } }
        var c = [Float](repeating: 0, count: m * n)
        MatrixProduct.multiply(m: m, n: n, k: k, alpha: 2, a: at, lda: m, transposeA: true, b: bt, ldb: k, transposeB: true,
                               beta: 0, c: &c, ldc: n)
        for i in stride(from: 0, to: m, by: 7) {
            for j in stride(from: 0, to: n, by: 5) {
                let exact = 2 * (0 ..< k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[$1 * n + j]) }
                XCTAssertEqual(Double(c[i * n + j]), exact, accuracy: 1e-5 * max(1, abs(exact)))
            }
        }
    }

    func testAttentionMatchesADirectSoftmaxBeyondOneQueryBlock() {
        let (heads, d, queries, keys, batch) = (2, 4, Attention.queryBlock + 88, 37, 2)
        let q = FeatureMap(channels: heads * d, batch: batch, height: 1, width: queries, values: random(heads * d * batch * queries))
        let k = FeatureMap(channels: heads * d, batch: batch, height: 1, width: keys, values: random(heads * d * batch * keys))
        let v = FeatureMap(channels: heads * d, batch: batch, height: 1, width: keys, values: random(heads * d * batch * keys))
        let out = Attention.apply(q: q, k: k, v: v, heads: heads)
        for b in 0 ..< batch {
            for h in 0 ..< heads {
                for i in stride(from: 0, to: queries, by: 13) {
                    let scores = (0 ..< keys).map { j in
                        (0 ..< d).reduce(0.0) { $0 + Double(q.values[((h * d + $1) * batch + b) * queries + i])
                            * Double(k.values[((h * d + $1) * batch + b) * keys + j]) } / Double(d).squareRoot()
                    }
                    let m = scores.max()!, weights = scores.map { Foundation.exp($0 - m) }, total = weights.reduce(0, +)
                    for e in 0 ..< d {
                        let exact = (0 ..< keys).reduce(0.0) { $0 + weights[$1] / total * Double(v.values[((h * d + e) * batch + b) * keys + $1]) }
                        XCTAssertEqual(Double(out.values[((h * d + e) * batch + b) * queries + i]), exact, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    func testNearestResizeFollowsPyTorch() {
        let x = FeatureMap(channels: 1, batch: 1, height: 2, width: 5, values: (0 ..< 10).map(Float.init))
        // PyTorch: F.interpolate(x, size=(3, 10), mode="nearest") picks rows 0, 0, 1 and columns i >> 1.
        let y = UNetStageBuilder.nearest(x, height: 3, width: 10)
        XCTAssertEqual(y.values, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    }
}
