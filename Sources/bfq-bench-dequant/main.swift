// Decodes in-memory packed layers shaped like SD-v1.5's to f32 (and one case to f16) and prints, per case, billions of
// weights per second on Parallel.threadCount threads (BFQ_THREADS), next to memcpy of the same output in the same
// run; then one small layer decoded over and over into a cache-resident output, which shows the kernels' own speed
// rather than the memory's. One "label<TAB>value" line per case; tools/bench_dequant.sh runs it and takes medians.
import BFQCore
#if canImport(Glibc)
import Glibc
#endif

/// (rows, columns) of SD-v1.5 UNet weights: 3x3 convs at 1280, 640 and 320 channels, GEGLU and FF linears, a
/// cross-attention key projection, a 640 self-attention projection.
let shapes = [(1280, 11520), (640, 5760), (320, 2880), (10240, 1280), (1280, 5120), (1280, 768), (640, 640)]
let weights = shapes.reduce(0) { $0 + $1.0 * $1.1 }
let repetitions = 7

struct Case {
    let label: String
    let levels: Int
    let dtype: DType
    let values: (Int, Int) -> QuantizedValues // (rows, columns) -> parameters
    var packing = CodePacking.radix
}

func perRow(_ rows: Int, _: Int) -> QuantizedValues { .grid(scales: (0 ..< rows).map { 0.01 + Float($0 % 7) * 1e-3 }) }

let cases: [Case] = [
    Case(label: "L=2 plain 1-bit", levels: 2, dtype: .f32, values: perRow),
    Case(label: "L=3 balanced 1-bit", levels: 3, dtype: .f32, values: perRow),
    Case(label: "L=4 plain 2-bit", levels: 4, dtype: .f32, values: perRow),
    Case(label: "L=5 balanced 2-bit", levels: 5, dtype: .f32, values: perRow),
    Case(label: "L=8 plain 3-bit", levels: 8, dtype: .f32, values: perRow),
    Case(label: "L=9 balanced 3-bit", levels: 9, dtype: .f32, values: perRow),
    Case(label: "L=17 balanced 4-bit", levels: 17, dtype: .f32, values: perRow),
    Case(label: "L=5 balanced 2-bit, bytes", levels: 5, dtype: .f32, values: perRow, packing: .bytes),
    Case(label: "L=8 plain 3-bit, bytes", levels: 8, dtype: .f32, values: perRow, packing: .bytes),
    Case(label: "L=9 balanced 3-bit, bytes", levels: 9, dtype: .f32, values: perRow, packing: .bytes),
    Case(label: "L=17 balanced 4-bit, bytes", levels: 17, dtype: .f32, values: perRow, packing: .bytes),
    Case(label: "L=33 balanced 5-bit", levels: 33, dtype: .f32, values: perRow),
    Case(label: "L=33 balanced 5-bit, bytes", levels: 33, dtype: .f32, values: perRow, packing: .bytes),
    Case(label: "L=3 groups of 128 + offsets", levels: 3, dtype: .f32, values: { rows, columns in
        .grid(scales: Array(repeating: 0.01, count: rows * ((columns + 127) / 128)), groupSize: 128,
              offsets: Array(repeating: 0.001, count: rows))
    }),
    Case(label: "L=9 palette per row", levels: 9, dtype: .f32, values: { rows, _ in
        .palette((0 ..< rows * 9).map { Float($0 % 9) * 0.01 }, perRow: true)
    }),
    Case(label: "L=3 balanced 1-bit to f16", levels: 3, dtype: .f16, values: perRow),
]

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Median seconds of `repetitions` runs of `body`, after one warm-up run.
func time(_ body: () throws -> Void) rethrows -> Double {
    try body()
    var seconds: [Double] = []
    for _ in 0 ..< repetitions {
        let start = now()
        try body()
        seconds.append(now() - start)
    }
    return seconds.sorted()[repetitions / 2]
}

func report(_ label: String, _ seconds: Double, weights: Int = weights) {
    print("\(label)\t\((Double(weights) / seconds / 1e9).formatted2)")
}

extension Double {
    var formatted2: String {
        let hundredths = Int((self * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

/// Pseudo-random codes below `levels` (xorshift64), fixed by the seed.
func randomCodes(_ count: Int, levels: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    return (0 ..< count).map { _ in
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return UInt8((x >> 32) % UInt64(levels))
    }
}

// Every layer gets its own output, touched before timing, so decoding streams to memory as a real model would.
let outputs = shapes.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0.0 * $0.1 * 4, alignment: 64) }
let sources = shapes.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0.0 * $0.1 * 4, alignment: 64) }
for buffer in outputs + sources { buffer.initializeMemory(as: UInt8.self, repeating: 1) }

print("threads\t\(Parallel.threadCount)")
print("weights\t\(weights)")

/// memcpy of every layer's f32 output, split into the same tasks of 64 Ki values over the same threads.
let memcpySeconds = time {
    for (source, output) in zip(sources, outputs) {
        let chunk = 65_536 * 4
        Parallel.forEach((output.count + chunk - 1) / chunk) { task in
            let start = task * chunk
            memcpy(output.baseAddress! + start, source.baseAddress! + start, Swift.min(chunk, output.count - start))
        }
    }
}
report("memcpy f32 output", memcpySeconds)

var packSeconds = 0.0
for (index, testCase) in cases.enumerated() {
    var layers: [(Dequantizer, [UInt8])] = []
    for (layer, (rows, columns)) in shapes.enumerated() {
        let codes = randomCodes(rows * columns, levels: testCase.levels, seed: UInt64(1 + index * 31 + layer))
        let start = now()
        let packed = try CodePacker.pack(codes, rows: rows, columns: columns, levels: testCase.levels,
                                         packing: testCase.packing)
        if index == 1 { packSeconds += now() - start }
        layers.append((try Dequantizer(rows: rows, columns: columns, levels: testCase.levels,
                                       values: testCase.values(rows, columns), packing: testCase.packing), packed))
    }
    let seconds = try time {
        for ((dequantizer, packed), output) in zip(layers, outputs) {
            let bytes = dequantizer.rows * dequantizer.columns * testCase.dtype.byteSize
            try packed.withUnsafeBytes { packed in
                try dequantizer.decode(packed, into: UnsafeMutableRawBufferPointer(rebasing: output[0 ..< bytes]),
                                       as: testCase.dtype)
            }
        }
    }
    report(testCase.label, seconds)
}
print("pack L=3 (1 thread), M codes/s\t\(Int(Double(weights) / packSeconds / 1e6))")

// A [256, 1024] layer (1 MiB of f32) decoded 64 times per run into the same output, against memcpy of that output.
let small = (rows: 256, columns: 1024, passes: 64)
let smallOutput = UnsafeMutableRawBufferPointer(rebasing: outputs[0][0 ..< small.rows * small.columns * 4])
let smallSource = UnsafeRawBufferPointer(rebasing: sources[0][0 ..< small.rows * small.columns * 4])
report("memcpy f32 output, in cache", time {
    for _ in 0 ..< small.passes { smallOutput.copyMemory(from: smallSource) }
}, weights: small.rows * small.columns * small.passes)
for levels in [3, 9] {
    let codes = randomCodes(small.rows * small.columns, levels: levels, seed: 7)
    let packed = try CodePacker.pack(codes, rows: small.rows, columns: small.columns, levels: levels)
    let dequantizer = try Dequantizer(rows: small.rows, columns: small.columns, levels: levels,
                                      values: perRow(small.rows, small.columns))
    let seconds = try time {
        for _ in 0 ..< small.passes {
            try packed.withUnsafeBytes { try dequantizer.decode($0, into: smallOutput, as: .f32) }
        }
    }
    report("L=\(levels) balanced, in cache", seconds, weights: small.rows * small.columns * small.passes)
}
