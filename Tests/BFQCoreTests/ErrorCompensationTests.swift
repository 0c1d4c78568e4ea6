import XCTest
@testable import BFQCore

/// GPTQ rounding: the LAPACK factor of H^-1, the input moments, and the sweep against a direct f64 implementation.
final class ErrorCompensationTests: XCTestCase {
    /// Correlated inputs: `columns` channels x `positions`, each channel a mix of a few shared sources plus noise and a
    /// mean (as SiLU outputs have).
    private func inputs(columns: Int, positions: Int, seed: UInt64) -> FeatureMap {
        var generator = SeededGenerator(seed: seed)
        let sources = generator.gaussians(4 * positions), noise = generator.gaussians(columns * positions)
        let mixing = generator.gaussians(columns * 4)
        var values = [Float](repeating: 0, count: columns * positions)
        for c in 0 ..< columns {
            for p in 0 ..< positions {
                var v: Float = 0.5 + 0.1 * noise[c * positions + p]
                for s in 0 ..< 4 { v += mixing[c * 4 + s] * sources[s * positions + p] }
                values[c * positions + p] = v
            }
        }
        return FeatureMap(channels: columns, batch: 1, height: 1, width: positions, values: values)
    }

    private func randomWeights(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return generator.gaussians(rows * columns).map { 0.1 * $0 }
    }

    /// Weights (rows x columns) and the moments of correlated inputs to them, H in blocks of at most `maximumBlock`.
    private func layer(rows: Int, columns: Int, positions: Int, seed: UInt64,
                       maximumBlock: Int = 4096) -> (x: FeatureMap, weights: [Float], moments: LayerInputMoments) {
        let x = inputs(columns: columns, positions: positions, seed: seed)
        var moments = LayerInputMoments(columns: columns, kernelArea: 1, maximumBlock: maximumBlock)
        moments.add(x, kernel: 1, stride: 1)
        return (x, randomWeights(rows: rows, columns: columns, seed: seed + 1), moments)
    }

    /// `start` with other codes and values.
    private func result(_ codes: [UInt16], _ values: QuantizedValues, like start: QuantizationResult) -> QuantizationResult {
        QuantizationResult(levels: start.levels, rows: start.rows, columns: start.columns, codes: codes, values: values,
                           parameterType: start.parameterType, rowErrors: start.rowErrors, rowWeightedErrors: nil,
                           rowSignals: start.rowSignals)
    }

    /// tr((W - W') H (W - W')^T) for the full H of `x` (training positions only), in f64.
    private func outputError(_ weights: [Float], _ values: [Float], rows: Int, x: FeatureMap) -> Double {
        var total = 0.0
        for p in 0 ..< x.columns where p % LayerInputMoments.heldOutEvery != LayerInputMoments.heldOutEvery - 1 {
            for r in 0 ..< rows {
                var e = 0.0
                for c in 0 ..< x.channels { e += Double(weights[r * x.channels + c] - values[r * x.channels + c]) * Double(x.values[c * x.columns + p]) }
                total += e * e
            }
        }
        return total
    }

    func testTheFactorTimesItsTransposeIsTheInverse() throws {
        let n = 37
        let x = inputs(columns: n, positions: 200, seed: 1)
        var moments = LayerInputMoments(columns: n, kernelArea: 1, maximumBlock: 4096)
        moments.add(x, kernel: 1, stride: 1)
        var h = moments.hessians[0]
        // Factored in reverse order, damped by 1: the factor is of that permuted matrix.
        let order = Array((0 ..< n).reversed())
        let u = try XCTUnwrap(h.withUnsafeBufferPointer { InverseHessianFactor.upper(of: $0, n: n, order: order, damping: 1) })
        h = (0 ..< n * n).map { moments.hessians[0][order[$0 / n] * n + order[$0 % n]] + ($0 / n == $0 % n ? 1 : 0) }
        var largest = 0.0
        for i in 0 ..< n {
            for j in 0 ..< n {
                if j < i { XCTAssertEqual(u[i * n + j], 0) }
                // (U^T U H)[i][j]
                var sum = 0.0
                for k in 0 ..< n {
                    var inverse = 0.0
                    for m in 0 ... min(i, k) { inverse += Double(u[m * n + i]) * Double(u[m * n + k]) }
                    sum += inverse * Double(h[k * n + j])
                }
                largest = max(largest, abs(sum - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThan(largest, 1e-3)
    }

    func testAMatrixThatIsNotPositiveDefiniteHasNoFactor() {
        let h: [Float] = [1, 2, 2, 1]
        XCTAssertNil(h.withUnsafeBufferPointer { InverseHessianFactor.upper(of: $0, n: 2) })
    }

    func testMomentsAreTheIm2colProductsWithEveryEighthPositionHeldOut() {
        var generator = SeededGenerator(seed: 4)
        let (channels, size) = (3, 5)
        let x = FeatureMap(channels: channels, batch: 2, height: size, width: size, values: generator.gaussians(channels * 2 * size * size))
        var moments = LayerInputMoments(columns: channels * 9, kernelArea: 9, maximumBlock: 18)
        moments.add(x, kernel: 3, stride: 1)
        XCTAssertEqual(moments.blocks.map(\.size), [9, 18])
        // Column (c, ky, kx) at position (b, y, x): the input at (y + ky - 1, x + kx - 1), zero outside.
        func column(_ index: Int, _ position: Int) -> Double {
            let (c, ky, kx) = (index / 9, index / 3 % 3, index % 3)
            let (b, y, xx) = (position / (size * size), position / size % size, position % size)
            let (sy, sx) = (y + ky - 1, xx + kx - 1)
            guard (0 ..< size).contains(sy), (0 ..< size).contains(sx) else { return 0 }
            return Double(x.values[(c * 2 + b) * size * size + sy * size + sx])
        }
        let positions = 2 * size * size
        let held = (0 ..< positions).filter { $0 % 8 == 7 }, training = (0 ..< positions).filter { $0 % 8 != 7 }
        XCTAssertEqual(moments.trainingPositions, training.count)
        XCTAssertEqual(moments.heldOutPositions, held.count)
        for (k, block) in moments.blocks.enumerated() {
            for i in 0 ..< block.size {
                for j in 0 ..< block.size {
                    let expected = training.reduce(0.0) { $0 + column(block.start + i, $1) * column(block.start + j, $1) }
                    XCTAssertEqual(Double(moments.hessians[k][i * block.size + j]), expected, accuracy: 1e-4)
                }
            }
        }
        for index in 0 ..< 27 {
            XCTAssertEqual(Double(moments.mean[index]), training.reduce(0.0) { $0 + column(index, $1) } / Double(training.count), accuracy: 1e-5)
            for (k, position) in held.enumerated() { XCTAssertEqual(Double(moments.heldOut[k * 27 + index]), column(index, position)) }
        }
    }

    /// GPTQ as the paper writes it, in f64 and without lazy batches: H^-1 by Gauss-Jordan, its upper Cholesky factor,
    /// one column at a time.
    private func referenceCodes(_ weights: [Float], rows: Int, h: [Float], damping: Double, start: QuantizationResult) -> [UInt16] {
        let n = start.columns
        var a = h.map(Double.init)
        let meanDiagonal = (0 ..< n).reduce(0.0) { $0 + a[$1 * n + $1] } / Double(n)
        for i in 0 ..< n { a[i * n + i] += damping * meanDiagonal }
        // Inverse.
        var inverse = (0 ..< n * n).map { $0 / n == $0 % n ? 1.0 : 0.0 }
        for col in 0 ..< n {
            let pivot = a[col * n + col]
            for j in 0 ..< n { a[col * n + j] /= pivot; inverse[col * n + j] /= pivot }
            for row in 0 ..< n where row != col {
                let f = a[row * n + col]
                for j in 0 ..< n { a[row * n + j] -= f * a[col * n + j]; inverse[row * n + j] -= f * inverse[col * n + j] }
            }
        }
        // Upper Cholesky factor U of the inverse (inverse = U^T U).
        var u = [Double](repeating: 0, count: n * n)
        for i in 0 ..< n {
            var d = inverse[i * n + i]
            for k in 0 ..< i { d -= u[k * n + i] * u[k * n + i] }
            u[i * n + i] = d.squareRoot()
            for j in i + 1 ..< n {
                var s = inverse[i * n + j]
                for k in 0 ..< i { s -= u[k * n + i] * u[k * n + j] }
                u[i * n + j] = s / u[i * n + i]
            }
        }
        guard case let .grid(scales, nil, nil) = start.values else { fatalError("one scale per row") }
        var codes = [UInt16](repeating: 0, count: rows * n)
        for r in 0 ..< rows {
            var w = (0 ..< n).map { Double(weights[r * n + $0]) }
            let s = Double(scales[r]), half = Double(start.levels / 2)
            for i in 0 ..< n {
                let q = min(max((w[i] / s).rounded(.toNearestOrEven), -half), half)
                codes[r * n + i] = UInt16(q + half)
                let e = (w[i] - s * q) / u[i * n + i]
                for j in i + 1 ..< n { w[j] -= e * u[i * n + j] }
            }
        }
        return codes
    }

    func testTheSweepMatchesADirectImplementationAndBeatsNearestRounding() throws {
        // More columns than one lazy batch, so the deferred updates are exercised.
        let (rows, columns) = (40, 300)
        let (x, weights, moments) = layer(rows: rows, columns: columns, positions: 2000, seed: 7)
        let start = try GridQuantizer(bits: 2).quantize(weights, rows: rows, columns: columns, importance: moments.meanSquares)
        let gptq = ErrorCompensation(damping: 0.01, order: .natural)
        let (results, damping) = try XCTUnwrap(gptq.results(for: weights, start: start, moments: moments))
        let codes = results[0].codes
        XCTAssertEqual(damping, 0.01)
        let expected = referenceCodes(weights, rows: rows, h: moments.hessians[0], damping: 0.01, start: start)
        let same = zip(codes, expected).filter { $0 == $1 }.count
        XCTAssertGreaterThan(Double(same) / Double(codes.count), 0.995)
        let compensated = result(codes, start.values, like: start), reference = result(expected, start.values, like: start)
        let nearestError = outputError(weights, try start.dequantized(), rows: rows, x: x)
        let compensatedError = outputError(weights, try compensated.dequantized(), rows: rows, x: x)
        let referenceError = outputError(weights, try reference.dequantized(), rows: rows, x: x)
        XCTAssertEqual(compensatedError, referenceError, accuracy: 0.01 * referenceError)
        XCTAssertLessThan(compensatedError, nearestError / 2)
    }

    func testEveryEncodingAndBothOrdersLowerTheOutputError() throws {
        let (rows, columns) = (24, 160)
        let (x, weights, moments) = layer(rows: rows, columns: columns, positions: 1500, seed: 11, maximumBlock: 64)
        XCTAssertEqual(moments.blocks.map(\.size), [53, 53, 54])
        let tensor = QuantizationLayout.Tensor(entry: TensorEntry(name: "w", dtype: .f32, shape: [rows, columns], bytes: 0 ..< 4 * rows * columns),
                                               outputName: "w", layer: "w", role: .allocated)
        for choice in [LayerChoice.grid(1), .grid(3), .grid(2, groupSize: 32), .palette(2)] {
            let start = try LayerQuantizer.quantize(weights, tensor: tensor, choice: choice, importance: moments.meanSquares)
            let nearestError = outputError(weights, try start.dequantized(), rows: rows, x: x)
            for order in QuantizationOptions.ColumnOrder.allCases {
                let results = try XCTUnwrap(ErrorCompensation(damping: 0.01, order: order).results(for: weights, start: start, moments: moments))
                let codes = results.results[0].codes
                let compensatedError = outputError(weights, try result(codes, start.values, like: start).dequantized(), rows: rows, x: x)
                XCTAssertLessThan(compensatedError, 0.8 * nearestError, "\(choice) \(order)")
                // Grids with one scale per row also get their scales refitted to the codes, which lowers the error further.
                XCTAssertEqual(results.results.count, choice.kind == .grid && choice.groupSize == nil ? 2 : 1, "\(choice)")
                if let refitted = results.results.dropFirst().first {
                    let refit = result(refitted.codes, refitted.values, like: start)
                    XCTAssertLessThan(outputError(weights, try refit.dequantized(), rows: rows, x: x), compensatedError, "\(choice) \(order)")
                }
            }
        }
    }

    func testInputsWithoutEnergyGiveNoCodes() throws {
        let (rows, columns) = (4, 16)
        let x = FeatureMap(channels: columns, batch: 1, height: 1, width: 64, values: [Float](repeating: 0, count: columns * 64))
        var moments = LayerInputMoments(columns: columns, kernelArea: 1, maximumBlock: 4096)
        moments.add(x, kernel: 1, stride: 1)
        let weights = randomWeights(rows: rows, columns: columns, seed: 2)
        let start = try GridQuantizer(bits: 2).quantize(weights, rows: rows, columns: columns)
        XCTAssertNil(ErrorCompensation(damping: 0.01, order: .diagonal).results(for: weights, start: start, moments: moments))
    }
}
