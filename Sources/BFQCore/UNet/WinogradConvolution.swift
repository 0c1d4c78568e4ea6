import CBFQShims

/// 3x3 convolutions with stride 1 and padding 1 by Winograd's F(2x2, 3x3) (Lavin and Gray 2016): 16 multiplies per
/// 2x2 output tile instead of 36, as 16 matrix products U_xi V_xi (transformed weights [out, in] times transformed
/// input patches [in, tiles]). The transforms add and halve only, so results stay within a few ulps of the direct sum.
enum WinogradConvolution {
    /// Fewest tiles (output positions / 4 over all images) for which the products beat im2col: below it, packing the
    /// 16 transformed weight matrices costs more than the multiplies saved (measured on SD-v1.5's 8x8 level).
    static let minimumTiles = 64
    /// Floats of transformed weights held at once: they are built, and multiplied, for blocks of output channels.
    static let weightBudget = 8 << 20

    /// Tiles of a `height` x `width` image batch: ceil(height / 2) x ceil(width / 2) per image.
    static func tiles(batch: Int, height: Int, width: Int) -> Int {
        batch * ((height + 1) / 2) * ((width + 1) / 2)
    }

    /// Convolves `x` with `weight` [out, in, 3, 3] (+ `bias`), zero padding 1, stride 1, holding at most about
    /// `weightBudget` floats of transformed weights at a time.
    static func apply(_ x: FeatureMap, weight: [Float], bias: [Float]?, outChannels: Int,
                      weightBudget: Int = weightBudget) -> FeatureMap {
        let (inChannels, tiles) = (x.channels, tiles(batch: x.batch, height: x.height, width: x.width))
        let (chunk, tilesW) = (16, (x.width + 1) / 2)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * inChannels * tiles)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * outChannels * tiles)
        let block = min(outChannels, max(16, weightBudget / (16 * inChannels) / 16 * 16))
        let u = UnsafeMutablePointer<Float>.allocate(capacity: 16 * block * inChannels)
        defer { v.deallocate(); m.deallocate(); u.deallocate() }
        x.values.withUnsafeBufferPointer { input in
            Parallel.forEach((inChannels + chunk - 1) / chunk) { task in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 8 * (2 * tilesW + 2))
                defer { scratch.deallocate() }
                bfq_winograd_input(input.baseAddress!, x.columns, x.batch, x.height, x.width, task * chunk,
                                   min(chunk, inChannels - task * chunk), inChannels, v, scratch)
            }
        }
        weight.withUnsafeBufferPointer { w in
            for first in stride(from: 0, to: outChannels, by: block) {
                let outs = min(block, outChannels - first)
                Parallel.forEach((outs + chunk - 1) / chunk) { task in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 9 * inChannels)
                    defer { scratch.deallocate() }
                    bfq_winograd_weights(w.baseAddress!, inChannels, first, outs, first + task * chunk,
                                         min(chunk, outs - task * chunk), u, scratch)
                }
                MatrixProduct.multiply(count: 16, m: outs, n: tiles, k: inChannels,
                                       a: u, strideA: outs * inChannels, lda: inChannels,
                                       b: v, strideB: inChannels * tiles, ldb: tiles, beta: 0,
                                       c: m + first * tiles, strideC: outChannels * tiles, ldc: tiles)
            }
        }
        return FeatureMap(channels: outChannels, batch: x.batch, height: x.height, width: x.width) { out in
            func transform(_ bias: UnsafePointer<Float>?) {
                Parallel.forEach((outChannels + chunk - 1) / chunk) { task in
                    bfq_winograd_output(m, bias, outChannels, x.batch, x.height, x.width, task * chunk,
                                        min(chunk, outChannels - task * chunk), out)
                }
            }
            if let bias { bias.withUnsafeBufferPointer { transform($0.baseAddress) } } else { transform(nil) }
        }
    }
}
