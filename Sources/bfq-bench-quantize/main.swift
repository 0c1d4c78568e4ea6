// Quantizes every conv and linear weight (2-D and 4-D tensors; rows = output channels) of a checkpoint with several
// quantizer settings per bit width and prints, per setting, the quantizer's wall and CPU seconds (and CPU ns per
// weight; on a busy machine CPU time / threads is the better estimate of quiet wall time) on Parallel.threadCount
// threads (BFQ_THREADS) and the SQNR over all those layers (total signal / total error, so
// weighted by layer size). Conversion to f32 is not timed. One tab-separated line per setting.
//
//     bfq-bench-quantize FILE [BITS...]        (bits 1 to 6 when none are given)
//
// Settings per b: absmax (rounding at the abs-max scale), alt1 (alternating optimisation, abs-max start), multi2
// (starts 1, 0.8), multi3 (1, 0.85, 0.7), multi6 (1, 0.9 ... 0.5), default (GridQuantizer's default starts), and at b <= 3 palette (PaletteQuantizer
// started from the default grid result, its own time only).
import BFQCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Wall and process CPU seconds.
func now() -> (wall: Double, cpu: Double) {
    var t = timespec(), c = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c)
    return (Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9, Double(c.tv_sec) + Double(c.tv_nsec) * 1e-9)
}

struct Tally {
    var seconds = 0.0, cpu = 0.0, error = 0.0, signal = 0.0, weights = 0
    mutating func add(_ result: QuantizationResult, since start: (wall: Double, cpu: Double)) {
        let end = now()
        (seconds, cpu) = (seconds + end.wall - start.wall, cpu + end.cpu - start.cpu)
        (error, signal) = (error + result.error, signal + result.signal)
        weights += result.codes.count
    }
}

let arguments = CommandLine.arguments.dropFirst()
guard let path = arguments.first else {
    FileHandle.standardError.write(Data("usage: bfq-bench-quantize FILE [BITS...]\n".utf8))
    exit(64)
}
let bitWidths = arguments.dropFirst().compactMap { Int($0) }.isEmpty ? Array(1 ... 6) : arguments.dropFirst().compactMap { Int($0) }
let checkpoint = try CheckpointFile.open(path)
let layers = checkpoint.tensors.filter { ($0.shape.count == 2 || $0.shape.count == 4) && $0.dtype.isFloatingPoint }

var settings: [(String, Int, GridQuantizer)] = []
for b in bitWidths {
    settings.append(("absmax", b, try GridQuantizer(bits: b, maxIterations: 0, startFactors: [1])))
    settings.append(("alt1", b, try GridQuantizer(bits: b, startFactors: [1])))
    settings.append(("multi2", b, try GridQuantizer(bits: b, startFactors: [1, 0.8])))
    settings.append(("multi3", b, try GridQuantizer(bits: b, startFactors: [1, 0.85, 0.7])))
    settings.append(("multi6", b, try GridQuantizer(bits: b, startFactors: [1, 0.9, 0.8, 0.7, 0.6, 0.5])))
    settings.append(("default", b, try GridQuantizer(bits: b)))
}
var tallies = [String: Tally]()
var weights = [Float]()
for layer in layers {
    let count = layer.elementCount
    let rows = layer.shape[0], columns = count / Swift.max(rows, 1)
    weights = [Float](repeating: 0, count: count)
    try checkpoint.withContiguousBytes(of: layer) { bytes in
        weights.withUnsafeMutableBytes {
            ElementConverter.convert(bytes.baseAddress!, layer.dtype, to: $0.baseAddress!, .f32, count: count)
        }
    }
    try weights.withUnsafeBufferPointer { w in
        for (name, b, quantizer) in settings {
            let start = now()
            let result = try quantizer.quantize(w, rows: rows, columns: columns)
            tallies["\(name) b\(b)", default: Tally()].add(result, since: start)
            guard name == "default", b <= 3 else { continue }
            let paletteStart = now()
            let palette = try PaletteQuantizer(bits: b).quantize(w, rows: rows, columns: columns, start: result)
            tallies["palette b\(b)", default: Tally()].add(palette, since: paletteStart)
        }
    }
}
print("threads\t\(Parallel.threadCount)\tlayers\t\(layers.count)")
print("setting\twall s\tCPU s\tCPU ns/weight\tSQNR dB")
for b in bitWidths {
    for name in ["absmax", "alt1", "multi2", "multi3", "multi6", "default", "palette"] {
        guard let t = tallies["\(name) b\(b)"] else { continue }
        let sqnr = 10 * log10(t.signal / t.error)
        print("\(name) b\(b)\t" + String(format: "%.2f\t%.2f\t%.2f\t%.3f", t.seconds, t.cpu, t.cpu / Double(t.weights) * 1e9, sqnr))
    }
}
