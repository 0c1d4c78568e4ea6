import Crypto

/// What `bfq plan --save-measurements` keeps of a measurement so that `--measurements` can allocate at any budget
/// without measuring again: every planned layer's bits and distortion per candidate, the file and naming they were
/// measured on, the sensitivity and calibration settings, the candidate set, and the importance weights that
/// weighed the quantizers (so `quantize --measurements` quantizes as the measuring run would have).
///
/// Stored as JSON: `format` "bfq-measurements", `version` 1, `source` {sha256, bytes, naming}, `sensitivity`,
/// `calibration` (output sensitivity), `candidates` (descriptions), `signal` (output sensitivity: the reference
/// prediction's sum of squares), `layers` [{name, shape, parameters, signal, candidates: [{choice, bits, distortion,
/// weight_distortion}]}], `importance` {layer: [values]}, and last `checksum`: the SHA-256 of the file's text with
/// the checksum's 64 hex digits replaced by zeros, so a damaged or edited file is refused.
public struct MeasurementsFile: Sendable {
    public static let format = "bfq-measurements"
    public static let version: Int64 = 1

    public var sourceSHA256: String
    public var sourceBytes: Int
    public var naming: NamingScheme
    public var sensitivity: QuantizationOptions.Sensitivity
    /// The calibration set of output sensitivity; nil in weight space.
    public var calibration: EvaluationOptions?
    public var candidates: [LayerChoice]
    /// Sum of squares of the reference prediction (output sensitivity), else nil.
    public var signal: Double?
    /// Shapes of the measured weights by layer.
    public var shapes: [String: [Int]]
    public var layers: [LayerMeasurement]
    public var importance: LayerImportance?

    public init(sourceSHA256: String, sourceBytes: Int, naming: NamingScheme, sensitivity: QuantizationOptions.Sensitivity,
                calibration: EvaluationOptions?, candidates: [LayerChoice], signal: Double?, shapes: [String: [Int]],
                layers: [LayerMeasurement], importance: LayerImportance?) {
        (self.sourceSHA256, self.sourceBytes, self.naming, self.sensitivity) = (sourceSHA256, sourceBytes, naming, sensitivity)
        (self.calibration, self.candidates, self.signal, self.shapes) = (calibration, candidates, signal, shapes)
        (self.layers, self.importance) = (layers, importance)
    }

    private static let zeros = String(repeating: "0", count: 64)

    /// The file's text, checksum included.
    public func text() -> String {
        var members: [JSONMember] = [
            JSONMember("format", .string(Self.format)), JSONMember("version", .int(Self.version)),
            JSONMember("source", .object([JSONMember("sha256", .string(sourceSHA256)), JSONMember("bytes", .int(Int64(sourceBytes))),
                                          JSONMember("naming", .string(naming.rawValue))])),
            JSONMember("sensitivity", .string(sensitivity.rawValue)),
        ]
        if let calibration { members.append(JSONMember("calibration", Self.json(calibration))) }
        members.append(JSONMember("candidates", .array(candidates.map { .string($0.description) })))
        if let signal { members.append(JSONMember("signal", .double(signal))) }
        members.append(JSONMember("layers", .array(layers.map { layer in
            .object([
                JSONMember("name", .string(layer.layer)),
                JSONMember("shape", .array((shapes[layer.layer] ?? []).map { .int(Int64($0)) })),
                JSONMember("parameters", .int(Int64(layer.parameters))), JSONMember("signal", .double(layer.signal)),
                JSONMember("candidates", .array(layer.candidates.map { candidate in
                    .object([JSONMember("choice", .string(candidate.choice.description)), JSONMember("bits", .double(candidate.bits)),
                             JSONMember("distortion", .double(candidate.distortion)),
                             JSONMember("weight_distortion", .double(candidate.weightDistortion))])
                })),
            ])
        })))
        if let importance {
            members.append(JSONMember("importance", .object(importance.moments.keys.sorted().map { name in
                JSONMember(name, .array(importance.moments[name]!.map { .double(Double($0)) }))
            })))
        }
        members.append(JSONMember("checksum", .string(Self.zeros)))
        let text = JSONWriter.pretty(.object(members)) + "\n"
        return text.replacing("\"checksum\": \"\(Self.zeros)\"", with: "\"checksum\": \"\(Self.digest(text))\"")
    }

    private static func digest(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    static func json(_ calibration: EvaluationOptions) -> JSONValue {
        .object([
            JSONMember("samples", .int(Int64(calibration.samples ?? 2))),
            JSONMember("size", .array([.int(Int64(calibration.height)), .int(Int64(calibration.width))])),
            JSONMember("timesteps", .array((calibration.timesteps ?? []).map { .int(Int64($0)) })),
            JSONMember("seed", .int(Int64(bitPattern: calibration.seed))),
            JSONMember("tokens", .int(Int64(calibration.tokens))),
        ])
    }

    /// Reads and checks a measurements file: its format, version, checksum and every field's type.
    public static func load(_ path: String) throws -> MeasurementsFile {
        let file = try MappedFile(path: path)
        func invalid(_ reason: String) -> QuantizationError { .invalidMeasurements(path: path, reason: reason) }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch { throw invalid("not JSON: \(error)") }
        guard json["format"]?.stringValue == format else { throw invalid("\"format\" is not \"\(format)\"") }
        guard json["version"]?.intValue == version else { throw invalid("version \(json["version"].map { "\($0)" } ?? "missing"), this bfq reads \(version)") }
        guard let checksum = json["checksum"]?.stringValue, checksum.count == 64, checksum != zeros,
              checksum.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw invalid("no valid \"checksum\"") }
        let text = String(decoding: file.bytes, as: UTF8.self)
        let sealed = "\"checksum\": \"\(checksum)\""
        guard text.ranges(of: sealed).count == 1, digest(text.replacing(sealed, with: "\"checksum\": \"\(zeros)\"")) == checksum else {
            throw invalid("checksum mismatch: the file is damaged or was edited")
        }
        func field<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw invalid("\"\(name)\" is missing or of the wrong type") }
            return value
        }
        let source = try field(json["source"], "source")
        let sha = try field(source["sha256"]?.stringValue, "source.sha256")
        let bytes = try field(source["bytes"]?.intValue, "source.bytes")
        let naming = try field(source["naming"]?.stringValue.flatMap(NamingScheme.init(rawValue:)), "source.naming")
        let sensitivity = try field(json["sensitivity"]?.stringValue.flatMap(QuantizationOptions.Sensitivity.init(rawValue:)), "sensitivity")
        var calibration: EvaluationOptions?
        if let object = json["calibration"] {
            var options = EvaluationOptions()
            options.samples = Int(try field(object["samples"]?.intValue, "calibration.samples"))
            let size = try field(object["size"]?.arrayValue?.compactMap(\.intValue), "calibration.size")
            guard size.count == 2 else { throw invalid("\"calibration.size\" needs 2 integers") }
            (options.height, options.width) = (Int(size[0]), Int(size[1]))
            let timesteps = try field(object["timesteps"]?.arrayValue, "calibration.timesteps")
            options.timesteps = try timesteps.map { Int(try field($0.intValue, "calibration.timesteps")) }
            options.seed = UInt64(bitPattern: try field(object["seed"]?.intValue, "calibration.seed"))
            options.tokens = Int(try field(object["tokens"]?.intValue, "calibration.tokens"))
            calibration = options
        }
        guard sensitivity.isOutput == (calibration != nil) else { throw invalid("\"calibration\" goes with output sensitivity only") }
        let names = try field(json["candidates"]?.arrayValue, "candidates").map { try field($0.stringValue, "candidates") }
        let candidates = try names.map { name in
            guard let choice = LayerChoice(description: name) else { throw invalid("unknown candidate \"\(name)\"") }
            return choice
        }
        var shapes: [String: [Int]] = [:]
        let layers = try field(json["layers"]?.arrayValue, "layers").map { layer -> LayerMeasurement in
            let name = try field(layer["name"]?.stringValue, "layers[].name")
            guard shapes[name] == nil else { throw invalid("layer \(name) appears twice") }
            shapes[name] = try field(layer["shape"]?.arrayValue?.map { try field($0.intValue, "layers[].shape") }, "layers[].shape").map { Int($0) }
            let entries = try field(layer["candidates"]?.arrayValue, "layers[].candidates").map { entry in
                LayerMeasurement.Candidate(choice: try field(entry["choice"]?.stringValue.flatMap(LayerChoice.init(description:)), "choice"),
                                           bits: try field(entry["bits"]?.doubleValue, "bits"),
                                           distortion: try field(entry["distortion"]?.doubleValue, "distortion"),
                                           weightDistortion: try field(entry["weight_distortion"]?.doubleValue, "weight_distortion"))
            }
            guard Set(entries.map(\.choice)) == Set(candidates), entries.count == candidates.count,
                  entries.allSatisfy({ $0.bits >= 0 && $0.distortion >= 0 && $0.weightDistortion >= 0 }) else {
                throw invalid("layer \(name): its candidates are not the file's candidates with bits and distortions >= 0")
            }
            return LayerMeasurement(layer: name, parameters: Int(try field(layer["parameters"]?.intValue, "parameters")),
                                    signal: try field(layer["signal"]?.doubleValue, "signal"), candidates: entries)
        }
        var importance: LayerImportance?
        if let object = json["importance"]?.objectValue {
            var moments: [String: [Float]] = [:]
            for member in object {
                let values = try field(member.value.arrayValue?.map { try field($0.doubleValue, "importance") }, "importance")
                guard values.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw invalid("importance of \(member.key) is negative or not finite") }
                moments[member.key] = values.map(Float.init)
            }
            importance = LayerImportance(moments: moments, origin: path)
        }
        return MeasurementsFile(sourceSHA256: sha, sourceBytes: Int(bytes), naming: naming, sensitivity: sensitivity,
                                calibration: calibration, candidates: candidates, signal: json["signal"]?.doubleValue,
                                shapes: shapes, layers: layers, importance: importance)
    }
}
