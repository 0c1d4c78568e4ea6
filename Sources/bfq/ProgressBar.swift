#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, redrawn at most once per percent.
final class ProgressBar {
    private let enabled = isatty(2) == 1
    private var last = (phase: "", percent: -1)

    func update(_ phase: String, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let percent = min(100, done * 100 / total)
        guard (phase, percent) != last else { return }
        last = (phase, percent)
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        draw("\r\(phase) [\(bar)] \(percent)%  ")
    }

    /// Clears the line.
    func finish() {
        guard enabled, last.percent >= 0 else { return }
        draw("\r" + String(repeating: " ", count: 60) + "\r")
    }

    private func draw(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
