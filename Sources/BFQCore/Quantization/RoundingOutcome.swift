/// How a calibrated layer was rounded (`CalibratedQuantization`): the rounding kept, whether its bias was corrected,
/// and the layer's output SQNR on the held-out calibration positions with nearest rounding and with what was kept.
public struct RoundingOutcome: Sendable {
    public var rounding: QuantizationOptions.Rounding
    public var biasCorrected: Bool
    /// Output SQNR in dB on held-out positions (signal: the layer's output with its original weights and bias):
    /// nearest rounding without bias correction, and the kept result; nil without held-out positions.
    public var heldOutSQNR: (nearest: Double, kept: Double)?
    /// For a layer without a bias: the kept result's held-out output SQNR had a bias absorbed its mean error (what
    /// adding one would buy; bfq adds none, see `CalibratedQuantization`).
    public var heldOutSQNRWithAddedBias: Double?
    /// The damping fraction GPTQ needed (nil when it did not run).
    public var damping: Double?
    /// Why GPTQ was not kept, when it was asked for.
    public var note: String?

    /// {"method", "bias_corrected", "held_out_sqnr_db": {"nearest", "kept"} (null when infinite),
    /// "held_out_sqnr_db_with_added_bias", "damping", "note"}.
    public var json: JSONValue {
        var fields = [JSONMember("method", .string(rounding.rawValue)), JSONMember("bias_corrected", .bool(biasCorrected))]
        if let heldOutSQNR {
            let value = { (x: Double) in x.isFinite ? JSONValue.double(x) : .null }
            fields.append(JSONMember("held_out_sqnr_db", .object([JSONMember("nearest", value(heldOutSQNR.nearest)),
                                                                  JSONMember("kept", value(heldOutSQNR.kept))])))
        }
        if let added = heldOutSQNRWithAddedBias {
            fields.append(JSONMember("held_out_sqnr_db_with_added_bias", added.isFinite ? .double(added) : .null))
        }
        if let damping { fields.append(JSONMember("damping", .double(damping))) }
        if let note { fields.append(JSONMember("note", .string(note))) }
        return .object(fields)
    }
}
