import ArgumentParser
import BFQCore

@main
struct BFQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bfq", abstract: "placeholder")
}
