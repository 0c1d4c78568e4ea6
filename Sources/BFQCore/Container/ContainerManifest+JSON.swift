#if canImport(Glibc)
import Glibc
#endif

/// The manifest as JSON: writing with keys in a fixed order, reading with every type checked (invariant 8).
extension ContainerManifest {
    public var json: JSONValue {
        var members = [JSONMember("format", "bfq"), JSONMember("tool", .string(tool)),
                       JSONMember("tensors", .array(tensors.map(\.json)))]
        if !metadata.isEmpty {
            members.append(JSONMember("metadata", .object(metadata.keys.sorted().map { JSONMember($0, .string(metadata[$0]!)) })))
        }
        if let source {
            members.append(JSONMember("source", .object([JSONMember("name", .string(source.name)),
                                                          JSONMember("size", .int(Int64(source.size))),
                                                          JSONMember("sha256", .string(source.sha256))])))
        }
        if let plan { members.append(JSONMember("plan", plan)) }
        if let timeFeatures {
            members.append(JSONMember("time_features", .object([
                JSONMember("timesteps", .array(timeFeatures.timesteps.map { .int(Int64($0)) })),
                JSONMember("layers", .array(timeFeatures.layers.map {
                    .object([JSONMember("name", .string($0.name)), JSONMember("width", .int(Int64($0.width)))])
                })),
                JSONMember("replaced_weights", .int(Int64(timeFeatures.replacedWeights))),
                JSONMember("sections", .object([JSONMember("features", timeFeatures.features.json)])),
            ])))
        }
        if let totals {
            members.append(JSONMember("totals", .object([JSONMember("weights", .int(Int64(totals.weights))),
                                                          JSONMember("average_bits", .double(totals.averageBits)),
                                                          JSONMember("file_bits_per_weight", .double(totals.fileBitsPerWeight))])))
        }
        return .object(members)
    }

    /// Reads a manifest, checking the keys and types of spec/bfq.md section 3.
    init(json: JSONValue, path: String) throws {
        let fields = ManifestFields(json, path: path, context: "manifest")
        guard try fields.string("format") == "bfq" else { throw fields.invalid("\"format\" is not \"bfq\"") }
        tool = try fields.string("tool")
        tensors = try fields.array("tensors").enumerated().map { index, value in
            try ContainerTensor(json: value, path: path, index: index)
        }
        metadata = [:]
        if let members = try fields.optionalObject("metadata") {
            for member in members {
                guard let text = member.value.stringValue else { throw fields.invalid("metadata \"\(member.key)\" is not a string") }
                guard metadata.updateValue(text, forKey: member.key) == nil else {
                    throw fields.invalid("metadata keys \"\(member.key)\" differ only in Unicode normalisation")
                }
            }
        }
        if let value = json["source"] {
            let source = ManifestFields(value, path: path, context: "source")
            let digest = try source.string("sha256")
            guard digest.utf8.count == 64, digest.utf8.allSatisfy({ (48 ... 57).contains($0) || (97 ... 102).contains($0) }) else {
                throw source.invalid("\"sha256\" is not 64 lowercase hex digits")
            }
            self.source = SourceFile(name: try source.string("name"), size: try source.natural("size"), sha256: digest)
        }
        plan = json["plan"]
        if let value = json["time_features"] {
            let cache = ManifestFields(value, path: path, context: "time_features")
            let timesteps = try cache.array("timesteps").map { try cache.natural($0, "timesteps") }
            let layers = try cache.array("layers").map { layer in
                let fields = ManifestFields(layer, path: path, context: "time_features layer")
                return (name: try fields.string("name"), width: try fields.natural("width"))
            }
            let sections = try cache.object("sections")
            guard sections.count == 1, sections[0].key == "features" else {
                throw cache.invalid("\"sections\" must hold exactly the role features")
            }
            timeFeatures = TimeFeatures(timesteps: timesteps, layers: layers,
                                        features: try ContainerTensor.SectionReference(json: sections[0].value, path: path,
                                                                                       context: "time_features features"),
                                        replacedWeights: try cache.optionalNatural("replaced_weights") ?? 0)
        }
        if let value = json["totals"] {
            let totals = ManifestFields(value, path: path, context: "totals")
            self.totals = Totals(weights: try totals.natural("weights"), averageBits: try totals.number("average_bits"),
                                 fileBitsPerWeight: try totals.number("file_bits_per_weight"))
        }
    }
}

extension ContainerTensor {
    var json: JSONValue {
        var members = [JSONMember("name", .string(name)), JSONMember("shape", .array(shape.map { .int(Int64($0)) })),
                       JSONMember("dtype", .string(sourceType.rawValue)), JSONMember("encoding", .string(encoding.name))]
        switch encoding {
        case let .raw(dtype):
            members.append(JSONMember("raw_dtype", .string(dtype.rawValue)))
        case let .grid(levels, balanced, scaleType, groupSize, offsetType, _):
            members += [JSONMember("levels", .int(Int64(levels))), JSONMember("grid", .string(balanced ? "balanced" : "plain")),
                        JSONMember("scale_dtype", .string(scaleType.rawValue))]
            if let groupSize { members.append(JSONMember("group_size", .int(Int64(groupSize)))) }
            if let offsetType { members.append(JSONMember("offset_dtype", .string(offsetType.rawValue))) }
            members.append(JSONMember("bits", .double(Self.bits(levels))))
        case let .palette(levels, perRow, _):
            members += [JSONMember("levels", .int(Int64(levels))), JSONMember("palette_per", .string(perRow ? "row" : "tensor")),
                        JSONMember("bits", .double(Self.bits(levels)))]
        }
        // Radix, the default, goes unwritten, so files without byte packing keep their 1.0 manifests.
        if let packing, packing != .radix { members.append(JSONMember("packing", .string(packing.rawValue))) }
        members.append(JSONMember("sections", .object(sections.keys.sorted().map { JSONMember($0, sections[$0]!.json) })))
        if let sqnrDB { members.append(JSONMember("sqnr_db", .double(sqnrDB))) }
        return .object(members)
    }

    /// log2(levels), the bits a code is counted as.
    static func bits(_ levels: Int) -> Double { log2(Double(levels)) }

    init(json: JSONValue, path: String, index: Int) throws {
        let fields = ManifestFields(json, path: path, context: "tensor \(index)")
        name = try fields.string("name")
        guard !name.isEmpty else { throw fields.invalid("\"name\" is empty") }
        let named = ManifestFields(json, path: path, context: "tensor \(name)")
        shape = try named.array("shape").map { try named.natural($0, "shape") }
        guard let source = DType(rawValue: try named.string("dtype")) else { throw named.invalid("\"dtype\" is not a known dtype") }
        sourceType = source
        switch try named.string("encoding") {
        case "raw":
            guard let raw = DType(rawValue: try named.string("raw_dtype")) else { throw named.invalid("\"raw_dtype\" is not a known dtype") }
            encoding = .raw(dtype: raw)
        case "grid":
            let grid = try named.string("grid")
            guard grid == "balanced" || grid == "plain" else { throw named.invalid("\"grid\" is not \"balanced\" or \"plain\"") }
            encoding = .grid(levels: try named.natural("levels"), balanced: grid == "balanced",
                             scaleType: try named.floatType("scale_dtype"),
                             groupSize: try named.optionalNatural("group_size"),
                             offsetType: json["offset_dtype"] == nil ? nil : try named.floatType("offset_dtype"),
                             packing: try named.packing())
        case "palette":
            let per = try named.string("palette_per")
            guard per == "row" || per == "tensor" else { throw named.invalid("\"palette_per\" is not \"row\" or \"tensor\"") }
            encoding = .palette(levels: try named.natural("levels"), perRow: per == "row", packing: try named.packing())
        default:
            throw named.invalid("\"encoding\" is not raw, grid or palette")
        }
        sections = [:]
        for member in try named.object("sections") {
            sections[member.key] = try SectionReference(json: member.value, path: path, context: "tensor \(name) section \(member.key)")
        }
        sqnrDB = json["sqnr_db"] == nil ? nil : try named.number("sqnr_db")
    }
}

extension ContainerTensor.SectionReference {
    var json: JSONValue {
        .object([JSONMember("index", .int(Int64(index))), JSONMember("stored_size", .int(Int64(storedSize))),
                 JSONMember("decoded_size", .int(Int64(decodedSize))), JSONMember("crc32", .int(Int64(crc32)))])
    }

    init(json: JSONValue, path: String, context: String) throws {
        let fields = ManifestFields(json, path: path, context: context)
        let crc = try fields.natural("crc32")
        guard crc <= Int(UInt32.max) else { throw fields.invalid("\"crc32\" is over 32 bits") }
        self.init(index: try fields.natural("index"), storedSize: try fields.natural("stored_size"),
                  decodedSize: try fields.natural("decoded_size"), crc32: UInt32(crc))
    }
}

/// Typed access to one JSON object of the manifest, every failure naming where it is.
struct ManifestFields {
    let value: JSONValue
    let path: String
    let context: String

    init(_ value: JSONValue, path: String, context: String) {
        self.value = value
        self.path = path
        self.context = context
    }

    func invalid(_ rule: String) -> ContainerError { .manifestInvalid(path: path, rule: "\(context): \(rule)") }

    private func field(_ key: String) throws -> JSONValue {
        guard value.objectValue != nil else { throw invalid("is not an object") }
        guard let field = value[key] else { throw invalid("missing \"\(key)\"") }
        return field
    }

    func string(_ key: String) throws -> String {
        guard let text = try field(key).stringValue else { throw invalid("\"\(key)\" is not a string") }
        return text
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard let array = try field(key).arrayValue else { throw invalid("\"\(key)\" is not an array") }
        return array
    }

    func object(_ key: String) throws -> [JSONMember] {
        guard let members = try field(key).objectValue else { throw invalid("\"\(key)\" is not an object") }
        return members
    }

    func optionalObject(_ key: String) throws -> [JSONMember]? {
        guard value[key] != nil else { return nil }
        return try object(key)
    }

    func natural(_ key: String) throws -> Int { try natural(try field(key), key) }

    func natural(_ element: JSONValue, _ key: String) throws -> Int {
        guard let number = element.intValue, number >= 0, number < Int64.max else {
            throw invalid("\"\(key)\" holds something other than an integer in [0, 2^63)")
        }
        return Int(number)
    }

    func optionalNatural(_ key: String) throws -> Int? {
        guard value[key] != nil else { return nil }
        return try natural(key)
    }

    func number(_ key: String) throws -> Double {
        switch try field(key) {
        case let .int(number): return Double(number)
        case let .double(number): return number
        default: throw invalid("\"\(key)\" is not a number")
        }
    }

    /// The optional `packing` key: radix when absent.
    func packing() throws -> CodePacking {
        guard value["packing"] != nil else { return .radix }
        guard let packing = CodePacking(rawValue: try string("packing")) else { throw invalid("\"packing\" is not \"radix\" or \"bytes\"") }
        return packing
    }

    func floatType(_ key: String) throws -> DType {
        let name = try string(key)
        guard name == "F16" || name == "F32", let type = DType(rawValue: name) else { throw invalid("\"\(key)\" is not F16 or F32") }
        return type
    }
}
