/// Activations of a batch laid out channel-major, [channels][batch][height x width], so that every linear layer and
/// convolution is one matrix product W x X over all images and positions. A token sequence is height 1.
public struct FeatureMap: Sendable, Equatable {
    public var channels: Int
    public var batch: Int
    public var height: Int
    public var width: Int
    public var values: [Float]

    public init(channels: Int, batch: Int, height: Int, width: Int, values: [Float]) {
        precondition(values.count == channels * batch * height * width)
        self.channels = channels
        self.batch = batch
        self.height = height
        self.width = width
        self.values = values
    }

    /// Uninitialised storage for `channels` x `batch` x `height` x `width` values that `fill` must write entirely.
    init(channels: Int, batch: Int, height: Int, width: Int, fill: (UnsafeMutablePointer<Float>) -> Void) {
        self.channels = channels
        self.batch = batch
        self.height = height
        self.width = width
        let count = channels * batch * height * width
        values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// Positions per image.
    public var plane: Int { height * width }
    /// Columns of the matrix view: every position of every image.
    public var columns: Int { batch * plane }

    /// From the usual [batch][channels][height][width] order.
    public init(batchMajor values: UnsafeBufferPointer<Float>, batch: Int, channels: Int, height: Int, width: Int) {
        let plane = height * width
        self.init(channels: channels, batch: batch, height: height, width: width) { out in
            for b in 0 ..< batch {
                for c in 0 ..< channels {
                    (out + (c * batch + b) * plane).update(from: values.baseAddress! + (b * channels + c) * plane, count: plane)
                }
            }
        }
    }

    /// In [batch][channels][height][width] order.
    public func batchMajor() -> [Float] {
        [Float](unsafeUninitializedCapacity: values.count) { out, initialized in
            values.withUnsafeBufferPointer { source in
                for b in 0 ..< batch {
                    for c in 0 ..< channels {
                        (out.baseAddress! + (b * channels + c) * plane)
                            .update(from: source.baseAddress! + (c * batch + b) * plane, count: plane)
                    }
                }
            }
            initialized = values.count
        }
    }

    /// The images `images` of each of `parts` (maps of the same channels and size), in that order, as one batch.
    static func stacking(_ parts: [(map: FeatureMap, images: [Int])]) -> FeatureMap {
        let first = parts[0].map
        let batch = parts.reduce(0) { $0 + $1.images.count }
        return FeatureMap(channels: first.channels, batch: batch, height: first.height, width: first.width) { out in
            var target = out
            for c in 0 ..< first.channels {
                for (map, images) in parts {
                    precondition(map.channels == first.channels && map.plane == first.plane)
                    map.values.withUnsafeBufferPointer { values in
                        for image in images {
                            target.update(from: values.baseAddress! + (c * map.batch + image) * map.plane, count: map.plane)
                            target += map.plane
                        }
                    }
                }
            }
        }
    }

    /// Sum of squared differences from `other` (of the same layout) per image.
    func squaredDistances(to other: FeatureMap) -> [Double] {
        precondition(other.values.count == values.count && other.batch == batch)
        var sums = [Double](repeating: 0, count: batch)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                for c in 0 ..< channels {
                    for image in 0 ..< batch {
                        let offset = (c * batch + image) * plane
                        var sum = 0.0
                        for i in offset ..< offset + plane { sum += Double(a[i] - b[i]) * Double(a[i] - b[i]) }
                        sums[image] += sum
                    }
                }
            }
        }
        return sums
    }

    /// Adds `other` (of the same layout) elementwise.
    mutating func add(_ other: FeatureMap) {
        precondition(other.values.count == values.count)
        values.withUnsafeMutableBufferPointer { values in
            other.values.withUnsafeBufferPointer { input in
                for i in 0 ..< values.count { values[i] += input[i] }
            }
        }
    }
}
