/// Why a model could not be planned or quantized. Cases name the file, layer or value at fault.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    case notAUNet(path: String)
    case nonFinite(tensor: String, row: Int, column: Int)
    case beyondHalfRange(tensor: String, row: Int, column: Int, value: Float)
    case notFloatingPoint(tensor: String, dtype: DType)
    case keptBeyondHalfRange(tensor: String, index: Int)
    case budgetTooSmall(requested: Double, smallest: Double)
    case budgetOutOfRange(Double)
    case unknownPlanLayer(plan: String, layer: String)
    case planMissesLayer(plan: String, layer: String, hint: String)
    case invalidPlan(plan: String, reason: String)
    case unknownBuiltInPlan(String)
    case invalidImportance(path: String, layer: String, reason: String)
    case importanceMatchesNoLayer(path: String)
    case invalidOption(String)
    /// GPTQ rounding or bias correction was asked for, and the plan quantizes no layer.
    case nothingToRound
    case invalidMeasurements(path: String, reason: String)
    case measurementsMismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notAUNet(path):
            return "\(path): no Stable Diffusion UNet tensors found (ldm or diffusers names); bfq quantizes SD UNets"
        case let .nonFinite(tensor, row, column):
            return "tensor \(tensor): weight at row \(row), column \(column) is NaN or infinite; quantizing needs finite weights"
        case let .beyondHalfRange(tensor, row, column, value):
            return "tensor \(tensor): weight at row \(row), column \(column) is \(value), beyond f16's range (65504), "
                + "in which bfq stores scales and tables"
        case let .keptBeyondHalfRange(tensor, index):
            return "tensor \(tensor): element \(index) is beyond f16's range (65504); keep it with --kept-dtype f32 or keep"
        case let .notFloatingPoint(tensor, dtype):
            return "tensor \(tensor): \(dtype.rawValue) weights cannot be quantized (floating-point weights only)"
        case let .budgetTooSmall(requested, smallest):
            return "average of \(Formatting.fixed(requested, digits: 4)) bits is below the smallest possible, "
                + "\(Formatting.fixed(smallest, digits: 4)) bits (every layer at 1 bit, what the plan fixes, kept tensors and time features)"
        case let .budgetOutOfRange(bits):
            return "--bits must be a finite number above 0, not \(bits)"
        case let .unknownPlanLayer(plan, layer):
            return "plan \(plan): layer \(layer) is not a conv or linear weight of this UNet"
        case let .planMissesLayer(plan, layer, hint):
            return "plan \(plan): no entry for layer \(layer)" + (hint.isEmpty ? "" : "; \(hint)")
        case let .invalidPlan(plan, reason):
            return "plan \(plan): \(reason)"
        case let .unknownBuiltInPlan(name):
            return "unknown built-in plan \"\(name)\"; built in: bitsfusion-sd15, uniform:B (B = 1...8)"
        case let .invalidImportance(path, layer, reason):
            return "\(path): importance of layer \(layer): \(reason)"
        case let .importanceMatchesNoLayer(path):
            return "\(path): no tensor is named after a layer of this UNet (importance uses diffusers layer names, "
                + "e.g. down_blocks.0.resnets.0.conv1)"
        case .nothingToRound:
            return "--rounding gptq and --bias-correction need quantized layers; the plan keeps every layer raw"
        case let .invalidOption(reason):
            return reason
        case let .invalidMeasurements(path, reason):
            return "\(path): not a usable measurements file: \(reason)"
        case let .measurementsMismatch(path, reason):
            return "\(path): these measurements do not fit: \(reason)"
        }
    }
}
