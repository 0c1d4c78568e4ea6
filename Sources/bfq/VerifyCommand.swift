import ArgumentParser
import BFQCore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a .bfq file: structure, every invariant, every checksum; with --against, every tensor against its source.",
        discussion: """
        Exit status 0 only when everything holds. With --against, each tensor is decoded and compared with the source \
        (any format, either UNet naming): max abs error and SQNR per tensor, and the file's size against the source's \
        at fp16 and fp32. Names or shapes that differ make the check fail.
        """
    )

    @Argument(help: "The .bfq file.")
    var file: String

    @Option(help: ArgumentHelp("The checkpoint the file was made from.", valueName: "source"))
    var against: String?

    func run() throws {
        var passed = true
        try reportingErrors {
            let source = try against.map { try CheckpointFile.open($0) }
            let verification = try ContainerVerification(path: file, against: source)
            print(verification.text(sourcePath: against))
            passed = verification.passed
        }
        if !passed { throw ExitCode(1) }
    }
}
