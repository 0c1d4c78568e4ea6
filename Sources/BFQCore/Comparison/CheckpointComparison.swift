/// The differences between two checkpoints, tensor by tensor, matched by name.
public struct CheckpointComparison: Sendable {
    /// A tensor present on both sides.
    public struct Pair: Sendable {
        public var name: String
        public var dtypes: (DType, DType)
        public var shapes: ([Int], [Int])
        /// Value differences; nil when the shapes differ.
        public var difference: TensorDifference?
        public var shapeMatches: Bool { shapes.0 == shapes.1 }
        public var dtypeMatches: Bool { dtypes.0 == dtypes.1 }
    }

    public var onlyInFirst: [String]
    public var onlyInSecond: [String]
    /// Common tensors in the first checkpoint's order.
    public var pairs: [Pair]

    /// True when both sides hold the same names, shapes, dtypes and values.
    public var identical: Bool {
        onlyInFirst.isEmpty && onlyInSecond.isEmpty
            && pairs.allSatisfy { $0.shapeMatches && $0.dtypeMatches && $0.difference?.noiseEnergy == 0 && $0.difference?.maxAbsError == 0 }
    }

    /// Compares `first` (the reference) with `second`. With `matchingNames`, when both hold an SD UNet named in
    /// different schemes, the second side's names are mapped to the first's.
    public init(_ first: Checkpoint, _ second: Checkpoint, matchingNames: Bool) throws {
        var names: [String]?
        let secondNames = second.tensors.map(\.name)
        if matchingNames, let target = UNetNaming.detect(first.tensors.map(\.name)),
           let scheme = UNetNaming.detect(secondNames), scheme != target {
            var renamed = try UNetNaming.rename(secondNames, to: target)
            // rename writes ldm names under model.diffusion_model. and diffusers names bare; use the first's prefix.
            let written = target == .ldm ? UNetNaming.ldmPrefix : ""
            let wanted = UNetNaming.groups(first.tensors.map(\.name)).filter { $0.scheme == target }
                .max { $0.indices.count < $1.indices.count }?.prefix ?? written
            if wanted != written {
                for index in UNetNaming.groups(secondNames).flatMap(\.indices) {
                    renamed[index] = wanted + renamed[index].dropFirst(written.count)
                }
            }
            names = renamed
        }
        try self.init(first, second, secondNames: names)
    }

    /// Compares `first` (the reference) with `second`. `secondNames`, when given, replaces the second side's names
    /// index by index (to match across UNet naming schemes). Pages are released as tensors are done.
    init(_ first: Checkpoint, _ second: Checkpoint, secondNames: [String]?) throws {
        let names = secondNames ?? second.tensors.map(\.name)
        var byName: [String: Int] = [:]
        for (index, name) in names.enumerated() { byName[name] = index }
        let firstNames = Set(first.tensors.map(\.name))
        onlyInFirst = first.tensors.map(\.name).filter { byName[$0] == nil }
        onlyInSecond = names.filter { !firstNames.contains($0) }
        pairs = try first.tensors.compactMap { a in
            guard let index = byName[a.name] else { return nil }
            let b = second.tensors[index]
            var pair = Pair(name: a.name, dtypes: (a.dtype, b.dtype), shapes: (a.shape, b.shape), difference: nil)
            if pair.shapeMatches {
                pair.difference = try first.withContiguousBytes(of: a) { left in
                    try second.withContiguousBytes(of: b) { right in
                        TensorDifference(reference: left, a.dtype, candidate: right, b.dtype)
                    }
                }
            }
            first.release(a)
            second.release(b)
            return pair
        }
    }
}
