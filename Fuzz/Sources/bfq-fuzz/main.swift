import BFQFuzzing
import CLibFuzzer
import Glibc

/// `bfq-fuzz TARGET [libFuzzer options and corpus folders]`: runs libFuzzer on one of the readers in `FuzzEntry`.
let targets = FuzzEntry.allCases.map(\.rawValue).joined(separator: ", ")
guard CommandLine.arguments.count > 1, let entry = FuzzEntry(rawValue: CommandLine.arguments[1]) else {
    let usage = "usage: bfq-fuzz TARGET [libFuzzer options] [corpus folders]; targets: \(targets)\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
let selected = entry
// libFuzzer sees the program name and everything after TARGET.
var argv: [UnsafeMutablePointer<CChar>?] = [CommandLine.unsafeArgv[0]] + (2 ..< Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0] } + [nil]
var argc = Int32(argv.count - 1)
let status = argv.withUnsafeMutableBufferPointer { buffer in
    var pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &pointer) { data, size in
        try? selected.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
