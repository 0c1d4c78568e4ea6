import Foundation
import XCTest
@testable import BFQCore

/// `convert … OUT.gguf`: blocks byte for byte as gguf-py's writer stored them, the per-tensor type rules, both
/// layouts, and files that read back as written.
final class GGUFWriterTests: XCTestCase {
    private func convert(_ input: String, _ options: GGUFWriteOptions, conversion: ConversionOptions = ConversionOptions()) throws
        -> (path: String, conversion: GGUFConversion) {
        let checkpoint = try CheckpointFile.open(TestFiles.path(input))
        let path = try TestFiles.temporaryDirectory() + "/out.gguf"
        let plan = try ConversionPlan(checkpoint, options: conversion, outputPath: path)
        let gguf = try GGUFConversion(plan, options: options, outputPath: path)
        try gguf.write(to: path, durable: false)
        return (path, gguf)
    }

    /// The stored bytes of tensor `name` in the GGUF file at `path`, with its type.
    private func stored(_ path: String, _ name: String) throws -> (type: GGMLType, bytes: [UInt8]) {
        let file = try MappedFile(path: path)
        let gguf = try GGUFReader.parse(file)
        let tensor = try XCTUnwrap(gguf.tensors.first { $0.name == name }, name)
        let start = gguf.dataStart + tensor.offset
        return (tensor.type, Array(file.bytes(in: start ..< start + tensor.byteCount)))
    }

    /// Each type gguf-py quantizes, from the same f32 values: the same blocks as gguf-py wrote into types.gguf
    /// (heavy-tailed rows, and rows of zeros, a constant, one outlier, all negative, tiny values).
    func testBlocksEqualGGUFPyQuantize() throws {
        for type in GGUFWriteOptions.writable where type.block.elements == 1 || ![.q2_k, .q3_k, .q4_k, .q5_k, .q6_k].contains(type) {
            let name = type.name.lowercased() + ".weight"
            let rule = try GGUFWriteOptions.Rule("^\(NSRegularExpression.escapedPattern(for: name))$=\(type.name)")
            let (path, _) = try convert("gguf/types.source.safetensors", GGUFWriteOptions(type: .f32, rules: [rule]))
            let ours = try stored(path, name), theirs = try stored(TestFiles.path("gguf/types.gguf"), name)
            XCTAssertEqual(ours.type, type, name)
            XCTAssertEqual(theirs.type, type, name)
            let differing = zip(ours.bytes, theirs.bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            XCTAssertEqual(ours.bytes.count, theirs.bytes.count, name)
            XCTAssertNil(differing, "\(name): first differing byte \(differing ?? 0) of block \((differing ?? 0) / type.block.bytes)")
        }
    }

    /// The K-quants gguf-py cannot write, from the same f32 values: the same blocks as ggml's reference quantizers
    /// (ggml_quantize_chunk without an importance matrix) wrote.
    func testKQuantBlocksEqualGGML() throws {
        let name = "model.diffusion_model.kq.weight"
        for type in [GGMLType.q2_k, .q3_k, .q4_k, .q5_k, .q6_k] {
            let file = type.name
            let (path, _) = try convert("gguf/kquants.source.safetensors", GGUFWriteOptions(type: type))
            let ours = try stored(path, name)
            let theirs = try stored(TestFiles.path("gguf/kquants.reference.gguf"), type.name.lowercased() + ".weight")
            XCTAssertEqual(ours.type, type, file)
            XCTAssertEqual(theirs.type, type, file)
            XCTAssertEqual(ours.bytes.count, theirs.bytes.count, file)
            let differing = zip(ours.bytes, theirs.bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            XCTAssertNil(differing, "\(file): first differing byte \(differing ?? 0), in block \((differing ?? 0) / type.block.bytes) at \((differing ?? 0) % type.block.bytes)")
        }
    }

    /// stable-diffusion.cpp's rules at --type q4_0: convolutions (rows of kernel width), 1-D tensors and the input,
    /// output and time-embedding layers stay F16; linear weights whose rows fit 32 are Q4_0; a rule overrides.
    func testTypeRulesInSDCppLayout() throws {
        let rule = try GGUFWriteOptions.Rule(#"attn2\.to_[kv]=q8_0"#)
        let (path, conversion) = try convert("unet/tiny_unet.ldm.safetensors", GGUFWriteOptions(type: .q4_0, rules: [rule]))
        let types = Dictionary(uniqueKeysWithValues: conversion.outputs.map { ($0.name, $0.type) })
        let source = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors"))
        XCTAssertEqual(conversion.outputs.map(\.name), source.tensors.map(\.name))
        for tensor in source.tensors {
            let name = tensor.name, type = types[name]!
            if name.contains("attn2.to_k.") || name.contains("attn2.to_v.") {
                XCTAssertEqual(type, tensor.shape.last! % 32 == 0 ? .q8_0 : .f16, name)
            } else if tensor.shape.count == 2, tensor.shape[1] % 32 == 0, !name.contains(".time_embed.") {
                XCTAssertEqual(type, .q4_0, name)
            } else {
                XCTAssertEqual(type, .f16, name)
            }
        }
        XCTAssertEqual(types["model.diffusion_model.time_embed.0.weight"], .f16)
        XCTAssertEqual(types["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"], .q8_0)
        XCTAssertEqual(Set(types.values), [.f16, .q4_0, .q8_0])
        // Reads back with the source's names and shapes; an F16 tensor holds the source rounded to f16.
        let written = try CheckpointFile.open(path)
        XCTAssertEqual(written.tensors.map(\.shape), source.tensors.map(\.shape))
        let conv = try XCTUnwrap(source.tensors.first { $0.name.hasSuffix("input_blocks.1.0.in_layers.2.weight") })
        let widened = try written.floats(of: written.tensors.first { $0.name == conv.name }!)
        XCTAssertEqual(widened, try source.floats(of: conv).map { Float(Float16($0)) })
    }

    /// ComfyUI-GGUF's layout: the same names, original shapes and flattening as the ComfyUI-layout fixture, the
    /// metadata it writes, and every 2-D weight whose rows fit quantized.
    func testComfyLayoutMatchesComfyUIConventions() throws {
        let (path, conversion) = try convert("unet/tiny_unet.ldm.safetensors", GGUFWriteOptions(type: .q8_0, layout: .comfy))
        let ours = try GGUFReader.parse(MappedFile(path: path))
        let fixture = try GGUFReader.parse(MappedFile(path: TestFiles.path("gguf/tiny_unet.comfy.gguf")))
        XCTAssertEqual(ours.tensors.map(\.name), fixture.tensors.map(\.name))
        XCTAssertEqual(ours.tensors.map(\.dimensions), fixture.tensors.map(\.dimensions))
        XCTAssertEqual(ours.tensors.map(\.shape), fixture.tensors.map(\.shape))
        XCTAssertEqual(ours.value("general.architecture"), .string("sd1"))
        XCTAssertEqual(ours.value("general.quantization_version"), .uint32(2))
        XCTAssertEqual(ours.value("general.file_type"), .uint32(7))
        let shapeKeys = { (file: GGUFFile) in file.metadata.filter { $0.key.hasPrefix("comfy.gguf.orig_shape.") } }
        XCTAssertEqual(shapeKeys(ours).map(\.key), shapeKeys(fixture).map(\.key))
        XCTAssertEqual(shapeKeys(ours).map(\.value.text), shapeKeys(fixture).map(\.value.text))
        // The fixture quantized the same 2-D weights to Q8_0 with gguf-py: those blocks are identical.
        for (mine, theirs) in zip(ours.tensors, fixture.tensors) where theirs.type == .q8_0 {
            XCTAssertEqual(mine.type, .q8_0, mine.name)
            XCTAssertEqual(try stored(path, mine.name).bytes, try stored(TestFiles.path("gguf/tiny_unet.comfy.gguf"), mine.name).bytes, mine.name)
        }
        XCTAssertTrue(conversion.summary(errors: []).contains("Q8_0 ×180"), conversion.summary(errors: []))
    }

    /// A .bfq's layers take the closest ggml type: a ternary layer with f16 row scales and rows of 512 becomes TQ2_0
    /// holding exactly the .bfq's values; others the smallest type with at least log2(levels) bits whose blocks fit;
    /// the summary reports the error each adds.
    func testBFQLayersTakeTheClosestType() throws {
        let directory = try TestFiles.temporaryDirectory()
        let path = directory + "/layers.bfq"
        let writer = try ContainerWriter(target: OutputTarget(path: path, durable: false))
        var generator = SeededGenerator(seed: 15)
        func section(_ bytes: [UInt8]) throws -> ContainerTensor.SectionReference { try bytes.withUnsafeBytes { try writer.addSection($0) } }
        func grid(_ name: String, _ shape: [Int], levels: Int, scaleType: DType) throws -> ContainerTensor {
            let rows = shape[0], columns = shape.dropFirst().reduce(1, *)
            let codes = (0 ..< rows * columns).map { _ in UInt16(generator.next() % UInt64(levels)) }
            let scales = (0 ..< rows).map { Float($0 + 1) * 0.01 }
            var scaleBytes = [UInt8](repeating: 0, count: rows * scaleType.byteSize)
            scales.withUnsafeBytes { input in
                scaleBytes.withUnsafeMutableBytes { ElementConverter.convert(input.baseAddress!, .f32, to: $0.baseAddress!, scaleType, count: rows) }
            }
            return ContainerTensor(name: name, shape: shape, sourceType: .f16,
                                   encoding: .grid(levels: levels, balanced: true, scaleType: scaleType, groupSize: nil, offsetType: nil),
                                   sections: ["codes": try section(try CodePacker.pack(codes, rows: rows, columns: columns, levels: levels)),
                                              "scales": try section(scaleBytes)])
        }
        let tensors = [try grid("ternary.weight", [4, 512], levels: 3, scaleType: .f16),
                       try grid("ternary.f32scales.weight", [4, 512], levels: 3, scaleType: .f32),
                       try grid("five.weight", [4, 512], levels: 5, scaleType: .f16),
                       try grid("nine.weight", [4, 512], levels: 9, scaleType: .f16),
                       try grid("seventeen.weight", [2, 96], levels: 17, scaleType: .f16),
                       ContainerTensor(name: "bias", shape: [4], sourceType: .f16, encoding: .raw(dtype: .f16),
                                       sections: ["data": try section([0, 60, 0, 188, 0, 0, 0, 64])])]
        _ = try writer.finish(manifest: ContainerManifest(tensors: tensors))

        let checkpoint = try CheckpointFile.open(path)
        let output = directory + "/layers.gguf"
        let plan = try ConversionPlan(checkpoint, options: ConversionOptions(), outputPath: output)
        let conversion = try GGUFConversion(plan, options: GGUFWriteOptions(closest: true), outputPath: output)
        XCTAssertEqual(conversion.outputs.map(\.type), [.tq2_0, .q2_k, .q2_k, .q3_k, .q4_0, .f16])
        let errors = try conversion.write(to: output, durable: false)
        XCTAssertEqual(errors.map(\.name), Array(tensors.map(\.name).dropLast()))
        XCTAssertEqual(errors[0].noise, 0)
        XCTAssertTrue(errors.dropFirst().allSatisfy { $0.noise > 0 && $0.sqnrDB! > 5 }, "\(errors)")
        let summary = conversion.summary(errors: errors)
        XCTAssertTrue(summary.contains("TQ2_0 ×1, 24.4% of elements (ternary, exact ×1)"), summary)
        XCTAssertTrue(summary.contains("error added by the 5 quantized tensors: SQNR "), summary)
        XCTAssertTrue(summary.hasSuffix("; 1 exact"), summary)
        // The TQ2_0 tensor decodes to the .bfq's values bit for bit; every tensor to within its SQNR.
        let written = try CheckpointFile.open(output)
        for (ours, theirs) in zip(written.tensors, checkpoint.tensors) {
            let a = try written.floats(of: ours), b = try checkpoint.floats(of: theirs)
            if ours.name == "ternary.weight" { XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern)) }
            if ours.name == "bias" { XCTAssertEqual(a, [1, -1, 0, 2]) }
        }
    }

    func testSameInputSameBytes() throws {
        let first = try convert("unet/tiny_unet.ldm.safetensors", GGUFWriteOptions(type: .q5_1, layout: .comfy)).path
        let again = try convert("unet/tiny_unet.ldm.safetensors", GGUFWriteOptions(type: .q5_1, layout: .comfy)).path
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: first)), try Data(contentsOf: URL(fileURLWithPath: again)))
    }

    func testBadOptionsAreOneLine() throws {
        XCTAssertThrowsError(try GGUFWriteOptions.type(named: "q4_k_m")) { XCTAssertTrue("\($0)".hasPrefix("--type q4_k_m: not a type bfq writes"), "\($0)") }
        XCTAssertThrowsError(try GGUFWriteOptions.Rule("attn")) { XCTAssertTrue("\($0)".contains("expected PATTERN=TYPE"), "\($0)") }
        XCTAssertThrowsError(try GGUFWriteOptions.Rule("(=q8_0")) { XCTAssertTrue("\($0)".contains("is not a regular expression"), "\($0)") }
        XCTAssertThrowsError(try GGUFWriteOptions.Rule("attn=iq2_xxs")) { XCTAssertTrue("\($0)".contains("IQ2_XXS is not a type bfq writes") || "\($0)".contains("iq2_xxs is not a type bfq writes"), "\($0)") }
        // A layout that needs a UNet refuses a file without one.
        XCTAssertThrowsError(try convert("gguf/types.source.safetensors", GGUFWriteOptions(type: .q8_0, layout: .comfy))) {
            XCTAssertTrue("\($0)".hasSuffix("types.source.safetensors: no SD 1.x/2.x or SDXL UNet, which --layout comfy needs "
                + "(ComfyUI-GGUF loads by architecture)"), "\($0)")
        }
    }
}
