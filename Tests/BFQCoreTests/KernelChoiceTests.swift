import CBFQShims
import Foundation
import XCTest
import BFQTestSupport
@testable import BFQCore

/// The OpenBLAS kernel set chosen from CPUID and XCR0 values alone, on CPUs OpenBLAS 0.3.21 recognises and on ones it
/// does not (it then runs its SSE3 "Prescott" kernels).
final class KernelChoiceTests: XCTestCase {
    // CPUID leaf 1 ECX, leaf 7 EBX/ECX/EDX bits, and XCR0 state bits.
    private let sse3: UInt32 = 1 << 0, ssse3: UInt32 = 1 << 9, fma: UInt32 = 1 << 12, sse41: UInt32 = 1 << 19
    private let sse42: UInt32 = 1 << 20, osxsave: UInt32 = 1 << 27, avx: UInt32 = 1 << 28, f16c: UInt32 = 1 << 29
    private let avx2: UInt32 = 1 << 5, avx512f: UInt32 = 1 << 16, avx512dq: UInt32 = 1 << 17, avx512cd: UInt32 = 1 << 28
    private let avx512bw: UInt32 = 1 << 30, avx512vl: UInt32 = 1 << 31, avx512vnni: UInt32 = 1 << 11
    private let amx: UInt32 = (1 << 22) | (1 << 24) | (1 << 25)
    private let ymmState: UInt64 = 0x7, zmmState: UInt64 = 0xe7, amxState: UInt64 = 0x60000

    private func identity(_ vendor: String, leaf1: UInt32, leaf7: UInt32 = 0, leaf7ecx: UInt32 = 0, leaf7edx: UInt32 = 0,
                          xcr0: UInt64 = 0) -> bfq_cpu_identity {
        var cpu = bfq_cpu_identity()
        withUnsafeMutableBytes(of: &cpu.vendor) { $0.copyBytes(from: Array(vendor.utf8.prefix(12))) }
        cpu.leaf1_ecx = leaf1
        cpu.leaf7_ebx = leaf7
        cpu.leaf7_ecx = leaf7ecx
        cpu.leaf7_edx = leaf7edx
        cpu.xcr0 = xcr0
        return cpu
    }

    private func choice(_ cpu: bfq_cpu_identity) -> (core: String?, features: String) {
        var cpu = cpu
        var features = [CChar](repeating: 0, count: 160)
        let core = bfq_openblas_core_for(&cpu, &features, features.count).map { String(cString: $0) }
        return (core, String(decoding: features.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private var baseline: UInt32 { sse3 | ssse3 | sse41 | sse42 }

    func testAnUnrecognisedXeonWithAVX512AndAMXGetsTheAVX512Kernels() {
        // The host: "Intel(R) Xeon(R) Processor", AVX2, AVX-512 F/BW/VL (and DQ/CD), VNNI, BF16, AMX.
        let xeon = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx | f16c,
                            leaf7: avx2 | avx512f | avx512dq | avx512cd | avx512bw | avx512vl, leaf7ecx: avx512vnni,
                            leaf7edx: amx, xcr0: zmmState | 0x200 | amxState)
        XCTAssertEqual(choice(xeon).core, "SkylakeX")
        XCTAssertEqual(choice(xeon).features, "AVX-512 F, DQ, CD, BW, VL; AVX2, FMA")
    }

    func testAVX512WhoseRegistersTheSystemDoesNotSaveFallsToAVX2() {
        let xeon = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx,
                            leaf7: avx2 | avx512f | avx512dq | avx512cd | avx512bw | avx512vl, xcr0: ymmState)
        XCTAssertEqual(choice(xeon).core, "Haswell")
        XCTAssertTrue(choice(xeon).features.contains("AVX-512 present but its registers not enabled"), choice(xeon).features)
        // AVX-512 F alone (Knights Landing's subset, no BW/VL) is not the SkylakeX kernels' instruction set.
        let partial = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx, leaf7: avx2 | avx512f | avx512cd,
                               xcr0: zmmState)
        XCTAssertEqual(choice(partial).core, "Haswell")
    }

    func testAVX2HostsGetTheHaswellKernelsWhateverTheVendor() {
        for vendor in ["AuthenticAMD", "GenuineIntel", "HygonGenuine", "  Shanghai  "] {
            let cpu = identity(vendor, leaf1: baseline | fma | osxsave | avx | f16c, leaf7: avx2, xcr0: ymmState)
            XCTAssertEqual(choice(cpu).core, "Haswell", vendor)
            XCTAssertEqual(choice(cpu).features, "AVX2, FMA; no AVX-512", vendor)
        }
        // AVX2 with FMA hidden (some hypervisors mask it): the Haswell kernels use FMA, so AVX's.
        let masked = identity("GenuineIntel", leaf1: baseline | osxsave | avx, leaf7: avx2, xcr0: ymmState)
        XCTAssertEqual(choice(masked).core, "Sandybridge")
    }

    func testOlderOrRestrictedHostsGetNarrowerKernels() {
        let sandyBridge = identity("GenuineIntel", leaf1: baseline | osxsave | avx, xcr0: ymmState)
        XCTAssertEqual(choice(sandyBridge).core, "Sandybridge")
        XCTAssertEqual(choice(sandyBridge).features, "AVX; no AVX2 or FMA")
        // AVX in CPUID but the system saves no YMM state (OSXSAVE clear): AVX code would fault.
        let noOSSupport = identity("GenuineIntel", leaf1: baseline | fma | avx, leaf7: avx2)
        XCTAssertEqual(choice(noOSSupport).core, "Nehalem")
        XCTAssertTrue(choice(noOSSupport).features.contains("AVX present but its registers not enabled"))
        let ymmNotSaved = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx, leaf7: avx2, xcr0: 0x3)
        XCTAssertEqual(choice(ymmNotSaved).core, "Nehalem")
        XCTAssertEqual(choice(identity("GenuineIntel", leaf1: sse3)).core, "Prescott")
        XCTAssertNil(choice(identity("AuthenticAMD", leaf1: 0)).core)
        XCTAssertNil(choice(bfq_cpu_identity()).core, "no CPUID (not x86-64): OpenBLAS decides")
    }

    private func runs(_ cpu: bfq_cpu_identity, _ core: String?) -> Int32 {
        var cpu = cpu
        return bfq_cpu_runs_core(&cpu, core)
    }

    func testEachCoreTypeNeedsTheInstructionsItsKernelsUse() {
        let avx2Host = identity("AuthenticAMD", leaf1: baseline | fma | osxsave | avx, leaf7: avx2, xcr0: ymmState)
        let names = ["Prescott", "Core2", "nehalem", "Sandybridge", "HASWELL", "Zen", "SkylakeX", "Cooperlake",
                     "SapphireRapids", "Piledriver", "Excavator"]
        XCTAssertEqual(names.map { runs(avx2Host, $0) }, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
        XCTAssertEqual(runs(avx2Host, "NoSuchCore"), -1, "names bfq does not know are left to OpenBLAS")
        XCTAssertEqual(runs(avx2Host, nil), -1)
        var zen = avx2Host
        zen.ext1_ecx = 1 << 6  // SSE4a: AMD's Barcelona-era kernels run, its FMA4 ones (Bulldozer family) do not
        XCTAssertEqual(runs(zen, "Barcelona"), 1)
        XCTAssertEqual(runs(zen, "Bulldozer"), 0)
        XCTAssertEqual(runs(avx2Host, "Barcelona"), 0)
        var piledriver = identity("AuthenticAMD", leaf1: baseline | fma | osxsave | avx, xcr0: ymmState)
        piledriver.ext1_ecx = (1 << 6) | (1 << 16)
        XCTAssertEqual(runs(piledriver, "Piledriver"), 1)
        XCTAssertEqual(runs(piledriver, "Haswell"), 0, "no AVX2")
        // AVX-512 hosts: BF16 for Cooperlake's kernels, AMX and FP16 (with their state saved) for Sapphire Rapids'.
        let skylake = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx,
                               leaf7: avx2 | avx512f | avx512dq | avx512cd | avx512bw | avx512vl, xcr0: zmmState)
        XCTAssertEqual(["SkylakeX", "Cooperlake", "SapphireRapids"].map { runs(skylake, $0) }, [1, 0, 0])
        var sapphire = identity("GenuineIntel", leaf1: baseline | fma | osxsave | avx,
                                leaf7: avx2 | avx512f | avx512dq | avx512cd | avx512bw | avx512vl,
                                leaf7edx: amx | (1 << 23), xcr0: zmmState | amxState)
        sapphire.leaf7_1_eax = 1 << 5
        XCTAssertEqual(["SkylakeX", "Cooperlake", "SapphireRapids"].map { runs(sapphire, $0) }, [1, 1, 1])
        sapphire.xcr0 = zmmState  // AMX state not enabled by the system
        XCTAssertEqual(runs(sapphire, "SapphireRapids"), 0)
        // Every core type bfq chooses is one the CPU it was chosen for runs.
        for cpu in [avx2Host, skylake, sapphire, piledriver] {
            XCTAssertEqual(runs(cpu, choice(cpu).core), 1)
        }
    }

    func testThisCPUsChoiceFollowsTheFlagsLinuxReports() throws {
        var cpu = bfq_cpu_identity()
        guard bfq_read_cpu_identity(&cpu) != 0, let expected = try LinuxCPUFlags.openBLASCore() else {
            throw XCTSkip("not an x86-64 CPU")
        }
        XCTAssertEqual(choice(cpu).core, expected)
        let brand = withUnsafeBytes(of: cpu.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let model = try LinuxCPUFlags.modelName() { XCTAssertEqual(brand, model) }
    }

    func testTheRuntimeRunsTheChosenKernelsUnlessTheEnvironmentSaysOtherwise() throws {
        let runtime = try BLASRuntime.load()
        XCTAssertTrue(runtime.configuration.hasPrefix("OpenBLAS "), runtime.configuration)
        XCTAssertEqual(runtime.library, "libopenblas.so.0")
        if let environment = runtime.environmentCoreType {
            XCTAssertFalse(runtime.chosenByBFQ)
            XCTAssertTrue(runtime.summary.contains("from OPENBLAS_CORETYPE=\(environment) in the environment"), runtime.summary)
        } else if let suggested = runtime.suggested {
            XCTAssertTrue(runtime.chosenByBFQ)
            XCTAssertEqual(runtime.kernels, suggested)
            XCTAssertTrue(runtime.summary.contains("chosen by bfq from the CPU's features"), runtime.summary)
        }
        // The loader restores the environment it changed for the load.
        XCTAssertEqual(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], runtime.environmentCoreType)
        XCTAssertEqual(runtime.isNarrow, runtime.narrowKernelWarning != nil)
        if runtime.environmentCoreType == nil, let suggested = runtime.suggested {
            XCTAssertEqual(runtime.isNarrow, !["SkylakeX", "Haswell"].contains(suggested))
        }
    }
}
