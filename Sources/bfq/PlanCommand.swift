import ArgumentParser
import BFQCore

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Choose per-layer bits for an SD UNet without writing the model; `quantize --plan FILE` applies the plan.",
        discussion: """
        Quantizes every layer at every candidate, measures the squared error, and allocates bits to meet --bits \
        (or checks a built-in plan against the model). Writes the plan as JSON (-o) and optionally an SVG chart.
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @OptionGroup var planning: PlanningOptions

    @Option(name: .shortAndLong, help: "Write the plan (JSON) here.")
    var output: String?

    @Option(help: "Draw bits and sensitivity per layer, in UNet order, as SVG here (with --curve: the curve).")
    var svg: String?

    @Flag(help: ArgumentHelp("Print the predicted rate-distortion curve: for average bits from 1.5 to 4, the SQNR (noise "
        + "prediction on the calibration set with output sensitivity, weights otherwise) the allocation's measured "
        + "distortions predict."))
    var curve = false

    func run() throws {
        try reportingErrors {
            let options = try planning.options()
            if curve, planning.plan != nil { throw ValidationError("--curve needs measurements: it does not go with --plan") }
            let targets = try OutputChecks.targets([output, svg] + planning.outputFiles, inputs: [input] + planning.inputFiles)
            if options.sensitivity.isOutput { try MatrixKernels.require() }
            let checkpoint = try CheckpointFile.open(input)
            let quantizer = try ModelQuantizer(checkpoint, options: options)
            let progress = ProgressBar()
            let plan = try quantizer.makePlan(progress: progress.update)
            progress.finish()
            try planning.saveImportance(of: quantizer, to: targets)
            try planning.saveMeasurements(of: quantizer, to: targets)
            let average = quantizer.averageBits(of: plan)
            if let output {
                try TextFile.write(JSONWriter.pretty(plan.json(layout: quantizer.layout, averageBits: average)) + "\n",
                                   to: output, inputs: try planning.inputFiles.map { try MappedFile(path: $0) } + checkpoint.files)
            }
            let points = curve ? try quantizer.curve(CurveChart.targets) : []
            if let svg {
                let chart = curve ? CurveChart.svg(points, sensitivity: quantizer.measuredSensitivity)
                    : PlanChart.svg(plan, layout: quantizer.layout, eta: quantizer.eta)
                try TextFile.write(chart, to: svg, inputs: try planning.inputFiles.map { try MappedFile(path: $0) } + checkpoint.files)
            }
            var counts: [LayerChoice: Int] = [:]
            for tensor in quantizer.layout.tensors {
                if let layer = tensor.layer, let choice = plan.choices[layer] { counts[choice, default: 0] += tensor.entry.elementCount }
            }
            let total = counts.values.reduce(0, +)
            print("plan \(plan.origin): average \(Formatting.fixed(average, digits: 4)) bits over "
                + "\(Formatting.grouped(quantizer.layout.weightCount)) weights")
            for (choice, count) in counts.sorted(by: { ($0.key.kind.rawValue, $0.key.bits) < ($1.key.kind.rawValue, $1.key.bits) }) {
                print("  \(choice): \(Formatting.fixed(100 * Double(count) / Double(max(total, 1)), digits: 1))% of planned weights")
            }
            if curve { print(CurveChart.table(points, sensitivity: quantizer.measuredSensitivity), terminator: "") }
        }
    }
}
