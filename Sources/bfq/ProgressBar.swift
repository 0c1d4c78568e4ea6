import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, redrawn at most once per percent or
/// second, with the time left in the phase estimated from its rate so far.
final class ProgressBar {
    private let enabled = isatty(2) == 1
    private var last = (phase: "", percent: -1, second: -1)
    private var phaseStart: UInt64 = 0

    func update(_ phase: String, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if phase != last.phase { phaseStart = now }
        let elapsed = Double(now - phaseStart) / 1e9
        let percent = min(100, done * 100 / total)
        guard phase != last.phase || percent != last.percent || Int(elapsed) != last.second else { return }
        last = (phase, percent, Int(elapsed))
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        var eta = ""
        if done > 0, done < total, elapsed >= 1 {
            eta = "  ETA " + Self.duration(elapsed * Double(total - done) / Double(done))
        }
        draw("\r\(phase) [\(bar)] \(percent)%\(eta)    ")
    }

    /// Clears the line.
    func finish() {
        guard enabled, last.percent >= 0 else { return }
        draw("\r" + String(repeating: " ", count: 72) + "\r")
    }

    /// "42s", "3m05s", "1h02m".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + (s % 60 < 10 ? "0" : "") + "\(s % 60)s" }
        return "\(s / 3600)h" + (s % 3600 / 60 < 10 ? "0" : "") + "\(s % 3600 / 60)m"
    }

    private func draw(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
