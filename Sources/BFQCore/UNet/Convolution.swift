import CBFQShims

/// 2-D convolution with square kernels as im2col + one matrix product per block of output positions, or Winograd's
/// F(2x2, 3x3) for 3x3 kernels with stride 1 and padding 1 on planes with enough tiles.
enum Convolution {
    /// Bytes of im2col columns built at once; larger outputs are computed in blocks of positions.
    static let blockBytes = 32 << 20

    /// Output size along one axis: floor((size + 2 pad - kernel) / stride) + 1.
    static func outputSize(_ size: Int, kernel: Int, stride: Int, pad: Int) -> Int {
        (size + 2 * pad - kernel) / stride + 1
    }

    /// Convolves `x` with `weight` [out, in, k, k] (+ `bias`), zero padding `pad`, stride `stride`.
    static func apply(_ x: FeatureMap, weight: [Float], bias: [Float]?, outChannels: Int, kernel: Int, stride: Int,
                      pad: Int) -> FeatureMap {
        if kernel == 1, stride == 1, pad == 0 {
            return MatrixProduct.linear(x, weight: weight, bias: bias, outChannels: outChannels)
        }
        if kernel == 3, stride == 1, pad == 1,
           WinogradConvolution.tiles(batch: x.batch, height: x.height, width: x.width) >= WinogradConvolution.minimumTiles {
            return WinogradConvolution.apply(x, weight: weight, bias: bias, outChannels: outChannels)
        }
        let outH = outputSize(x.height, kernel: kernel, stride: stride, pad: pad)
        let outW = outputSize(x.width, kernel: kernel, stride: stride, pad: pad)
        let depth = x.channels * kernel * kernel
        let columns = x.batch * outH * outW
        return FeatureMap(channels: outChannels, batch: x.batch, height: outH, width: outW) { out in
            MatrixProduct.fillRows(out, rows: outChannels, columns: columns, with: bias)
            weight.withUnsafeBufferPointer { w in
                columnBlocks(x, kernel: kernel, stride: stride, pad: pad) { first, count, scratch in
                    MatrixProduct.multiply(m: outChannels, n: count, k: depth, a: w.baseAddress!, lda: depth,
                                           b: scratch, ldb: count, beta: bias == nil ? 0 : 1, c: out + first, ldc: columns)
                }
            }
        }
    }

    /// The im2col matrix of `x` ([channels x k x k] rows, one column per output position of every image) in blocks
    /// of consecutive positions: `body(first position, positions, rows of that many columns)`. Block sizes depend only
    /// on the shapes.
    static func columnBlocks(_ x: FeatureMap, kernel: Int, stride: Int, pad: Int,
                             _ body: (Int, Int, UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        let outH = outputSize(x.height, kernel: kernel, stride: stride, pad: pad)
        let outW = outputSize(x.width, kernel: kernel, stride: stride, pad: pad)
        let depth = x.channels * kernel * kernel
        let columns = x.batch * outH * outW
        let block = max(64, min(columns, blockBytes / 4 / max(depth, 1)))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: depth * block)
        defer { scratch.deallocate() }
        try x.values.withUnsafeBufferPointer { input in
            for first in Swift.stride(from: 0, to: columns, by: block) {
                let count = min(block, columns - first)
                // im2col rows split over threads by input channel.
                let perTask = max(1, (x.channels + Parallel.threadCount * 4 - 1) / (Parallel.threadCount * 4))
                Parallel.forEach((x.channels + perTask - 1) / perTask) { task in
                    let channel = task * perTask
                    bfq_im2col(input.baseAddress!, x.columns, x.height, x.width, kernel, stride, pad, outH, outW,
                               channel, min(perTask, x.channels - channel), first, count,
                               scratch + channel * kernel * kernel * count)
                }
                try body(first, count, scratch)
            }
        }
    }
}
