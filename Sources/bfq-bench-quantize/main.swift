// Quality benchmark of bfq's quantizers: quantizes every conv and linear weight (2-D and 4-D tensors; rows = output
// channels) of a checkpoint with each setting at each bit width and prints, per setting, the SQNR over all those
// layers (total signal / total error, so weighted by layer size), the bits per weight as spec/bfq.md section 7 counts
// them, the bits per weight actually stored (codes packed and compressed as `bfq quantize` stores them, plus every
// f16 scale or palette entry), and the quantizer's CPU ns per weight. One markdown table row per setting.
//
//     bfq-bench-quantize FILE [--row-multiple N] [--only NAME] [BITS...]      (bits 1 to 6 when none are given)
//
// --row-multiple N keeps only tensors whose rows hold a multiple of N weights (256: those llama.cpp's K-quants take);
// --only NAME only the tensor of that name.
// Settings per b: absmax (rounding at the abs-max scale), alt (the paper: alternating optimisation from the abs-max
// start), alt+rms (from the abs-max and the RMS starts), default (bfq's default starts), multi6+rms (six abs-max
// starts and the RMS start), palette (per-row lookup tables, from the default grid), g64 and g128 (default grid with a
// scale per 64 or 128 weights of a row).
import BFQCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

func cpuSeconds() -> Double {
    var c = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c)
    return Double(c.tv_sec) + Double(c.tv_nsec) * 1e-9
}

struct Tally {
    var cpu = 0.0, error = 0.0, signal = 0.0, weights = 0, accountedBits = 0.0, storedBytes = 0
    mutating func add(_ result: QuantizationResult, cpu: Double) throws {
        self.cpu += cpu
        (error, signal) = (error + result.error, signal + result.signal)
        weights += result.codes.count
        let side: Int
        switch result.values {
        case let .grid(scales, _, _): side = scales.count
        case let .palette(values, _): side = values.count
        }
        accountedBits += log2(Double(result.levels)) * Double(result.codes.count) + 16 * Double(side - result.rows)
        storedBytes += try EncodedCodes(result.codes, rows: result.rows, columns: result.columns, levels: result.levels).storedSize + 2 * side
    }
}

var arguments = Array(CommandLine.arguments.dropFirst())
var rowMultiple = 1
if let flag = arguments.firstIndex(of: "--row-multiple"), flag + 1 < arguments.count, let n = Int(arguments[flag + 1]), n > 0 {
    rowMultiple = n
    arguments.removeSubrange(flag ... flag + 1)
}
var only: String?
if let flag = arguments.firstIndex(of: "--only"), flag + 1 < arguments.count {
    only = arguments[flag + 1]
    arguments.removeSubrange(flag ... flag + 1)
}
guard let path = arguments.first else {
    FileHandle.standardError.write(Data("usage: bfq-bench-quantize FILE [--row-multiple N] [--only NAME] [BITS...]\n".utf8))
    exit(64)
}
let requested = arguments.dropFirst().compactMap { Int($0) }
let bitWidths = requested.isEmpty ? Array(1 ... 6) : requested
let checkpoint = try CheckpointFile.open(path)
let layers = checkpoint.tensors.filter {
    ($0.shape.count == 2 || $0.shape.count == 4) && $0.dtype.isFloatingPoint && ($0.elementCount / max($0.shape[0], 1)) % rowMultiple == 0
        && (only == nil || $0.name == only)
}
let names = ["absmax", "alt", "alt+rms", "default", "multi6+rms", "palette", "g64", "g128"]
var tallies = [String: Tally]()
for layer in layers {
    let count = layer.elementCount
    let rows = layer.shape[0], columns = count / max(rows, 1)
    var weights = [Float](repeating: 0, count: count)
    try checkpoint.withContiguousBytes(of: layer) { bytes in
        weights.withUnsafeMutableBytes { ElementConverter.convert(bytes.baseAddress!, layer.dtype, to: $0.baseAddress!, .f32, count: count) }
    }
    for b in bitWidths {
        var grid: QuantizationResult?
        for name in names {
            let start = cpuSeconds()
            let result: QuantizationResult
            switch name {
            case "absmax":
                result = try GridQuantizer(bits: b, maxIterations: 0, startFactors: [1], rmsStart: false).quantize(weights, rows: rows, columns: columns)
            case "alt": result = try GridQuantizer(bits: b, startFactors: [1], rmsStart: false).quantize(weights, rows: rows, columns: columns)
            case "alt+rms": result = try GridQuantizer(bits: b, startFactors: [1]).quantize(weights, rows: rows, columns: columns)
            case "default":
                result = try GridQuantizer(bits: b).quantize(weights, rows: rows, columns: columns)
                grid = result
            case "multi6+rms":
                result = try GridQuantizer(bits: b, startFactors: [1, 0.9, 0.8, 0.7, 0.6, 0.5]).quantize(weights, rows: rows, columns: columns)
            case "palette": result = try PaletteQuantizer(bits: b).quantize(weights, rows: rows, columns: columns, start: grid)
            case "g64": result = try GridQuantizer(bits: b, groupSize: 64).quantize(weights, rows: rows, columns: columns)
            default: result = try GridQuantizer(bits: b, groupSize: 128).quantize(weights, rows: rows, columns: columns)
            }
            try tallies["\(name) \(b)", default: Tally()].add(result, cpu: cpuSeconds() - start)
        }
    }
    checkpoint.release(layer)
}
let weightCount = layers.reduce(0) { $0 + $1.elementCount }
print("\(path): \(layers.count) tensors, \(weightCount) weights; threads \(Parallel.threadCount)")
print("| setting | b | SQNR dB | accounted bits/weight | stored bits/weight | CPU ns/weight |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for b in bitWidths {
    for name in names {
        guard let t = tallies["\(name) \(b)"] else { continue }
        print("| \(name) | \(b) | " + String(format: "%.3f | %.3f | %.3f | %.1f |", 10 * log10(t.signal / t.error),
                                            t.accountedBits / Double(t.weights), 8 * Double(t.storedBytes) / Double(t.weights),
                                            t.cpu / Double(t.weights) * 1e9))
    }
}
