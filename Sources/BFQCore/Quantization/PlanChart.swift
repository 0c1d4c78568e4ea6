#if canImport(Glibc)
import Glibc
#endif

/// An SVG chart of a plan: one bar per layer in UNet order, its height the layer's bits (colour: encoding), and,
/// when the plan was measured, a dot per layer for its 1-bit sensitivity score N^-eta x D(1 bit) on a log scale.
public enum PlanChart {
    public static func svg(_ plan: QuantizationPlan, layout: QuantizationLayout, eta: Double) -> String {
        let layers = layout.tensors.compactMap { tensor -> (name: String, choice: LayerChoice, parameters: Int)? in
            guard let layer = tensor.layer, let choice = plan.choices[layer] else { return nil }
            return (layer, choice, tensor.entry.elementCount)
        }.sorted { UNetOrder.precedes($0.name, $1.name) }
        let (left, top, plotHeight, barWidth) = (60.0, 40.0, 300.0, 6.0)
        let width = left + 40 + barWidth * Double(max(layers.count, 1))
        let maxBits = Double(max(8, layers.map { $0.choice.bits }.max() ?? 8))
        func y(_ bits: Double) -> Double { top + plotHeight * (1 - bits / maxBits) }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(top + plotHeight + 60))\" "
            + "font-family=\"sans-serif\" font-size=\"11\">",
                   "<text x=\"\(f(left))\" y=\"20\">\(escape(plan.origin)): bits per layer in UNet order "
            + "(blue grid, orange palette, grey f16)\(plan.measurements.isEmpty ? "" : "; dots: 1-bit sensitivity, log scale")</text>"]
        for bits in stride(from: 0.0, through: maxBits, by: maxBits > 8 ? 4 : 1) {
            out.append("<line x1=\"\(f(left))\" x2=\"\(f(width - 40))\" y1=\"\(f(y(bits)))\" y2=\"\(f(y(bits)))\" stroke=\"#ddd\"/>")
            out.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(bits) + 4))\" text-anchor=\"end\">\(Int(bits))</text>")
        }
        let colours: [LayerChoice.Kind: String] = [.grid: "#3b6fb6", .palette: "#e08a2c", .raw: "#999"]
        for (index, layer) in layers.enumerated() {
            let x = left + barWidth * Double(index)
            let bits = Double(layer.choice.bits)
            out.append("<rect x=\"\(f(x))\" y=\"\(f(y(bits)))\" width=\"\(f(barWidth - 1))\" height=\"\(f(y(0) - y(bits)))\" "
                + "fill=\"\(colours[layer.choice.kind]!)\"><title>\(escape(layer.name)): \(layer.choice), "
                + "\(layer.parameters) parameters</title></rect>")
        }
        let scores = layers.map { layer -> Double? in
            guard let measured = plan.measurements[layer.name],
                  let oneBit = measured.candidates.first(where: { $0.choice == .grid(1) }), oneBit.distortion > 0 else { return nil }
            return log10(pow(Double(layer.parameters), -eta) * oneBit.distortion)
        }
        let known = scores.compactMap { $0 }
        if let low = known.min(), let high = known.max() {
            let span = max(high - low, 1e-9)
            for (index, score) in scores.enumerated() {
                guard let score else { continue }
                let cy = top + plotHeight * (1 - (score - low) / span)
                out.append("<circle cx=\"\(f(left + barWidth * (Double(index) + 0.5)))\" cy=\"\(f(cy))\" r=\"2\" fill=\"#c0392b\"/>")
            }
        }
        out.append("<text x=\"\(f(left))\" y=\"\(f(top + plotHeight + 20))\">time embedding, down blocks, mid block, up blocks "
            + "(\(layers.count) planned layers; conv_in and conv_out are fixed at 8 bits)</text>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private static func f(_ value: Double) -> String { Formatting.fixed(value, digits: 1) }

    private static func escape(_ text: String) -> String {
        Formatting.printable(text).replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}
