import ArgumentParser
import BFQCore

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two checkpoints tensor by tensor: missing names, shape and dtype mismatches, max abs error, SQNR.",
        discussion: """
        A is the reference for SQNR. When the two files name an SD UNet in different schemes, B's names are mapped \
        to A's. Exit status: 0 identical, 1 different, 2 error.
        """
    )

    @Argument(help: "Reference checkpoint.")
    var first: String

    @Argument(help: "Checkpoint to compare with it.")
    var second: String

    func run() throws {
        var identical = true
        try reportingErrors {
            let a = try CheckpointFile.open(first)
            let b = try CheckpointFile.open(second)
            let comparison = try CheckpointComparison(a, b, matchingNames: true)
            print(comparison.text(firstPath: first, secondPath: second))
            identical = comparison.identical
        }
        if !identical { throw ExitCode(1) }
    }
}
