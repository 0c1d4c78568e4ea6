// bfq-peak-memory OUT COMMAND [ARGUMENTS...]: runs COMMAND (a path) with the arguments and this process's standard
// streams and environment, writes its peak resident set size in bytes (wait4's ru_maxrss) to the file OUT, and exits
// with its status (128 + the signal if one ended it). For AllocationBoundTests: Linux carries a process's maxrss
// across execve as the larger of its own and that of the address space it replaced, so a command spawned straight from
// the 30 MB test process reports at least 30 MB; spawned from this small process, it reports its own peak.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `message` and a newline to standard error and exits with `status`.
func fail(_ message: String, _ status: Int32) -> Never {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(status)
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else { fail("usage: bfq-peak-memory OUT COMMAND [ARGUMENTS...]", 64) }
let argv = arguments.dropFirst(2).map { strdup($0) } + [nil]
var pid = pid_t()
let spawned = posix_spawn(&pid, arguments[2], nil, nil, argv, environ)
guard spawned == 0 else { fail("bfq-peak-memory: cannot run \(arguments[2]): \(String(cString: strerror(spawned)))", 70) }
var status: Int32 = 0
var usage = rusage()
while wait4(pid, &status, 0, &usage) < 0 {
    guard errno == EINTR else { fail("bfq-peak-memory: wait4: \(String(cString: strerror(errno)))", 70) }
}
#if os(Linux)
let peak = Int(usage.ru_maxrss) * 1024  // kilobytes on Linux, bytes on Darwin
#else
let peak = Int(usage.ru_maxrss)
#endif
guard let out = fopen(arguments[1], "w") else { fail("bfq-peak-memory: cannot write \(arguments[1])", 70) }
fputs("\(peak)\n", out)
fclose(out)
exit(status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + status & 0x7F)  // WIFEXITED, WEXITSTATUS
