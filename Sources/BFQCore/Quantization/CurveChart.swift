/// The predicted rate-distortion curve of a measurement (`ModelQuantizer.curve`) as a table and an SVG chart.
public enum CurveChart {
    /// Average bits from 1.5 to 4 in steps of 0.1.
    public static let targets: [Double] = (15 ... 40).map { Double($0) / 10 }

    /// What the SQNR measures.
    static func quantity(_ sensitivity: QuantizationOptions.Sensitivity) -> String {
        sensitivity.isOutput ? "predicted noise-prediction SQNR on the calibration set" : "predicted weight SQNR"
    }

    /// One line per point: target, reached average bits, SQNR in dB.
    public static func table(_ points: [ModelQuantizer.CurvePoint], sensitivity: QuantizationOptions.Sensitivity) -> String {
        var lines = ["curve (\(quantity(sensitivity))):", "  target bits  average bits  SQNR dB"]
        for point in points {
            lines.append("  " + pad(Formatting.fixed(point.target, digits: 2), 11) + "  " + pad(Formatting.fixed(point.averageBits, digits: 4), 12)
                + "  " + pad(Formatting.fixed(point.sqnr, digits: 2), 7))
        }
        if points.isEmpty { lines.append("  no target from 1.5 to 4 bits fits this model (below its smallest plan)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// SQNR against average bits, with a point per target.
    public static func svg(_ points: [ModelQuantizer.CurvePoint], sensitivity: QuantizationOptions.Sensitivity) -> String {
        let (left, top, width, height) = (60.0, 40.0, 560.0, 320.0)
        let finite = points.filter { $0.sqnr.isFinite }
        let low = (finite.map(\.sqnr).min() ?? 0).rounded(.down), high = max((finite.map(\.sqnr).max() ?? 1).rounded(.up), low + 1)
        func x(_ bits: Double) -> Double { left + width * (bits - 1.5) / 2.5 }
        func y(_ sqnr: Double) -> Double { top + height * (1 - (sqnr - low) / (high - low)) }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(left + width + 40))\" height=\"\(f(top + height + 50))\" "
            + "font-family=\"sans-serif\" font-size=\"11\">",
                   "<text x=\"\(f(left))\" y=\"20\">\(quantity(sensitivity)) (dB) against average bits</text>"]
        let step = max(1, ((high - low) / 8).rounded(.up))
        for sqnr in stride(from: low, through: high, by: step) {
            out.append("<line x1=\"\(f(left))\" x2=\"\(f(left + width))\" y1=\"\(f(y(sqnr)))\" y2=\"\(f(y(sqnr)))\" stroke=\"#ddd\"/>")
            out.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(sqnr) + 4))\" text-anchor=\"end\">\(Formatting.fixed(sqnr, digits: 0))</text>")
        }
        for bits in stride(from: 1.5, through: 4.0, by: 0.5) {
            out.append("<text x=\"\(f(x(bits)))\" y=\"\(f(top + height + 18))\" text-anchor=\"middle\">\(Formatting.fixed(bits, digits: 1))</text>")
        }
        let path = finite.map { "\(f(x($0.averageBits))),\(f(y($0.sqnr)))" }.joined(separator: " ")
        out.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"#3b6fb6\" stroke-width=\"1.5\"/>")
        for point in finite {
            out.append("<circle cx=\"\(f(x(point.averageBits)))\" cy=\"\(f(y(point.sqnr)))\" r=\"2.5\" fill=\"#3b6fb6\"><title>"
                + "\(Formatting.fixed(point.averageBits, digits: 4)) bits: \(Formatting.fixed(point.sqnr, digits: 2)) dB</title></circle>")
        }
        out.append("<text x=\"\(f(left + width / 2))\" y=\"\(f(top + height + 40))\" text-anchor=\"middle\">average bits per weight "
            + "(BitsFusion App. H accounting)</text>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private static func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

    private static func f(_ value: Double) -> String { Formatting.fixed(value, digits: 1) }
}
