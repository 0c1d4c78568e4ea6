import Crypto
import Foundation
import XCTest
@testable import BFQCore

/// GGUF files made by the real producers (gguf-py's writer, stable-diffusion.cpp's converter, a ComfyUI-GGUF-layout
/// file; tools/testdata/gguf_cases.py) read as gguf-py reads them: the same tensors, types, shapes and offsets, and
/// every tensor decoded to the same f32 bits as `gguf.quants.dequantize`.
final class GGUFReaderTests: XCTestCase {
    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: TestFiles.path("gguf/expected.json")))
        return try! JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
    }()

    static func sha256(_ values: [Float]) -> String {
        values.withUnsafeBytes { SHA256.hash(data: $0) }.map { String(format: "%02x", $0) }.joined()
    }

    func testEveryTensorDecodesToGGUFPyValues() throws {
        XCTAssertEqual(Self.expected.count, 9)
        for (file, description) in Self.expected.sorted(by: { $0.key < $1.key }) {
            let checkpoint = try CheckpointFile.open(TestFiles.path("gguf/" + file))
            XCTAssertEqual(checkpoint.format, .gguf, file)
            let decoder = try XCTUnwrap(checkpoint.decoder as? GGUFTensorDecoder)
            XCTAssertEqual(decoder.gguf.alignment, description["alignment"] as? Int, file)
            let tensors = description["tensors"] as! [[String: Any]]
            XCTAssertEqual(checkpoint.tensors.map(\.name), tensors.map { $0["name"] as! String }, file)
            for (tensor, expected) in zip(checkpoint.tensors, tensors) {
                let declared = decoder.declaration(of: tensor)
                let label = "\(file): \(tensor.name)"
                XCTAssertEqual(declared.type.name, expected["type"] as? String, label)
                XCTAssertEqual(tensor.shape, expected["shape"] as? [Int], label)
                XCTAssertEqual(decoder.gguf.dataStart + declared.offset, expected["offset"] as? Int, label)
                XCTAssertEqual(Self.sha256(try checkpoint.floats(of: tensor)), expected["sha256"] as? String, label)
            }
        }
    }

    /// The values themselves for the type and K-quant files (a failure shows which element differs).
    func testValuesEqualGGUFPyBitForBit() throws {
        let reference = try CheckpointFile.open(TestFiles.path("gguf/expected.values.safetensors"))
        XCTAssertEqual(reference.tensors.count, 25)
        for entry in reference.tensors {
            let parts = entry.name.split(separator: ":", maxSplits: 1).map(String.init)
            let checkpoint = try CheckpointFile.open(TestFiles.path("gguf/" + parts[0]))
            let tensor = try XCTUnwrap(checkpoint.tensors.first { $0.name == parts[1] }, entry.name)
            XCTAssertEqual(tensor.shape, entry.shape, entry.name)
            let ours = try checkpoint.floats(of: tensor), theirs = try reference.floats(of: entry)
            let differing = zip(ours, theirs).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
            XCTAssertNil(differing, "\(entry.name): element \(differing?.offset ?? 0): \(differing?.element.0 ?? 0) vs \(differing?.element.1 ?? 0)")
        }
        let types = Set(try CheckpointFile.open(TestFiles.path("gguf/types.gguf")).decoder.map { ($0 as! GGUFTensorDecoder).gguf.tensors.map(\.type) } ?? [])
        let kquants = try ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K"].map { name in
            try XCTUnwrap((CheckpointFile.open(TestFiles.path("gguf/kquants.\(name).gguf")).decoder as? GGUFTensorDecoder)?.gguf.tensors.last?.type)
        }
        let ggmlReference = try XCTUnwrap(CheckpointFile.open(TestFiles.path("gguf/kquants.reference.gguf")).decoder as? GGUFTensorDecoder)
        XCTAssertEqual(Set(ggmlReference.gguf.tensors.map(\.type)), Set(kquants))
        XCTAssertEqual(types.union(kquants), [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .tq1_0, .tq2_0,
                                              .q2_k, .q3_k, .q4_k, .q5_k, .q6_k])
    }

    func testMetadataOfEveryValueType() throws {
        let gguf = try GGUFReader.parse(MappedFile(path: TestFiles.path("gguf/types.gguf")))
        XCTAssertEqual(gguf.version, 3)
        XCTAssertEqual(gguf.value("test.u8"), .uint8(200))
        XCTAssertEqual(gguf.value("test.i8"), .int8(-100))
        XCTAssertEqual(gguf.value("test.u16"), .uint16(60000))
        XCTAssertEqual(gguf.value("test.i16"), .int16(-30000))
        XCTAssertEqual(gguf.value("test.u32"), .uint32(4_000_000_000))
        XCTAssertEqual(gguf.value("test.i32"), .int32(-2_000_000_000))
        XCTAssertEqual(gguf.value("test.f32"), .float32(0.1))
        XCTAssertEqual(gguf.value("test.bool"), .bool(true))
        XCTAssertEqual(gguf.value("test.string"), .string("ünïcode ✓"))
        XCTAssertEqual(gguf.value("test.u64"), .uint64(18_000_000_000_000_000_000))
        XCTAssertEqual(gguf.value("test.i64"), .int64(-9_000_000_000_000_000_000))
        XCTAssertEqual(gguf.value("test.f64"), .float64(-2.5e-300))
        XCTAssertEqual(gguf.value("test.ints")?.text, "[320, 4, 3, 3]")
        XCTAssertEqual(gguf.value("test.strings"), .array(elementType: 8, count: 3, [.string("a"), .string(""), .string("ß")]))
        XCTAssertEqual(gguf.value("test.floats"), .array(elementType: 6, count: 2, [.float32(0.5), .float32(-1.25)]))
        XCTAssertEqual(gguf.value("general.architecture"), .string("bfqtest"))
        // Every key gguf-py lists, in its order, and nothing else.
        let metadata = Self.expected["types.gguf"]!["metadata"] as! [String: Any]
        XCTAssertEqual(Set(gguf.metadata.map(\.key)), Set(metadata.keys))
        for entry in gguf.metadata {
            XCTAssertEqual(entry.value.typeID.name, (metadata[entry.key] as! [String: Any])["type"] as? String, entry.key)
        }
    }

    /// ComfyUI-GGUF's SD1 layout: bare ldm names, flattened weights back in their PyTorch shapes, the UNet recognised.
    func testComfyLayoutRestoresOriginalShapes() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path("gguf/tiny_unet.comfy.gguf"))
        let gguf = try XCTUnwrap(checkpoint.decoder as? GGUFTensorDecoder).gguf
        XCTAssertEqual(gguf.layout, .comfy)
        let source = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors"))
        XCTAssertEqual(checkpoint.tensors.map(\.name), source.tensors.map { String($0.name.dropFirst(UNetNaming.ldmPrefix.count)) })
        XCTAssertEqual(checkpoint.tensors.map(\.shape), source.tensors.map(\.shape))
        let flattened = gguf.tensors.filter { gguf.value(GGUFFile.originalShapeKey($0.name)) != nil }
        XCTAssertGreaterThan(flattened.count, 50)
        for tensor in flattened { XCTAssertEqual(tensor.dimensions.first, 256, tensor.name) }
        let model = try XCTUnwrap(ModelRecognition.recognise(names: checkpoint.tensors.map(\.name), shapes: checkpoint.tensors.map(\.shape)))
        XCTAssertEqual(model.family, .sd1)
        XCTAssertEqual(model.unetParameterCount, source.parameterCount)
    }

    /// stable-diffusion.cpp's layout: the checkpoint's own names and shapes, no metadata; its Q8_0 weights decode to
    /// within half a Q8_0 step of the source values.
    func testSDCppLayoutKeepsNamesAndShapes() throws {
        let checkpoint = try CheckpointFile.open(TestFiles.path("gguf/tiny_unet.sdcpp.q8_0.gguf"))
        let gguf = try XCTUnwrap(checkpoint.decoder as? GGUFTensorDecoder).gguf
        XCTAssertEqual(gguf.layout, .sdcpp)
        XCTAssertTrue(gguf.metadata.isEmpty)
        let source = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors"))
        XCTAssertEqual(checkpoint.tensors.map(\.name), source.tensors.map(\.name))
        XCTAssertEqual(checkpoint.tensors.map(\.shape), source.tensors.map(\.shape))
        var quantized = 0
        for (tensor, original) in zip(checkpoint.tensors, source.tensors) where gguf.tensors.first(where: { $0.name == tensor.name })!.type == .q8_0 {
            quantized += 1
            let ours = try checkpoint.floats(of: tensor), values = try source.floats(of: original)
            for block in stride(from: 0, to: values.count, by: 32) {
                let slice = values[block ..< block + 32]
                let step = slice.map(abs).max()! / 127
                for (a, b) in zip(ours[block ..< block + 32], slice) {
                    // Half a step, plus the scale's rounding to f16 (2^-11 relative) times the largest code.
                    XCTAssertLessThanOrEqual(abs(a - b), step * 0.5 + 127 * step / 2048 + 1e-7, tensor.name)
                }
            }
        }
        XCTAssertEqual(quantized, 159)
    }
}
