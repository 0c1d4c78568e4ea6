// Writes testdata/bfq/: small .bfq files holding every encoding of spec/bfq.md with seeded codes and scales, the
// Swift dequantizer's output for each (NAME.expected.safetensors, F32 for quantized tensors), and damaged copies
// (NAME.corrupt-*.bfq) that every reader must refuse. Run by tools/testdata/bfq_cases.sh; the Python loader's test
// (tools/test_bfq_loader.py) and the Swift tests decode these files and compare.
import BFQCore
import CBFQShims
import Foundation

/// A seeded generator (64-bit LCG), so the fixtures are the same on every run.
struct Seeded {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
    mutating func code(_ levels: Int) -> UInt16 { UInt16(next() % UInt64(levels)) }
    mutating func float(_ scale: Float) -> Float { (Float(next() % 2_000_001) / 1_000_000 - 1) * scale }
}

func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes(Array.init) }

func f16(_ values: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: values.count * 2)
    values.withUnsafeBytes { input in
        out.withUnsafeMutableBytes { ElementConverter.convert(input.baseAddress!, .f32, to: $0.baseAddress!, .f16, count: values.count) }
    }
    return out
}

struct Fixture {
    let writer: ContainerWriter
    var tensors: [ContainerTensor] = []
    var random = Seeded(state: 2026)

    mutating func section(_ data: [UInt8]) throws -> ContainerTensor.SectionReference {
        try data.withUnsafeBytes { try writer.addSection($0) }
    }

    mutating func grid(_ name: String, shape: [Int], levels: Int, balanced: Bool, scaleType: DType, groupSize: Int? = nil,
                       offsetType: DType? = nil, packing: CodePacking = .radix) throws {
        let rows = shape[0], columns = shape.dropFirst().reduce(1, *)
        let codes = (0 ..< rows * columns).map { _ in random.code(levels) }
        let groups = groupSize.map { (columns + $0 - 1) / $0 } ?? 1
        let scales = (0 ..< rows * groups).map { _ in random.float(0.05) }
        let offsets = offsetType.map { _ in (0 ..< rows).map { _ in random.float(0.01) } }
        var sections = ["codes": try section(try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels,
                                                                 packing: packing))]
        sections["scales"] = try section(scaleType == .f16 ? f16(scales) : bytes(scales))
        if let offsets, let offsetType { sections["offsets"] = try section(offsetType == .f16 ? f16(offsets) : bytes(offsets)) }
        tensors.append(ContainerTensor(name: name, shape: shape, sourceType: .f32,
                                       encoding: .grid(levels: levels, balanced: balanced, scaleType: scaleType,
                                                       groupSize: groupSize, offsetType: offsetType, packing: packing),
                                       sections: sections))
    }

    mutating func palette(_ name: String, shape: [Int], levels: Int, perRow: Bool, packing: CodePacking = .radix) throws {
        let rows = shape[0], columns = shape.dropFirst().reduce(1, *)
        let codes = (0 ..< rows * columns).map { _ in random.code(levels) }
        let table = (0 ..< (perRow ? rows : 1) * levels).map { _ in random.float(0.2) }
        tensors.append(ContainerTensor(name: name, shape: shape, sourceType: .f16,
                                       encoding: .palette(levels: levels, perRow: perRow, packing: packing),
                                       sections: ["codes": try section(try CodePacker.pack(codes, rows: rows, columns: columns,
                                                                                           levels: levels, packing: packing)),
                                                  "palette": try section(f16(table))]))
    }

    /// A balanced grid whose codes go through `ContainerWriter.addCodes`, which keeps the smaller packing: peaked codes
    /// (the sum of two uniform ones), as quantized weights give.
    mutating func chosenGrid(_ name: String, shape: [Int], levels: Int) throws {
        let rows = shape[0], columns = shape.dropFirst().reduce(1, *)
        let codes = (0 ..< rows * columns).map { _ in random.code(levels / 2 + 1) + random.code(levels / 2 + 1) }
        let (packing, codesSection) = try writer.addCodes(codes, rows: rows, columns: columns, levels: levels)
        let scales = (0 ..< rows).map { _ in random.float(0.05) }
        tensors.append(ContainerTensor(name: name, shape: shape, sourceType: .f32,
                                       encoding: .grid(levels: levels, balanced: true, scaleType: .f16, groupSize: nil,
                                                       offsetType: nil, packing: packing),
                                       sections: ["codes": codesSection, "scales": try section(f16(scales))]))
    }

    mutating func raw(_ name: String, shape: [Int], dtype: DType, data: [UInt8]) throws {
        tensors.append(ContainerTensor(name: name, shape: shape, sourceType: dtype, encoding: .raw(dtype: dtype),
                                       sections: ["data": try section(data)]))
    }
}

/// Decodes every tensor of `path` through bfq's own reader and writes them (quantized ones as F32) to `expected`.
func writeExpected(_ path: String, to expected: String) throws {
    let checkpoint = try CheckpointFile.open(path)
    let plan = try ConversionPlan(checkpoint, options: ConversionOptions(dtype: .keep), outputPath: expected)
    try plan.write(to: expected)
}

func makeEncodings(_ directory: String) throws {
    let path = directory + "/encodings.bfq"
    var fixture = Fixture(writer: try ContainerWriter(target: OutputTarget(path: path)))
    try fixture.grid("grid.b1.ternary", shape: [6, 3, 3, 3], levels: 3, balanced: true, scaleType: .f16)
    try fixture.grid("grid.b2.groups", shape: [4, 100], levels: 5, balanced: true, scaleType: .f32, groupSize: 32, offsetType: .f16)
    try fixture.grid("grid.b3", shape: [5, 17], levels: 9, balanced: true, scaleType: .f16, offsetType: .f32)
    try fixture.grid("grid.b4", shape: [3, 11], levels: 17, balanced: true, scaleType: .f32)
    try fixture.grid("grid.b8", shape: [2, 9], levels: 257, balanced: true, scaleType: .f32)
    try fixture.grid("grid.plain.b2", shape: [3, 40], levels: 4, balanced: false, scaleType: .f16, groupSize: 32)
    try fixture.grid("grid.plain.b1", shape: [2, 13], levels: 2, balanced: false, scaleType: .f32)
    try fixture.palette("palette.row", shape: [4, 2, 5], levels: 7, perRow: true)
    try fixture.palette("palette.tensor", shape: [3, 33], levels: 16, perRow: false)
    try fixture.raw("bias.f16", shape: [6], dtype: .f16, data: f16((0 ..< 6).map { Float($0) / 8 - 0.3 }))
    try fixture.raw("zeros.f32", shape: [64, 8], dtype: .f32, data: bytes([Float](repeating: 0, count: 512)))
    try fixture.raw("steps.i64", shape: [3], dtype: .i64, data: bytes([Int64(-1), 0, 999]))
    let features = f16((0 ..< 3 * 10).map { Float($0) / 16 })
    let cache = ContainerManifest.TimeFeatures(timesteps: [1, 501, 981], layers: [("down_blocks.0.resnets.0.time_emb_proj", 4),
                                                                                 ("mid_block.resnets.0.time_emb_proj", 6)],
                                               features: try fixture.section(features), replacedWeights: 96)
    try fixture.writer.finish(manifest: ContainerManifest(tensors: fixture.tensors, metadata: ["fixture": "encodings"],
                                                         timeFeatures: cache))
    try writeExpected(path, to: directory + "/encodings.expected.safetensors")
}

/// Byte-packed tensors (spec/bfq.md section 5.2) of every shape of group, next to radix ones, and one chosen by the
/// writer.
func makePacking(_ directory: String) throws {
    let path = directory + "/packing.bfq"
    var fixture = Fixture(writer: try ContainerWriter(target: OutputTarget(path: path)), random: Seeded(state: 2027))
    try fixture.grid("bytes.b1", shape: [2, 12], levels: 3, balanced: true, scaleType: .f16, packing: .bytes)
    try fixture.grid("bytes.b2", shape: [4, 3, 3, 3], levels: 5, balanced: true, scaleType: .f16, packing: .bytes)
    try fixture.grid("bytes.b2.short", shape: [3, 7], levels: 5, balanced: true, scaleType: .f32, packing: .bytes)
    try fixture.grid("bytes.b3.groups", shape: [3, 70], levels: 9, balanced: true, scaleType: .f32, groupSize: 32,
                     offsetType: .f16, packing: .bytes)
    try fixture.grid("bytes.b4", shape: [2, 11], levels: 17, balanced: true, scaleType: .f32, packing: .bytes)
    try fixture.grid("bytes.b8", shape: [2, 5], levels: 257, balanced: true, scaleType: .f16, offsetType: .f32, packing: .bytes)
    try fixture.grid("bytes.plain.b3", shape: [3, 9], levels: 8, balanced: false, scaleType: .f32, packing: .bytes)
    try fixture.palette("bytes.palette.row", shape: [3, 2, 7], levels: 33, perRow: true, packing: .bytes)
    try fixture.palette("bytes.palette.tensor", shape: [2, 19], levels: 6, perRow: false, packing: .bytes)
    try fixture.grid("radix.b2", shape: [2, 10], levels: 5, balanced: true, scaleType: .f16)
    try fixture.chosenGrid("chosen.b3", shape: [16, 288], levels: 9)
    try fixture.writer.finish(manifest: ContainerManifest(tensors: fixture.tensors, metadata: ["fixture": "packing"]))
    try writeExpected(path, to: directory + "/packing.expected.safetensors")
}

/// packing.bfq with header flag bit 0 cleared (header CRC recomputed): byte-packed tensors without the flag that
/// makes a 1.0 reader refuse them, which every reader must refuse.
func makeFlagCleared(_ directory: String) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/packing.bfq")))
    bytes[12] &= 0xFE
    let crc = bfq_crc32(0, bytes, 64)
    withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(64 ..< 68, with: $0) }
    try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/packing.corrupt-flag.bfq"))
}

func makeLossless(_ directory: String, source: String) throws {
    let path = directory + "/dtypes.bfq"
    let checkpoint = try CheckpointFile.open(source)
    try ConversionPlan(checkpoint, options: ConversionOptions(), outputPath: path).write(to: path)
    try writeExpected(path, to: directory + "/dtypes.expected.safetensors")
}

/// Damaged copies: one byte changed in the header, the table, the manifest, a stored section; and a truncation.
func makeCorrupt(_ directory: String, from name: String) throws {
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).bfq")))
    let table = Int(original[16 ..< 24].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    let manifest = Int(original[32 ..< 40].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    for (label, position) in [("header", 20), ("table", table + 5), ("manifest", manifest + 10), ("section", 128 + 3)] {
        var bytes = original
        bytes[position] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(name).corrupt-\(label).bfq"))
    }
    try Data(original.dropLast(7)).write(to: URL(fileURLWithPath: "\(directory)/\(name).corrupt-truncated.bfq"))
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: bfq-testdata OUT_DIR SOURCE.safetensors\n".utf8))
    exit(64)
}
do {
    try makeEncodings(arguments[1])
    try makeLossless(arguments[1], source: arguments[2])
    try makePacking(arguments[1])
    for name in ["encodings", "dtypes", "packing"] { try makeCorrupt(arguments[1], from: name) }
    try makeFlagCleared(arguments[1])
} catch {
    FileHandle.standardError.write(Data("bfq-testdata: \(error)\n".utf8))
    exit(1)
}
