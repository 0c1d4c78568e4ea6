/// The JSON manifest of a .bfq file (spec/bfq.md section 3), as values.
public struct ContainerManifest: Equatable, Sendable {
    public var tool: String
    public var tensors: [ContainerTensor]
    public var metadata: [String: String]
    /// Name, size and SHA-256 (hex) of the file the container was made from.
    public var source: SourceFile?
    public var plan: JSONValue?
    public var timeFeatures: TimeFeatures?
    public var totals: Totals?

    /// The time-feature cache (spec/bfq.md section 3.3): F16 values [timestep][layer][width] in one section.
    public struct TimeFeatures: Equatable, Sendable {
        public var timesteps: [Int]
        public var layers: [(name: String, width: Int)]
        public var features: ContainerTensor.SectionReference
        /// Conv and linear weights the cache replaces (the time-embedding MLP, each `time_emb_proj`).
        public var replacedWeights: Int

        public init(timesteps: [Int], layers: [(name: String, width: Int)], features: ContainerTensor.SectionReference,
                    replacedWeights: Int = 0) {
            self.timesteps = timesteps
            self.layers = layers
            self.features = features
            self.replacedWeights = replacedWeights
        }

        /// Cached values: timesteps x the sum of the layer widths.
        public var valueCount: Int { timesteps.count * layers.reduce(0) { $0 + $1.width } }

        public static func == (a: TimeFeatures, b: TimeFeatures) -> Bool {
            a.timesteps == b.timesteps && a.features == b.features && a.replacedWeights == b.replacedWeights
                && a.layers.map(\.name) == b.layers.map(\.name) && a.layers.map(\.width) == b.layers.map(\.width)
        }
    }

    public struct SourceFile: Equatable, Sendable {
        public var name: String
        public var size: Int
        public var sha256: String

        public init(name: String, size: Int, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    public struct Totals: Equatable, Sendable {
        public var weights: Int
        public var averageBits: Double
        public var fileBitsPerWeight: Double

        public init(weights: Int, averageBits: Double, fileBitsPerWeight: Double) {
            self.weights = weights
            self.averageBits = averageBits
            self.fileBitsPerWeight = fileBitsPerWeight
        }
    }

    public init(tool: String = "bfq \(BFQVersion.string)", tensors: [ContainerTensor], metadata: [String: String] = [:],
                source: SourceFile? = nil, plan: JSONValue? = nil, timeFeatures: TimeFeatures? = nil, totals: Totals? = nil) {
        self.tool = tool
        self.tensors = tensors
        self.metadata = metadata
        self.source = source
        self.plan = plan
        self.timeFeatures = timeFeatures
        self.totals = totals
    }
}

/// One tensor of a container: where its sections are and how to decode them.
public struct ContainerTensor: Equatable, Sendable {
    public enum Encoding: Equatable, Sendable {
        /// Elements stored as they are, in `dtype`.
        case raw(dtype: DType)
        /// Codes on a uniform grid of `levels` (balanced 2^b+1 or plain 2^b) with scales per row or per group.
        case grid(levels: Int, balanced: Bool, scaleType: DType, groupSize: Int?, offsetType: DType?,
                  packing: CodePacking = .radix)
        /// Codes indexing per-row or per-tensor f16 tables of `levels` entries.
        case palette(levels: Int, perRow: Bool, packing: CodePacking = .radix)

        var name: String {
            switch self {
            case .raw: return "raw"
            case .grid: return "grid"
            case .palette: return "palette"
            }
        }
    }

    /// A section as the manifest names it, repeating the table's sizes and decoded CRC.
    public struct SectionReference: Equatable, Sendable {
        public var index: Int
        public var storedSize: Int
        public var decodedSize: Int
        public var crc32: UInt32
    }

    public var name: String
    public var shape: [Int]
    /// The dtype in the source checkpoint.
    public var sourceType: DType
    public var encoding: Encoding
    /// Role (`data`, `codes`, `scales`, `offsets`, `palette`) to section.
    public var sections: [String: SectionReference]
    public var sqnrDB: Double?

    public init(name: String, shape: [Int], sourceType: DType, encoding: Encoding,
                sections: [String: SectionReference], sqnrDB: Double? = nil) {
        self.name = name
        self.shape = shape
        self.sourceType = sourceType
        self.encoding = encoding
        self.sections = sections
        self.sqnrDB = sqnrDB
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

extension ContainerTensor {
    /// Level count of a quantized tensor; nil for raw tensors.
    public var levels: Int? {
        switch encoding {
        case .raw: return nil
        case let .grid(levels, _, _, _, _, _), let .palette(levels, _, _): return levels
        }
    }

    /// How a quantized tensor's codes are packed; nil for raw tensors.
    public var packing: CodePacking? {
        switch encoding {
        case .raw: return nil
        case let .grid(_, _, _, _, _, packing), let .palette(_, _, packing): return packing
        }
    }

    /// Bits a code counts for (log2 of the levels), or the element width of a raw tensor.
    public var bitsPerCode: Double {
        switch encoding {
        case let .raw(dtype): return Double(8 * dtype.byteSize)
        case let .grid(levels, _, _, _, _, _), let .palette(levels, _, _): return ContainerTensor.bits(levels)
        }
    }

    /// Bytes of all the tensor's sections as stored in the file.
    public var storedBytes: Int { sections.values.reduce(0) { $0 + $1.storedSize } }
}
