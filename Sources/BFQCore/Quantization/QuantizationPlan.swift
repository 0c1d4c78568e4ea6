/// Bits and encoding for every allocated layer of a UNet, by diffusers layer name: what `bfq plan` writes and
/// `bfq quantize --plan` applies. Built in: `bitsfusion-sd15` (the paper's published 1.99-bit recipe) and
/// `uniform:B` (every layer at B bits).
public struct QuantizationPlan: Sendable, Equatable {
    /// Layer name -> choice.
    public var choices: [String: LayerChoice]
    /// Where the plan came from: a built-in name, "allocated", or a file path.
    public var origin: String
    /// Timesteps whose time features the plan assumes cached, if any.
    public var cacheTimesteps: [Int]?
    /// Per layer, what the allocator measured (empty for built-ins and files).
    public var measurements: [String: LayerMeasurement]
    /// Settings the allocator used, written to the plan file as they are.
    public var settings: [JSONMember]
    /// The `sensitivity` a loaded plan file records (how it was allocated), if any; not written back.
    public var sensitivity: String?

    public init(choices: [String: LayerChoice], origin: String, cacheTimesteps: [Int]? = nil,
                measurements: [String: LayerMeasurement] = [:], settings: [JSONMember] = []) {
        self.choices = choices
        self.origin = origin
        self.cacheTimesteps = cacheTimesteps
        self.measurements = measurements
        self.settings = settings
    }

    /// A built-in plan by name, or nil when `name` is not one (then it is a file path).
    public static func builtIn(_ name: String, layers: [String]) throws -> QuantizationPlan? {
        if name == BitsFusionRecipe.name { return BitsFusionRecipe.plan }
        guard name.hasPrefix("uniform:") else { return nil }
        guard let bits = Int(name.dropFirst("uniform:".count)), (1 ... 8).contains(bits) else {
            throw QuantizationError.unknownBuiltInPlan(name)
        }
        return QuantizationPlan(choices: Dictionary(uniqueKeysWithValues: layers.map { ($0, .grid(bits)) }), origin: name)
    }

    /// Reads a plan file written by `bfq plan` (or by hand: only `layers[].name`, `bits` and optionally `encoding`,
    /// `group_size` are needed).
    public static func load(_ path: String) throws -> QuantizationPlan {
        let file = try MappedFile(path: path)
        func invalid(_ reason: String) -> QuantizationError { .invalidPlan(plan: path, reason: reason) }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch { throw invalid("\(error)") }
        guard json["format"]?.stringValue == "bfq-plan" else { throw invalid("\"format\" is not \"bfq-plan\"") }
        guard let layers = json["layers"]?.arrayValue else { throw invalid("\"layers\" is not an array") }
        var choices: [String: LayerChoice] = [:]
        for (index, layer) in layers.enumerated() {
            guard let name = layer["name"]?.stringValue else { throw invalid("layers[\(index)] has no string \"name\"") }
            guard let bits = layer["bits"]?.intValue else { throw invalid("layer \(name): \"bits\" is not an integer") }
            let kindName = layer["encoding"]?.stringValue ?? "grid"
            guard let kind = LayerChoice.Kind(rawValue: kindName) else {
                throw invalid("layer \(name): \"encoding\" must be grid, palette or raw, not \"\(kindName)\"")
            }
            let groupSize = try layer["group_size"].map { value -> Int in
                guard let size = value.intValue, QuantizedValues.groupSizes.contains(Int(size)), kind == .grid else {
                    throw invalid("layer \(name): \"group_size\" must be an integer in 32...256 on a grid")
                }
                return Int(size)
            }
            let valid = kind == .raw ? bits == 16 : (1 ... 8).contains(bits)
            guard valid else { throw invalid("layer \(name): \(bits) bits is not 1...8 (16 for raw)") }
            guard choices.updateValue(LayerChoice(kind: kind, bits: Int(bits), groupSize: groupSize), forKey: name) == nil else {
                throw invalid("layer \(name) appears twice")
            }
        }
        var timesteps: [Int]?
        if let values = json["cache_timesteps"]?.arrayValue {
            let list = try values.map {
                guard let t = $0.intValue else { throw invalid("\"cache_timesteps\" holds a non-integer") }
                return Int(t)
            }.sorted()
            do { try TimestepSchedule.validate(list) } catch { throw invalid("\"cache_timesteps\": \(error)") }
            timesteps = list
        }
        var plan = QuantizationPlan(choices: choices, origin: path, cacheTimesteps: timesteps)
        plan.sensitivity = json["sensitivity"]?.stringValue
        return plan
    }

    /// The plan file: settings, totals, then one object per layer in UNet order.
    public func json(layout: QuantizationLayout, averageBits: Double) -> JSONValue {
        var members: [JSONMember] = [JSONMember("format", "bfq-plan"), JSONMember("origin", .string(origin))]
        members += settings
        if let cacheTimesteps { members.append(JSONMember("cache_timesteps", .array(cacheTimesteps.map { .int(Int64($0)) }))) }
        members.append(JSONMember("average_bits", .double(averageBits)))
        let layers = layout.tensors.compactMap { tensor -> JSONValue? in
            guard let layer = tensor.layer, let choice = choices[layer] else { return nil }
            var fields = [JSONMember("name", .string(layer)), JSONMember("parameters", .int(Int64(tensor.entry.elementCount))),
                          JSONMember("bits", .int(Int64(choice.bits))), JSONMember("encoding", .string(choice.kind.rawValue))]
            if let size = choice.groupSize { fields.append(JSONMember("group_size", .int(Int64(size)))) }
            if let measured = measurements[layer] { fields += measured.json(chosen: choice) }
            return .object(fields)
        }
        members.append(JSONMember("layers", .array(layers.sorted { UNetOrder.precedes($0["name"]!.stringValue!, $1["name"]!.stringValue!) })))
        return .object(members)
    }
}
