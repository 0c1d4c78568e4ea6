/// What `bfq quantize` made: per tensor, its parameters, choice, SQNR and share of the file; in total, the paper's
/// average bits, the file's real bits per weight, its size and ratio against fp16, what each storage stage of the codes
/// took (log2 accounting, packing, zstd) and what the time-feature cache saved.
public struct QuantizationReport: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var parameters: Int
        /// nil for tensors kept raw outside the plan.
        public var choice: LayerChoice?
        /// The raw element type, for tensors stored raw.
        public var dtype: DType?
        public var sqnr: Double?
        /// All of the tensor's sections as stored.
        public var storedBytes: Int
        /// Packed code bytes before zstd, and as stored (quantized tensors).
        public var codeBytes = 0
        public var codeStoredBytes = 0
        /// How a calibrated layer was rounded (`CalibratedQuantization`); nil otherwise.
        public var rounding: RoundingOutcome?
    }

    public var rows: [Row]
    /// The manifest as written (totals filled in).
    public var manifest: ContainerManifest
    public var fileSize: Int
    /// Parameters of the tensors the model was made from (cached ones included).
    public var sourceParameters: Int

    var totals: ContainerManifest.Totals { manifest.totals! }
    var quantized: [Row] { rows.filter { $0.codeBytes > 0 } }
    /// Code bits as log2(levels) per weight counts them.
    var accountedCodeBytes: Double {
        zip(rows, manifest.tensors).reduce(0.0) { total, pair in
            pair.0.codeBytes > 0 ? total + pair.1.bitsPerCode * Double(pair.0.parameters) / 8 : total
        }
    }

    /// fp16 size of the source's parameters / file size.
    public var ratioToF16: Double { Double(2 * sourceParameters) / Double(fileSize) }

    public var json: JSONValue {
        let tensors: [JSONValue] = rows.map { row in
            var fields = [JSONMember("name", .string(row.name)), JSONMember("parameters", .int(Int64(row.parameters))),
                          JSONMember("encoding", .string(row.choice.map(\.description) ?? row.dtype!.rawValue))]
            if let choice = row.choice, choice.kind != .raw { fields.append(JSONMember("bits", .int(Int64(choice.bits)))) }
            if let sqnr = row.sqnr { fields.append(JSONMember("sqnr_db", sqnr.isFinite ? .double(sqnr) : .null)) }
            if let outcome = row.rounding { fields.append(JSONMember("rounding", outcome.json)) }
            fields.append(JSONMember("stored_bytes", .int(Int64(row.storedBytes))))
            fields.append(JSONMember("file_share", .double(Double(row.storedBytes) / Double(fileSize))))
            return .object(fields)
        }
        var totals: [JSONMember] = [
            JSONMember("weights", .int(Int64(self.totals.weights))), JSONMember("average_bits", .double(self.totals.averageBits)),
            JSONMember("file_bits_per_weight", .double(self.totals.fileBitsPerWeight)),
            JSONMember("file_bytes", .int(Int64(fileSize))), JSONMember("ratio_to_f16", .double(ratioToF16)),
            JSONMember("codes", .object([
                JSONMember("log2_bytes", .double(accountedCodeBytes)),
                JSONMember("packed_bytes", .int(Int64(quantized.reduce(0) { $0 + $1.codeBytes }))),
                JSONMember("stored_bytes", .int(Int64(quantized.reduce(0) { $0 + $1.codeStoredBytes }))),
            ])),
        ]
        if let cache = manifest.timeFeatures {
            totals.append(JSONMember("time_features", .object([
                JSONMember("timesteps", .int(Int64(cache.timesteps.count))),
                JSONMember("values", .int(Int64(cache.valueCount))),
                JSONMember("replaced_weights", .int(Int64(cache.replacedWeights))),
                JSONMember("stored_bytes", .int(Int64(cache.features.storedSize))),
            ])))
        }
        return .object([JSONMember("tensors", .array(tensors)), JSONMember("totals", .object(totals))])
    }

    public var text: String {
        let calibrated = rows.contains { $0.rounding != nil }
        var table = [["tensor", "parameters", "encoding", "SQNR dB"]
            + (calibrated ? ["rounding", "held-out out dB (nearest)"] : []) + ["stored", "share"]]
        for row in rows {
            table.append([Formatting.printable(row.name), Formatting.grouped(row.parameters),
                          row.choice.map(\.description) ?? row.dtype!.rawValue,
                          row.sqnr.map { Formatting.fixed($0, digits: 2) } ?? "-"]
                + (calibrated ? Self.roundingColumns(row.rounding) : [])
                + [Formatting.grouped(row.storedBytes),
                   Formatting.fixed(100 * Double(row.storedBytes) / Double(fileSize), digits: 2) + "%"])
        }
        let packed = quantized.reduce(0) { $0 + $1.codeBytes }, stored = quantized.reduce(0) { $0 + $1.codeStoredBytes }
        var lines = [Formatting.table(table), ""]
        lines.append("average bits (BitsFusion App. H): \(Formatting.fixed(totals.averageBits, digits: 4)) over "
            + "\(Formatting.grouped(totals.weights)) conv and linear weights")
        lines.append("file: \(Formatting.grouped(fileSize)) bytes, \(Formatting.fixed(totals.fileBitsPerWeight, digits: 4)) bits "
            + "per weight, \(Formatting.fixed(ratioToF16, digits: 2))x smaller than fp16")
        lines.append("codes: \(Formatting.grouped(Int(accountedCodeBytes.rounded()))) bytes by log2 accounting, "
            + "\(Formatting.grouped(packed)) packed, \(Formatting.grouped(stored)) after zstd")
        if calibrated {
            let outcomes = rows.compactMap(\.rounding)
            let gptq = outcomes.filter { $0.rounding == .gptq }.count, corrected = outcomes.filter(\.biasCorrected).count
            lines.append("rounding: \(gptq) of \(outcomes.count) quantized layers GPTQ, the others nearest; "
                + "\(corrected) biases corrected")
        }
        if let cache = manifest.timeFeatures {
            lines.append("time-feature cache: \(cache.timesteps.count) timesteps, \(Formatting.grouped(cache.valueCount)) values "
                + "(\(Formatting.grouped(cache.features.storedSize)) bytes) replace \(Formatting.grouped(cache.replacedWeights)) weights "
                + "(\(Formatting.grouped(2 * cache.replacedWeights)) bytes in fp16)")
        }
        return lines.joined(separator: "\n")
    }

    /// The rounding kept (b: bias corrected) and the held-out output SQNR kept (nearest's).
    private static func roundingColumns(_ outcome: RoundingOutcome?) -> [String] {
        guard let outcome else { return ["-", "-"] }
        let sqnr = outcome.heldOutSQNR.map { Formatting.fixed($0.kept, digits: 2) + " (" + Formatting.fixed($0.nearest, digits: 2) + ")" }
        return [outcome.rounding.rawValue + (outcome.biasCorrected ? "+b" : ""), sqnr ?? "-"]
    }
}
