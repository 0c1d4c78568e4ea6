/// How `convert … OUT.gguf` stores each tensor: a type for the file, per-tensor rules, and whose conventions to follow.
public struct GGUFWriteOptions: Sendable {
    /// One `--tensor-type PATTERN=TYPE` rule: tensors whose output name the pattern matches take the type.
    public struct Rule: @unchecked Sendable {
        public let pattern: String
        public let type: GGMLType
        let regex: Regex<AnyRegexOutput>

        /// Parses `PATTERN=TYPE` (the pattern a regular expression searched for anywhere in the name).
        public init(_ text: String) throws {
            guard let equals = text.lastIndex(of: "=") else {
                throw GGUFError.badOption("--tensor-type \(text): expected PATTERN=TYPE (e.g. 'attn2\\.to_[kv]=q8_0')")
            }
            pattern = String(text[..<equals])
            let typeName = String(text[text.index(after: equals)...])
            guard let type = GGMLType(name: typeName), GGUFWriteOptions.writable.contains(type) else {
                throw GGUFError.badOption("--tensor-type \(text): \(typeName) is not a type bfq writes ("
                    + GGUFWriteOptions.writable.map { $0.name.lowercased() }.joined(separator: ", ") + ")")
            }
            self.type = type
            do {
                regex = try Regex(pattern)
            } catch {
                throw GGUFError.badOption("--tensor-type \(text): '\(pattern)' is not a regular expression (\(error))")
            }
        }

        func matches(_ name: String) -> Bool { name.contains(regex) }
    }

    /// The types `--type` and `--tensor-type` accept.
    public static let writable: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_k, .q3_k, .q4_k,
                                              .q5_k, .q6_k, .tq1_0, .tq2_0]

    /// The type of every weight no rule names and that the type's blocks fit.
    public var type: GGMLType
    /// For a .bfq input: each quantized layer takes the ggml type closest to its levels (`closestType`) instead of
    /// `type`.
    public var closest: Bool
    /// Rules tried in order before `type`; the first whose pattern matches decides.
    public var rules: [Rule]
    public var layout: GGUFLayout

    public init(type: GGMLType = .f16, closest: Bool = false, rules: [Rule] = [], layout: GGUFLayout = .sdcpp) {
        self.type = type
        self.closest = closest
        self.rules = rules
        self.layout = layout
    }

    /// Parses a `--type` value.
    public static func type(named text: String) throws -> GGMLType {
        guard let type = GGMLType(name: text), writable.contains(type) else {
            throw GGUFError.badOption("--type \(text): not a type bfq writes ("
                + writable.map { $0.name.lowercased() }.joined(separator: ", ") + ")")
        }
        return type
    }

    /// The ggml type for a .bfq layer of `levels` levels whose stored rows are `row` long: TQ2_0 when the layer is
    /// ternary and TQ2_0 holds it exactly (`exactTernary`), else the smallest type with at least log2(levels) bits
    /// per weight whose blocks fit the rows (K-quants, then Q4_0, Q5_0, Q8_0), else F16.
    static func closestType(levels: Int, row: Int, exactTernary: Bool) -> (type: GGMLType, reason: String) {
        if exactTernary { return (.tq2_0, "ternary, exact") }
        let bits = ContainerTensor.bits(levels)
        let candidates: [GGMLType] = [.q2_k, .q3_k, .q4_0, .q4_k, .q5_0, .q5_k, .q6_k, .q8_0]
        let fitting = candidates.filter { $0.bitsPerWeight >= bits && row % $0.block.elements == 0 }
        guard let best = fitting.min(by: { $0.bitsPerWeight != $1.bitsPerWeight ? $0.bitsPerWeight < $1.bitsPerWeight : $0.block.elements > $1.block.elements })
        else { return (.f16, "rows fit no block type") }
        return (best, "closest to its levels")
    }

    /// The float type for tensors kept unquantized: the requested type when it is a float type, else F16.
    var keptType: GGMLType { [.f32, .f16, .bf16].contains(type) ? type : .f16 }

    /// Tensors the peers never quantize whatever the type: the UNet's input and output convolutions and its time,
    /// label and added-condition embeddings (stable-diffusion.cpp and ComfyUI-GGUF's lists, in both namings).
    static let keptNames = ["conv_in.", "conv_out.", "input_blocks.0.0.", "out.2.", "time_embed.", "time_embedding.",
                            "label_emb.", "add_embedding.", "class_embedding."]

    /// The type of a floating-point tensor named `name` whose stored rows are `row` elements long, and why.
    func choose(name: String, rank: Int, row: Int) -> (type: GGMLType, reason: String) {
        let rule = rules.first { $0.matches(name) }
        let wanted = rule?.type ?? type
        if wanted.block.elements == 1 { return (wanted, rule.map { "rule \($0.pattern)" } ?? "--type") }
        if rule == nil {
            if rank < 2 { return (keptType, "1-D") }
            if GGUFWriteOptions.keptNames.contains(where: { name.hasPrefix($0) || name.contains("." + $0) }) {
                return (keptType, "input/output convolution or embedding")
            }
        }
        if layout == .comfy && rank != 2 { return (keptType, "not 2-D") }
        guard row % wanted.block.elements == 0 else { return (keptType, "rows not a multiple of \(wanted.name)'s block") }
        return (wanted, rule.map { "rule \($0.pattern)" } ?? "--type")
    }
}
