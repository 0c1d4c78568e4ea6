import ArgumentParser
import BFQCore

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per-tensor count, min, max, mean, std, absmax, zero fraction, NaN/Inf counts, skewness, kurtosis.",
        discussion: """
        One streaming pass in double precision. Moments, min, max and absmax cover finite values; std is the \
        population standard deviation, skewness and kurtosis are scipy.stats' defaults (kurtosis is excess kurtosis).
        """
    )

    enum Output: String, EnumerableFlag { case json, csv }

    @Argument(help: "A checkpoint file.")
    var file: String

    @Flag(exclusivity: .exclusive, help: "Output as JSON or CSV instead of a table.")
    var output: Output?

    func run() throws {
        try reportingErrors {
            let report = try StatisticsReport(try CheckpointFile.open(file))
            switch output {
            case .json: print(JSONWriter.pretty(report.json))
            case .csv: print(report.csv)
            case nil: print(report.text)
            }
        }
    }
}
