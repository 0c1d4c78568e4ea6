#if canImport(Glibc)
import Glibc
#endif

/// The time features of an SD UNet for fixed timesteps (BitsFusion App. C, spec/bfq.md section 3.3): every ResNet's
/// `time_emb_proj` output, which with the timestep fixed no longer needs the time-embedding MLP or the projections.
///
/// The math is diffusers' `UNet2DConditionModel` (SD 1.x/2.x), in f32:
/// - t_emb = [cos(t x f), sin(t x f)], f_k = exp(-ln(10000) x k / (C0 / 2)), k < C0 / 2, C0 = conv_in's output
///   channels (`get_timestep_embedding`, flip_sin_to_cos, shift 0; a zero appended when C0 is odd);
/// - temb = linear_2(SiLU(linear_1(t_emb))) (diffusers `time_embedding.linear_1/2`, ldm `time_embed.0/2`);
/// - F = time_emb_proj(SiLU(temb)) per ResNet (ldm `emb_layers.1`).
/// Each value is computed from f32 operands and rounded to f32 once: the frequencies in f32 as torch does (f32
/// product and quotient, exp rounded to f32), t x f in f32, sin, cos and SiLU in f64; linear layers sum exact f64
/// products in a fixed order. Output rows run in parallel; the result is the same for any thread count.
public struct TimeFeatureCache: Sendable {
    public let timesteps: [Int]
    /// Each ResNet's projection: its module name in the file's naming (the weight's name without `.weight`) and its
    /// output width, in the order diffusers runs them (down blocks, mid block, up blocks).
    public let layers: [(name: String, width: Int)]
    /// f32 features laid out [timestep][layer][width].
    public let values: [Float]
    /// Every weight and bias the cache replaces: the time MLP's, then each projection's, as named in the file.
    public let replacedTensorNames: [String]
    /// Elements of the replaced linear weights (biases excluded): `time_features.replaced_weights` of spec section 7.
    public let replacedWeights: Int

    /// Computes the features of the UNet in `checkpoint` (ldm or diffusers names, bare or under
    /// `model.diffusion_model.` / `unet.`, in a UNet-only file or a full SD checkpoint) at `timesteps`.
    /// - Throws: `TimeFeatureCacheError` for timesteps that are empty, unsorted or outside 0...999, a file without a
    ///   UNet, a missing tensor, a wrong shape or dtype, or non-finite results; `UNetNamingError` for UNet names
    ///   that do not map; `.addedConditioning` for an SDXL-family UNet.
    public static func compute(from checkpoint: Checkpoint, timesteps: [Int]) throws -> TimeFeatureCache {
        try TimestepSchedule.validate(timesteps)
        try refuseAddedConditioning(checkpoint.tensors.map(\.name))
        let modules = try TimeModules(checkpoint.tensors)
        let total = modules.projections.reduce(0) { $0 + $1.width }
        guard total <= 1 << 30, timesteps.count * total * 2 <= 1 << 32 else {
            throw TimeFeatureCacheError.tooManyFeatures(timesteps: timesteps.count, width: total)
        }
        let read = { (linear: TimeModules.Linear) in try modules.weights(of: linear, in: checkpoint) }
        let count = timesteps.count
        let hidden = try read(modules.linear1).apply(to: sinusoids(timesteps.map(Float.init), width: modules.sinusoidWidth), count: count)
        let embedding = try read(modules.linear2).apply(to: hidden.map(silu), count: count)
        let activated = embedding.map(silu)

        var values = [Float](repeating: 0, count: count * total)
        var offset = 0
        for projection in modules.projections {
            let features = try read(projection).apply(to: activated, count: count)
            for t in 0 ..< count {
                let row = features[t * projection.width ..< (t + 1) * projection.width]
                if row.contains(where: { !$0.isFinite }) {
                    throw TimeFeatureCacheError.nonFiniteFeature(layer: projection.module, timestep: timesteps[t])
                }
                values.replaceSubrange(t * total + offset ..< t * total + offset + projection.width, with: row)
            }
            offset += projection.width
        }
        return TimeFeatureCache(timesteps: timesteps, layers: modules.projections.map { ($0.module, $0.width) },
                                values: values, replacedTensorNames: modules.replacedTensorNames,
                                replacedWeights: modules.replacedWeights)
    }

    /// Throws `.addedConditioning` naming the first tensor of an SDXL-family UNet's added-conditioning MLP
    /// (`label_emb.*` in ldm names, `add_embedding.*` in diffusers names) among `names`.
    public static func refuseAddedConditioning(_ names: [String]) throws {
        for group in UNetNaming.groups(names) {
            let head = group.scheme == .ldm ? "label_emb." : "add_embedding."
            if let index = group.indices.first(where: { names[$0].dropFirst(group.prefix.count).hasPrefix(head) }) {
                throw TimeFeatureCacheError.addedConditioning(tensor: names[index])
            }
        }
    }

    /// diffusers' `get_timestep_embedding(t, width, flip_sin_to_cos, downscale_freq_shift: shift)`, [t][width]:
    /// f_k = exp(-ln(10000) x k / (width / 2 - shift)) in f32 as torch computes it, [cos, sin] when flipped, else
    /// [sin, cos], a zero appended for odd widths.
    static func sinusoids(_ timesteps: [Float], width: Int, flipSinToCos: Bool = true, shift: Float = 0) -> [Float] {
        let half = width / 2
        let frequencies = (0 ..< half).map { k in
            Float(exp(Double(Float(-log(10000.0)) * Float(k) / (Float(half) - shift))))
        }
        var result = [Float](repeating: 0, count: timesteps.count * width)
        for (row, timestep) in timesteps.enumerated() {
            for (k, frequency) in frequencies.enumerated() {
                let angle = Double(timestep * frequency)
                let (first, second) = flipSinToCos ? (cos(angle), sin(angle)) : (sin(angle), cos(angle))
                result[row * width + k] = Float(first)
                result[row * width + half + k] = Float(second)
            }
        }
        return result
    }

    static func silu(_ x: Float) -> Float {
        let value = Double(x)
        return Float(value / (1 + exp(-value)))
    }
}

/// A linear layer's weights widened to f64: y = W x + b with W [rows, columns].
struct LinearWeights {
    let weight: [Double]
    let bias: [Double]
    let rows: Int
    let columns: Int

    /// W x + b for each of the `count` input rows of `input` ([count][columns]), as [count][rows] in f32: f64
    /// products summed in f64 (eight lanes, then the lanes and the tail in order), rounded once.
    func apply(to input: [Float], count: Int) -> [Float] {
        let x = input.map(Double.init)
        var output = [Float](repeating: 0, count: count * rows)
        let lanes = columns / 8 * 8
        weight.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { out in
                    let (w, x, out) = (w.baseAddress!, x.baseAddress!, out.baseAddress!)
                    Parallel.forEach(rows) { row in
                        let weights = w + row * columns
                        for t in 0 ..< count {
                            let inputs = x + t * columns
                            var accumulator = SIMD8<Double>()
                            for i in stride(from: 0, to: lanes, by: 8) {
                                accumulator += UnsafeRawPointer(weights + i).loadUnaligned(as: SIMD8<Double>.self)
                                    * UnsafeRawPointer(inputs + i).loadUnaligned(as: SIMD8<Double>.self)
                            }
                            var sum = accumulator.sum()
                            for i in lanes ..< columns { sum += weights[i] * inputs[i] }
                            out[t * rows + row] = Float(sum + bias[row])
                        }
                    }
                }
            }
        }
        return output
    }
}

/// The tensors of a UNet's time path, located and shape-checked in the file's own naming.
struct TimeModules {
    struct Linear {
        /// The module name in the file (weight name without `.weight`).
        var module: String
        var weight: TensorEntry
        var bias: TensorEntry
        var width: Int { weight.shape[0] }
    }

    /// C0: conv_in's output channels, the sinusoidal embedding's width.
    let sinusoidWidth: Int
    let linear1: Linear
    let linear2: Linear
    /// Each ResNet's `time_emb_proj`, in execution order.
    let projections: [Linear]

    /// Finds the time path among a checkpoint's `tensors`.
    init(_ tensors: [TensorEntry]) throws {
        let names = tensors.map(\.name)
        guard let scheme = UNetNaming.detect(names) else { throw TimeFeatureCacheError.notUNet }
        let groups = UNetNaming.groups(names).filter { $0.scheme == scheme }
        guard groups.count == 1 else { throw TimeFeatureCacheError.severalUNets(prefixes: groups.map(\.prefix)) }
        let group = groups[0]
        let addresses = try UNetNaming.addresses(of: group, in: names)
        let layout = UNetLayout(addresses.map(\.module))
        let entries = Dictionary(zip(addresses, group.indices.map { tensors[$0] }), uniquingKeysWith: { a, _ in a })

        func name(_ address: UNetAddress) throws -> String {
            switch scheme {
            case .diffusers: return group.prefix + DiffusersUNetNames.name(of: address)
            case .ldm: return group.prefix + (try LDMUNetNames.name(of: address, layout: layout))
            }
        }
        func tensor(_ module: UNetAddress.Module, _ suffix: [Substring], rank: Int) throws -> TensorEntry {
            let address = UNetAddress(module: module, suffix: suffix)
            guard let entry = entries[address] else { throw TimeFeatureCacheError.missingTensor(try name(address)) }
            guard entry.dtype.isFloatingPoint else {
                throw TimeFeatureCacheError.notFloatingPoint(tensor: entry.name, dtype: entry.dtype)
            }
            guard entry.shape.count == rank, entry.shape.allSatisfy({ $0 > 0 }) else {
                let expected = rank == 1 ? "[out]" : rank == 2 ? "[out, in]" : "[out, in, kh, kw]"
                throw TimeFeatureCacheError.wrongShape(tensor: entry.name, expected: expected, found: entry.shape)
            }
            return entry
        }
        /// A linear layer of `module` (below `part`) whose input width is `inputs`.
        func linear(_ module: UNetAddress.Module, _ part: [Substring], inputs: Int) throws -> Linear {
            let weight = try tensor(module, part + ["weight"], rank: 2)
            let bias = try tensor(module, part + ["bias"], rank: 1)
            guard weight.shape[1] == inputs else {
                throw TimeFeatureCacheError.wrongShape(tensor: weight.name, expected: "[out, \(inputs)]", found: weight.shape)
            }
            guard bias.shape[0] == weight.shape[0] else {
                throw TimeFeatureCacheError.wrongShape(tensor: bias.name, expected: "[\(weight.shape[0])]", found: bias.shape)
            }
            return Linear(module: String(weight.name.dropLast(".weight".count)), weight: weight, bias: bias)
        }

        let convIn = try tensor(.convIn, ["weight"], rank: 4)
        guard convIn.shape[0] >= 2 else {
            throw TimeFeatureCacheError.wrongShape(tensor: convIn.name, expected: "[2 or more, in, kh, kw]",
                                                   found: convIn.shape)
        }
        let first = try linear(.timeEmbedding(linear: 1), [], inputs: convIn.shape[0])
        let second = try linear(.timeEmbedding(linear: 2), [], inputs: first.width)
        let resnets = Set(addresses.map(\.module).filter(Self.isResnet))
            .sorted { Self.order($0).lexicographicallyPrecedes(Self.order($1)) }
        (sinusoidWidth, linear1, linear2) = (convIn.shape[0], first, second)
        projections = try resnets.map { try linear($0, ["time_emb_proj"], inputs: second.width) }
    }

    /// The time MLP's weights and biases, then each projection's.
    var replacedTensorNames: [String] {
        ([linear1, linear2] + projections).flatMap { [$0.weight.name, $0.bias.name] }
    }

    /// Elements of the linear weights the cache replaces.
    var replacedWeights: Int { ([linear1, linear2] + projections).reduce(0) { $0 + $1.weight.elementCount } }

    /// The layer's weights read from `checkpoint` and widened to f64.
    func weights(of linear: Linear, in checkpoint: Checkpoint) throws -> LinearWeights {
        func read(_ entry: TensorEntry) throws -> [Double] {
            try checkpoint.withContiguousBytes(of: entry) { bytes in
                [Float](unsafeUninitializedCapacity: entry.elementCount) { buffer, initialized in
                    ElementConverter.convert(bytes.baseAddress!, entry.dtype, to: buffer.baseAddress!, .f32,
                                             count: entry.elementCount)
                    initialized = entry.elementCount
                }.map(Double.init)
            }
        }
        return LinearWeights(weight: try read(linear.weight), bias: try read(linear.bias),
                             rows: linear.weight.shape[0], columns: linear.weight.shape[1])
    }

    private static func isResnet(_ module: UNetAddress.Module) -> Bool {
        switch module {
        case .down(_, .resnet), .mid(.resnet), .up(_, .resnet): return true
        default: return false
        }
    }

    /// Execution order: down blocks, the mid block, up blocks; blocks and ResNets by number.
    private static func order(_ module: UNetAddress.Module) -> [Int] {
        switch module {
        case let .down(block, .resnet(index)): return [0, block, index]
        case let .mid(.resnet(index)): return [1, 0, index]
        case let .up(block, .resnet(index)): return [2, block, index]
        default: return [3, 0, 0]
        }
    }
}
