import CBFQShims

/// GroupNorm and LayerNorm on channel-major activations. Means and variances are summed in f64 (the biased variance,
/// as PyTorch), then each value is normalised in f32.
enum Normalization {
    /// GroupNorm over `groups` channel groups of each image, with per-channel `gamma` and `beta`; SiLU after when `silu`.
    static func group(_ x: FeatureMap, groups: Int, gamma: [Float], beta: [Float], epsilon: Float, silu: Bool) -> FeatureMap {
        let perGroup = x.channels / groups, plane = x.plane, batch = x.batch
        var scale = [Float](repeating: 0, count: batch * groups), shift = scale
        x.values.withUnsafeBufferPointer { input in
            scale.withUnsafeMutableBufferPointer { scale in
                shift.withUnsafeMutableBufferPointer { shift in
                    let (scale, shift) = (scale, shift)
                    Parallel.forEach(batch * groups) { task in
                        let (b, g) = (task / groups, task % groups)
                        var sum = 0.0, squares = 0.0
                        for c in g * perGroup ..< (g + 1) * perGroup {
                            let row = input.baseAddress! + (c * batch + b) * plane
                            var partial = SIMD8<Double>(), partialSquares = SIMD8<Double>()
                            var i = 0
                            while i + 8 <= plane {
                                let v = SIMD8<Double>(UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self))
                                partial += v
                                partialSquares += v * v
                                i += 8
                            }
                            sum += partial.sum()
                            squares += partialSquares.sum()
                            while i < plane {
                                let v = Double(row[i])
                                sum += v
                                squares += v * v
                                i += 1
                            }
                        }
                        let n = Double(perGroup * plane)
                        let mean = sum / n
                        let variance = max(0, squares / n - mean * mean)
                        scale[task] = Float(1 / (variance + Double(epsilon)).squareRoot())
                        shift[task] = Float(mean)
                    }
                }
            }
        }
        return FeatureMap(channels: x.channels, batch: batch, height: x.height, width: x.width) { out in
            x.values.withUnsafeBufferPointer { input in
                Parallel.forEach(x.channels * batch) { row in
                    let (c, b) = (row / batch, row % batch)
                    let g = c / perGroup
                    let (s, mean) = (scale[b * groups + g], shift[b * groups + g])
                    let (weight, bias) = (gamma[c], beta[c])
                    let source = input.baseAddress! + row * plane, target = out + row * plane
                    for i in 0 ..< plane { target[i] = (source[i] - mean) * s * weight + bias }
                    if silu { bfq_silu(target, plane, ElementwiseKernels.vectorized) }
                }
            }
        }
    }

    /// LayerNorm of each column (token) over the channels, with per-channel `gamma` and `beta`.
    static func layer(_ x: FeatureMap, gamma: [Float], beta: [Float], epsilon: Float) -> FeatureMap {
        let columns = x.columns, channels = x.channels
        let block = 256
        return FeatureMap(channels: channels, batch: x.batch, height: x.height, width: x.width) { out in
            x.values.withUnsafeBufferPointer { input in
                Parallel.forEach((columns + block - 1) / block) { task in
                    let first = task * block, count = min(block, columns - first)
                    var sums = [Double](repeating: 0, count: count), squares = sums
                    for c in 0 ..< channels {
                        let row = input.baseAddress! + c * columns + first
                        for i in 0 ..< count {
                            let v = Double(row[i])
                            sums[i] += v
                            squares[i] += v * v
                        }
                    }
                    var scale = [Float](repeating: 0, count: count), mean = scale
                    for i in 0 ..< count {
                        let m = sums[i] / Double(channels)
                        let variance = max(0, squares[i] / Double(channels) - m * m)
                        scale[i] = Float(1 / (variance + Double(epsilon)).squareRoot())
                        mean[i] = Float(m)
                    }
                    for c in 0 ..< channels {
                        let source = input.baseAddress! + c * columns + first, target = out + c * columns + first
                        let (weight, bias) = (gamma[c], beta[c])
                        for i in 0 ..< count { target[i] = (source[i] - mean[i]) * scale[i] * weight + bias }
                    }
                }
            }
        }
    }
}
