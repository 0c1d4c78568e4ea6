import Foundation
import XCTest
@testable import BFQCore
import BFQTestSupport

/// TimeFeatureCache against real diffusers (testdata/unet/time_features.safetensors, tools/testdata/time_features.py)
/// on the tiny trained UNet in both namings and formats, the SD-v1.5 counts of BitsFusion App. C, and bad input.
final class TimeFeatureCacheTests: XCTestCase {
    private static let files = ["tiny_unet.diffusers.safetensors", "tiny_unet.diffusers.ckpt",
                                "tiny_unet.ldm.safetensors", "tiny_unet.ldm.ckpt"]
    /// Max abs error allowed, relative to the largest reference value of the tensor compared.
    private static let tolerance: Float = 1e-6

    private struct Reference {
        let checkpoint: Checkpoint
        /// [diffusers module, ldm module, width] in diffusers' execution order, recorded by forward hooks.
        let layers: [(diffusers: String, ldm: String, width: Int)]

        init() throws {
            checkpoint = try CheckpointFile.open(TestFiles.path("unet/time_features.safetensors"))
            let rows = try XCTUnwrap(JSONParser.parse(try XCTUnwrap(checkpoint.metadata["layers"])).arrayValue)
            layers = try rows.map { row in
                let row = try XCTUnwrap(row.arrayValue)
                return (try XCTUnwrap(row[0].stringValue), try XCTUnwrap(row[1].stringValue),
                        Int(try XCTUnwrap(row[2].intValue)))
            }
        }

        func floats(_ name: String) throws -> [Float] {
            let entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, name)
            XCTAssertEqual(entry.dtype, .f32, name)
            return try checkpoint.withContiguousBytes(of: entry) { Array($0.bindMemory(to: Float.self)) }
        }

        var timesteps: [Int] {
            get throws {
                let entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == "timesteps" })
                return try checkpoint.withContiguousBytes(of: entry) { $0.bindMemory(to: Int64.self).map(Int.init) }
            }
        }
    }

    /// max |a - b| / max |b|, the figure the tolerance bounds.
    private func relativeError(_ actual: [Float], _ expected: [Float], _ label: String) -> Float {
        XCTAssertEqual(actual.count, expected.count, label)
        let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
        return error / max(expected.map(abs).max() ?? 0, .leastNormalMagnitude)
    }

    private func open(_ name: String) throws -> Checkpoint { try CheckpointFile.open(TestFiles.path("unet/" + name)) }

    func testSinusoidalEmbeddingMatchesDiffusers() throws {
        let reference = try Reference()
        let expected = try reference.floats("t_emb")
        let actual = TimeFeatureCache.sinusoids(try reference.timesteps.map(Float.init), width: 8)
        let error = relativeError(actual, expected, "t_emb")
        XCTAssertLessThanOrEqual(error, 1e-6, "t_emb")
        print("t_emb: max abs error / max abs value = \(error)")
    }

    func testFeaturesMatchDiffusersInEveryFile() throws {
        let reference = try Reference()
        let timesteps = try reference.timesteps
        XCTAssertEqual(timesteps, [0, 1, 500, 981, 999])
        let widths = reference.layers.map(\.width)
        let total = widths.reduce(0, +)
        let embedding = try reference.floats("temb").count / timesteps.count
        for file in Self.files {
            let cache = try TimeFeatureCache.compute(from: try open(file), timesteps: timesteps)
            let ldm = file.contains(".ldm.")
            let expectedNames = reference.layers.map { ldm ? $0.ldm : $0.diffusers }
            XCTAssertEqual(cache.layers.map(\.name), expectedNames, file)
            XCTAssertEqual(cache.layers.map(\.width), widths, file)
            XCTAssertEqual(cache.timesteps, timesteps, file)
            XCTAssertEqual(cache.values.count, timesteps.count * total, file)
            var worst: Float = 0
            var offset = 0
            for (index, layer) in reference.layers.enumerated() {
                let expected = try reference.floats("features." + layer.diffusers)
                let actual = (0 ..< timesteps.count).flatMap { t in
                    cache.values[t * total + offset ..< t * total + offset + layer.width]
                }
                let error = relativeError(actual, expected, "\(file) layer \(index)")
                XCTAssertLessThanOrEqual(error, Self.tolerance, "\(file) \(layer.diffusers)")
                worst = max(worst, error)
                offset += layer.width
            }
            print("\(file): worst layer max abs error / max abs value = \(worst)")

            let mlp = ldm ? ["model.diffusion_model.time_embed.0", "model.diffusion_model.time_embed.2"]
                          : ["time_embedding.linear_1", "time_embedding.linear_2"]
            XCTAssertEqual(cache.replacedTensorNames, (mlp + expectedNames).flatMap { [$0 + ".weight", $0 + ".bias"] },
                           file)
            // linear_1 is [temb, 8] (8 = conv_in's channels), linear_2 [temb, temb], each projection [width, temb].
            XCTAssertEqual(cache.replacedWeights, embedding * 8 + embedding * embedding + total * embedding, file)
        }
    }

    /// A full SD checkpoint: the UNet under model.diffusion_model. next to VAE, text encoder, EMA and schedule tensors.
    func testFullCheckpointGivesTheSameFeatures() throws {
        let unet = try open("tiny_unet.ldm.safetensors")
        var full = unet
        let donor = try XCTUnwrap(unet.tensors.first { $0.name.hasSuffix("time_embed.0.weight") })
        for name in NamingFixtures.ldmOthers { full.tensors.append(renamed(donor, name)) }
        let alone = try TimeFeatureCache.compute(from: unet, timesteps: [1, 981])
        let within = try TimeFeatureCache.compute(from: full, timesteps: [1, 981])
        XCTAssertEqual(within.values.map(\.bitPattern), alone.values.map(\.bitPattern))
        XCTAssertEqual(within.layers.map(\.name), alone.layers.map(\.name))
    }

    /// BitsFusion App. C on SD-v1.5: 22 ResNets, 20,160 values per timestep, about 27.9M weights replaced; SD 2.x
    /// has the same time path. Names and shapes only (no weights are read).
    func testSD15Counts() throws {
        for (file, prefix) in [("sd15_unet_shapes.ldm.json", "model.diffusion_model."),
                               ("sd2_unet_shapes.diffusers.json", "")] {
            let (names, shapes) = try NamingFixtures.shapes(file)
            let modules = try TimeModules(zip(names, shapes).map { TensorEntry(name: $0, dtype: .f16, shape: $1, bytes: 0 ..< 0) })
            XCTAssertEqual(modules.sinusoidWidth, 320, file)
            XCTAssertEqual(modules.projections.count, 22, file)
            XCTAssertEqual(modules.projections.map(\.width).reduce(0, +), 20_160, file)
            XCTAssertEqual(modules.replacedWeights, 320 * 1280 + 1280 * 1280 + 20_160 * 1280, file)
            XCTAssertEqual(modules.replacedTensorNames.count, 2 * 24, file)
            XCTAssertEqual(modules.projections.first?.module,
                           prefix + (prefix.isEmpty ? "down_blocks.0.resnets.0.time_emb_proj" : "input_blocks.1.0.emb_layers.1"))
            XCTAssertEqual(modules.projections.last?.module,
                           prefix + (prefix.isEmpty ? "up_blocks.3.resnets.2.time_emb_proj" : "output_blocks.11.0.emb_layers.1"))
        }
    }

    /// Integer weights and inputs make every product and sum exact in f64 whatever the order, so the eight-lane sums,
    /// the tail (13 columns), the bias and the [input][row] layout must give exactly the plain sums.
    func testLinearLayerIndexing() {
        let (rows, columns, count) = (5, 13, 3)
        let weight = (0 ..< rows * columns).map { Double(($0 * 7) % 17 - 8) }
        let bias = (0 ..< rows).map { Double($0 * 3 - 4) }
        let input = (0 ..< count * columns).map { Float(($0 * 5) % 11 - 5) }
        let output = LinearWeights(weight: weight, bias: bias, rows: rows, columns: columns).apply(to: input, count: count)
        for t in 0 ..< count {
            for row in 0 ..< rows {
                let sum = (0 ..< columns).reduce(bias[row]) { $0 + weight[row * columns + $1] * Double(input[t * columns + $1]) }
                XCTAssertEqual(output[t * rows + row], Float(sum), "input \(t) row \(row)")
            }
        }
    }

    // MARK: - Bad input

    private func renamed(_ entry: TensorEntry, _ name: String) -> TensorEntry {
        var copy = entry
        copy.name = name
        return copy
    }

    private func assertRefused(_ checkpoint: Checkpoint, _ expected: TimeFeatureCacheError,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TimeFeatureCache.compute(from: checkpoint, timesteps: [1]), file: file, line: line) {
            XCTAssertEqual($0 as? TimeFeatureCacheError, expected, file: file, line: line)
        }
    }

    private func editing(_ name: String, _ file: String, _ edit: (inout [TensorEntry], Int) -> Void) throws -> Checkpoint {
        var checkpoint = try open(file)
        let index = try XCTUnwrap(checkpoint.tensors.firstIndex { $0.name == name }, name)
        edit(&checkpoint.tensors, index)
        return checkpoint
    }

    func testMissingTensorsAreNamed() throws {
        for (file, name) in [("tiny_unet.diffusers.safetensors", "mid_block.resnets.1.time_emb_proj.bias"),
                             ("tiny_unet.diffusers.ckpt", "time_embedding.linear_2.weight"),
                             ("tiny_unet.ldm.safetensors", "model.diffusion_model.output_blocks.4.0.emb_layers.1.weight"),
                             ("tiny_unet.ldm.ckpt", "model.diffusion_model.time_embed.0.bias"),
                             ("tiny_unet.ldm.ckpt", "model.diffusion_model.input_blocks.0.0.weight")] {
            assertRefused(try editing(name, file) { $0.remove(at: $1) }, .missingTensor(name))
        }
    }

    func testWrongShapesAndTypes() throws {
        let projection = "down_blocks.1.resnets.0.time_emb_proj.weight"
        assertRefused(try editing(projection, "tiny_unet.diffusers.safetensors") { $0[$1].shape = [16, 31] },
                      .wrongShape(tensor: projection, expected: "[out, 32]", found: [16, 31]))
        assertRefused(try editing(projection, "tiny_unet.diffusers.safetensors") { $0[$1].shape = [16, 32, 1] },
                      .wrongShape(tensor: projection, expected: "[out, in]", found: [16, 32, 1]))
        let bias = "model.diffusion_model.middle_block.2.emb_layers.1.bias"
        assertRefused(try editing(bias, "tiny_unet.ldm.safetensors") { $0[$1].shape = [31] },
                      .wrongShape(tensor: bias, expected: "[32]", found: [31]))
        let first = "model.diffusion_model.time_embed.0.weight"
        assertRefused(try editing(first, "tiny_unet.ldm.ckpt") { $0[$1].shape = [32, 4] },
                      .wrongShape(tensor: first, expected: "[out, 8]", found: [32, 4]))
        assertRefused(try editing(first, "tiny_unet.ldm.ckpt") { $0[$1].dtype = .i16 },
                      .notFloatingPoint(tensor: first, dtype: .i16))
    }

    func testNotAUNet() throws {
        assertRefused(try CheckpointFile.open(TestFiles.path("quantizer/cases.safetensors")), .notUNet)
        var doubled = try open("tiny_unet.ldm.safetensors")
        doubled.tensors += doubled.tensors.map { renamed($0, String($0.name.dropFirst(UNetNaming.ldmPrefix.count))) }
        assertRefused(doubled, .severalUNets(prefixes: ["model.diffusion_model.", ""]))
    }

    func testBadTimestepsAndNonFiniteWeights() throws {
        let checkpoint = try open("tiny_unet.diffusers.safetensors")
        XCTAssertThrowsError(try TimeFeatureCache.compute(from: checkpoint, timesteps: [5, 1])) {
            XCTAssertEqual($0 as? TimeFeatureCacheError, .timestepsNotIncreasing(index: 1))
        }
        // A NaN in one projection's bias (f16 0x7E00) poisons that layer only.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: TestFiles.path("unet/tiny_unet.diffusers.safetensors"))))
        let name = "up_blocks.2.resnets.1.time_emb_proj.bias"
        let entry = try XCTUnwrap(checkpoint.tensors.first { $0.name == name })
        XCTAssertEqual(entry.dtype, .f16)
        bytes[entry.storage.lowerBound + 2] = 0x00
        bytes[entry.storage.lowerBound + 3] = 0x7E
        let damaged = try CheckpointFile.open(try TestFiles.write(bytes))
        XCTAssertThrowsError(try TimeFeatureCache.compute(from: damaged, timesteps: [7, 9])) {
            XCTAssertEqual($0 as? TimeFeatureCacheError,
                           .nonFiniteFeature(layer: "up_blocks.2.resnets.1.time_emb_proj", timestep: 7))
        }
    }
}
