import BFQFuzzing
import CLibFuzzer
import Glibc

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    try? FuzzEntry.pytorch.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
