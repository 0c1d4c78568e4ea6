/// The result of `NoiseEvaluation`: errors per timestep and overall, with and without guidance.
public struct EvaluationReport: Sendable {
    public struct Row: Sendable {
        public var timestep: Int
        /// The conditional prediction (no guidance).
        public var conditional: NoiseErrorSums
        /// The guided prediction eps_u + w (eps_c - eps_u).
        public var guided: NoiseErrorSums
    }

    public var reference: String
    public var candidate: String
    public var samples: Int
    public var height: Int
    public var width: Int
    public var tokens: Int
    public var guidanceScale: Float
    public var seed: UInt64
    public var rows: [Row]

    /// Over every timestep, without guidance.
    public var overall: NoiseError { rows.reduce(into: NoiseErrorSums()) { $0.add($1.conditional) }.error }
    /// Over every timestep, with guidance.
    public var overallGuided: NoiseError { rows.reduce(into: NoiseErrorSums()) { $0.add($1.guided) }.error }

    public var json: JSONValue {
        var members = [JSONMember("reference", .string(reference)),
                       JSONMember("candidate", .string(candidate)),
                       JSONMember("samples", .int(Int64(samples))),
                       JSONMember("size", .array([.int(Int64(height)), .int(Int64(width))])),
                       JSONMember("tokens", .int(Int64(tokens))),
                       JSONMember("guidance_scale", .double(Double(guidanceScale))),
                       JSONMember("seed", .int(Int64(bitPattern: seed))),
                       JSONMember("timesteps", .array(rows.map { .int(Int64($0.timestep)) }))]
        members += overall.json.objectValue!
        members.append(JSONMember("guided", overallGuided.json))
        members.append(JSONMember("per_timestep", .array(rows.map { row in
            .object([JSONMember("timestep", .int(Int64(row.timestep))),
                     JSONMember("conditional", row.conditional.error.json),
                     JSONMember("guided", row.guided.error.json)])
        })))
        return .object(members)
    }

    public var text: String {
        func cells(_ error: NoiseError) -> [String] {
            [Formatting.general(error.mse, digits: 4), error.sqnrDB.map { Formatting.fixed($0, digits: 2) } ?? "inf",
             Formatting.fixed(error.cosine, digits: 6), Formatting.general(error.latentError, digits: 4)]
        }
        var table = [["timestep", "MSE", "SQNR dB", "cosine", "latent err", "guided MSE", "SQNR dB", "cosine", "latent err"]]
        for row in rows { table.append([String(row.timestep)] + cells(row.conditional.error) + cells(row.guided.error)) }
        table.append(["all"] + cells(overall) + cells(overallGuided))
        return """
            noise prediction of \(Formatting.printable(candidate)) against \(Formatting.printable(reference))
            \(samples) samples of \(height)x\(width) latents, \(tokens) tokens, seed \(seed); guided: w = \(Formatting.general(Double(guidanceScale)))
            latent err: (1 - abar_t) / abar_t x ||eps_ref - eps_cand||^2 per sample (BitsFusion)

            \(Formatting.table(table))
            """
    }
}
