import Foundation

/// What Linux's /proc/cpuinfo says of this CPU, for checking bfq's own CPUID reading against it.
public enum LinuxCPUFlags {
    /// The first CPU's "flags" (Linux lists AVX, AVX2, FMA and AVX-512 only when their register state is enabled),
    /// nil when the file has none (not x86).
    public static func flags() throws -> Set<String>? {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    /// The first CPU's "model name", nil when absent.
    public static func modelName() throws -> String? {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        return text.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1)[1]
            .trimmingCharacters(in: .whitespaces)
    }

    /// The OpenBLAS kernel set those flags allow, by the rule bfq's loader applies (nil off x86).
    public static func openBLASCore() throws -> String? {
        guard let flags = try flags() else { return nil }
        if ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx2", "fma"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return flags.contains("avx") ? "Sandybridge" : flags.contains("sse4_2") ? "Nehalem" : "Prescott"
    }
}
