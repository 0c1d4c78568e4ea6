import CBFQShims
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS library bfq's matrix products run on: OpenBLAS, loaded at run time with the kernel set that the CPU's
/// features allow (AVX-512, AVX2 and FMA, AVX, SSE) unless the environment's OPENBLAS_CORETYPE says otherwise.
/// OpenBLAS alone picks by the CPU's model number, and runs its SSE3 kernels on a model it does not know.
public struct BLASRuntime: Sendable {
    /// The library file loaded.
    public let library: String
    /// OpenBLAS's own description (version, build options, kernels).
    public let configuration: String
    /// The kernel set OpenBLAS runs ("Haswell", "SkylakeX", ...).
    public let kernels: String
    /// The kernel set the CPU's features allow, and the features that decide it (nil off x86-64).
    public let suggested: String?
    public let features: String
    /// OPENBLAS_CORETYPE as the environment set it, which bfq respects (unless the CPU cannot run those kernels).
    public let environmentCoreType: String?
    /// True when bfq set the kernel set itself (no OPENBLAS_CORETYPE in the environment).
    public let chosenByBFQ: Bool
    /// Other OpenBLAS settings in the environment ("NAME=value": OPENBLAS_*, GOTO_*, GOTOBLAS_*), which OpenBLAS reads.
    public let otherSettings: [String]
    /// True when the process had loaded OpenBLAS before bfq could choose its kernels.
    public let alreadyLoaded: Bool
    /// The CPU's brand string ("" when it has none).
    public let cpu: String

    /// Loads OpenBLAS (once per process; later calls return the same outcome). Call it before starting threads that
    /// read the environment: the load sets and restores OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS.
    public static func load() throws(BLASError) -> BLASRuntime {
        switch loaded {
        case let .success(runtime): return runtime
        case let .failure(error): throw error
        }
    }

    private static let loaded: Result<BLASRuntime, BLASError> = {
        let state = bfq_blas_load()!.pointee
        guard state.loaded != 0 else { return .failure(.unavailable(text(state.error))) }
        let environment = text(state.environment), suggested = text(state.suggested)
        return .success(BLASRuntime(
            library: text(state.library), configuration: text(state.config), kernels: text(state.corename),
            suggested: suggested.isEmpty ? nil : suggested, features: text(state.features),
            environmentCoreType: environment.isEmpty ? nil : environment, chosenByBFQ: !text(state.chosen).isEmpty,
            otherSettings: openBLASSettings(), alreadyLoaded: state.already_loaded != 0, cpu: text(state.cpu)))
    }()

    private static func openBLASSettings() -> [String] {
        var settings: [String] = [], entry = environ
        while let pointer = entry.pointee {
            let setting = String(cString: pointer)
            if ["OPENBLAS_", "GOTO_", "GOTOBLAS_"].contains(where: setting.hasPrefix), !setting.hasPrefix("OPENBLAS_CORETYPE=") {
                settings.append(setting)
            }
            entry += 1
        }
        return settings.sorted()
    }

    /// `summary`, or why OpenBLAS is not loaded.
    public static var versionLine: String {
        do { return try load().summary } catch { return "BLAS: not loaded: \(error)" }
    }

    /// OpenBLAS's x86-64 kernel sets with AVX2 and FMA (or wider) matrix kernels.
    static let wideKernels: Set<String> = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]

    /// True when OpenBLAS runs kernels narrower than AVX2 and FMA on an x86-64 CPU: products are several times slower.
    public var isNarrow: Bool {
        suggested != nil && !Self.wideKernels.contains { $0.caseInsensitiveCompare(kernels) == .orderedSame }
    }

    /// One line for `bfq --version`: library, kernels, and who chose them.
    public var summary: String {
        let version = configuration.split(separator: " ").prefix(2).joined(separator: " ")
        let cpuText = cpu.isEmpty ? "" : " on \(cpu)"
        let why: String
        if alreadyLoaded {
            why = "chosen by OpenBLAS itself: it was loaded before bfq could choose"
        } else if let environment = environmentCoreType {
            let known = environment.caseInsensitiveCompare(kernels) == .orderedSame ? "" : ", which this OpenBLAS does not know"
            why = "from OPENBLAS_CORETYPE=\(environment) in the environment\(known)"
                + (suggested.map { "; the CPU's features (\(features)) allow \($0)" } ?? "")
        } else if chosenByBFQ, let suggested, suggested.caseInsensitiveCompare(kernels) != .orderedSame {
            why = "built into this OpenBLAS, which ignores OPENBLAS_CORETYPE (the CPU's features (\(features)) allow \(suggested))"
        } else if chosenByBFQ {
            why = "chosen by bfq from the CPU's features (\(features))"
        } else {
            why = "chosen by OpenBLAS (\(features))"
        }
        let threads = otherSettings.contains { $0.contains("_NUM_THREADS=") }
            ? " (bfq runs OpenBLAS on one thread whatever its thread settings say)" : ""
        let others = otherSettings.isEmpty ? "" : "; the environment also sets \(otherSettings.joined(separator: ", "))\(threads)"
        return "BLAS: \(version.isEmpty ? "OpenBLAS" : version) (\(library)), \(kernels) kernels\(cpuText): \(why)\(others)"
    }

    /// The warning long jobs print once on a host whose products run on kernels narrower than AVX2 and FMA, else nil.
    public var narrowKernelWarning: String? {
        guard isNarrow else { return nil }
        let cause = environmentCoreType.map { "OPENBLAS_CORETYPE=\($0) in the environment" } ?? "this CPU has \(features)"
        return "matrix products run on OpenBLAS's \(kernels) kernels (\(cause)): expect them to be several times slower"
            + " than on AVX2 kernels"
    }

    private static func text<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
