import XCTest
@testable import BFQCore

/// The quantize pipeline on the trained tiny UNet: full checkpoints, the time-feature cache, importance weights.
final class ModelQuantizerTests: XCTestCase {
    private let unetWeights = 545_472

    private func tiny() throws -> Checkpoint { try CheckpointFile.open(TestFiles.path("unet/tiny_unet.ldm.safetensors")) }

    private func quantize(_ checkpoint: Checkpoint, _ options: QuantizationOptions) throws -> (ModelQuantizer, QuantizationPlan, ContainerManifest) {
        let quantizer = try ModelQuantizer(checkpoint, options: options)
        let plan = try quantizer.makePlan()
        let path = try TestFiles.temporaryDirectory() + "/q.bfq"
        _ = try quantizer.write(plan: plan, to: OutputTarget(path: path, inputs: checkpoint.files, durable: false))
        return (quantizer, plan, try ContainerReader(try MappedFile(path: path)).manifest)
    }

    func testFullCheckpointKeepsOtherModelsRawAndOutsideTheAverage() throws {
        var full = try tiny()
        let donor = try XCTUnwrap(full.tensors.first { $0.name.hasSuffix("time_embed.0.weight") })
        for name in NamingFixtures.ldmOthers {
            var copy = donor
            copy.name = name
            full.tensors.append(copy)
        }
        var options = QuantizationOptions()
        options.bits = 3
        let (quantizer, _, manifest) = try quantize(full, options)
        XCTAssertEqual(manifest.tensors.count, 686 + NamingFixtures.ldmOthers.count)
        for name in NamingFixtures.ldmOthers {
            XCTAssertEqual(manifest.tensors.first { $0.name == name }?.encoding, .raw(dtype: .f16), name)
        }
        XCTAssertEqual(manifest.totals?.weights, unetWeights)
        let average = try XCTUnwrap(manifest.totals?.averageBits)
        XCTAssertEqual(average, quantizer.averageBits(of: try quantizer.makePlan()), accuracy: 1e-12)
        XCTAssertLessThanOrEqual(average, 3)
        XCTAssertGreaterThan(average, 2.99)

        options.only = UNetNaming.ldmPrefix
        let (_, _, unetOnly) = try quantize(full, options)
        XCTAssertEqual(unetOnly.tensors.count, 686)
    }

    func testCacheStoresTheFeaturesAndDropsTheTimeLayers() throws {
        let checkpoint = try tiny()
        var options = QuantizationOptions()
        options.plan = "uniform:2"
        options.cacheTimesteps = [1, 501, 981]
        let (quantizer, plan, manifest) = try quantize(checkpoint, options)
        let expected = try TimeFeatureCache.compute(from: checkpoint, timesteps: [1, 501, 981])
        let cache = try XCTUnwrap(manifest.timeFeatures)
        XCTAssertEqual(cache.timesteps, [1, 501, 981])
        XCTAssertEqual(cache.layers.map(\.name), expected.layers.map(\.name))
        XCTAssertEqual(cache.replacedWeights, expected.replacedWeights)
        XCTAssertTrue(Set(manifest.tensors.map(\.name)).isDisjoint(with: expected.replacedTensorNames))
        XCTAssertEqual(manifest.tensors.count, 686 - expected.replacedTensorNames.count)
        XCTAssertEqual(manifest.totals?.weights, unetWeights)
        XCTAssertEqual(try XCTUnwrap(manifest.totals?.averageBits), quantizer.averageBits(of: plan), accuracy: 1e-12)
        // The stored features are the f32 features rounded to f16.
        let path = try TestFiles.temporaryDirectory() + "/q.bfq"
        _ = try quantizer.write(plan: plan, to: OutputTarget(path: path, durable: false))
        let stored = try XCTUnwrap(try ContainerReader(try MappedFile(path: path)).timeFeatureValues())
        XCTAssertEqual(stored.map(\.bitPattern), expected.values.map { Float(Float16($0)).bitPattern })
    }

    /// An importance file of ones changes nothing; a large weight on one column lowers that column's error.
    func testImportanceWeightsTheErrorOfTheirColumns() throws {
        let checkpoint = try tiny()
        let layout = try QuantizationLayout(checkpoint)
        let layer = try XCTUnwrap(layout.tensors.first { $0.layer == "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k" })
        func importanceFile(_ values: [Float]) throws -> String {
            let data = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
            let header = #"{"\#(layer.layer!)":{"dtype":"F32","shape":[\#(values.count)],"data_offsets":[0,\#(data.count)]}}"#
            let path = try TestFiles.temporaryDirectory() + "/importance.safetensors"
            try Data(TestFiles.safetensors(header: header, data: data)).write(to: URL(fileURLWithPath: path))
            return path
        }
        var options = QuantizationOptions()
        options.plan = "uniform:2"
        // The nearest rounding's parameter search is what importance weighs (GPTQ weighs by H, which it measures).
        options.rounding = .nearest
        let (_, _, plain) = try quantize(checkpoint, options)
        options.importance = try importanceFile([Float](repeating: 1, count: layer.columns))
        let (_, _, ones) = try quantize(checkpoint, options)
        XCTAssertEqual(plain.tensors, ones.tensors)

        var heavy = [Float](repeating: 1, count: layer.columns)
        heavy[3] = 1000
        options.importance = try importanceFile(heavy)
        let weights = try LayerQuantizer.weights(of: layer, in: checkpoint)
        func columnError(_ importance: [Float]?) throws -> Double {
            let result = try LayerQuantizer.quantize(weights, tensor: layer, choice: .grid(2), importance: importance)
            var decoded = [Float](repeating: 0, count: weights.count)
            let dequantizer = try Dequantizer(rows: layer.rows, columns: layer.columns, levels: result.levels, values: result.values)
            let packed = try CodePacker.pack(result.codes, rows: layer.rows, columns: layer.columns, levels: result.levels)
            try packed.withUnsafeBytes { bytes in try decoded.withUnsafeMutableBytes { try dequantizer.decode(bytes, into: $0, as: .f32) } }
            return (0 ..< layer.rows).reduce(0.0) { total, row in
                let d = Double(weights[row * layer.columns + 3]) - Double(decoded[row * layer.columns + 3])
                return total + d * d
            }
        }
        XCTAssertLessThan(try columnError(heavy), try columnError(nil) * 0.5)
        let (_, _, weighted) = try quantize(checkpoint, options)
        XCTAssertNotEqual(weighted.tensors.first { $0.name.hasSuffix("attn2.to_k.weight") && $0.name.contains("input_blocks.4") },
                          plain.tensors.first { $0.name.hasSuffix("attn2.to_k.weight") && $0.name.contains("input_blocks.4") })
    }

    /// A weight with rows but no columns still gets one scale per row (spec 3.1) and the file verifies.
    func testZeroColumnWeightWritesAValidFile() throws {
        var checkpoint = try tiny()
        checkpoint.tensors.append(TensorEntry(name: "model.diffusion_model.input_blocks.1.0.skip_connection.weight", dtype: .f16,
                                              shape: [8, 0, 1, 1], bytes: 0 ..< 0))
        for plan in [nil, "uniform:2"] {
            var options = QuantizationOptions()
            options.plan = plan
            options.bits = plan == nil ? 3 : options.bits
            let quantizer = try ModelQuantizer(checkpoint, options: options)
            let path = try TestFiles.temporaryDirectory() + "/q.bfq"
            _ = try quantizer.write(plan: try quantizer.makePlan(), to: OutputTarget(path: path, durable: false))
            XCTAssertEqual(try ContainerVerification(path: path).tensorCount, 687)
            if plan != nil {
                let tensor = try XCTUnwrap(try ContainerReader(try MappedFile(path: path)).manifest.tensors.first { $0.shape == [8, 0, 1, 1] })
                XCTAssertEqual(tensor.levels, 5)
                XCTAssertEqual(tensor.sections["scales"]?.decodedSize, 16)
            }
        }
    }

    /// Integer weights are refused by name; a layer of no weights weighs nothing and the budget is still met.
    func testIntegerWeightsAndEmptyLayers() throws {
        var integer = try tiny()
        integer.tensors.append(TensorEntry(name: "model.diffusion_model.input_blocks.1.0.skip_connection.weight", dtype: .i32,
                                           shape: [8, 8, 1, 1], bytes: 0 ..< 256))
        XCTAssertThrowsError(try ModelQuantizer(integer, options: QuantizationOptions()).makePlan()) { error in
            XCTAssertEqual(error as? QuantizationError,
                           .notFloatingPoint(tensor: "model.diffusion_model.input_blocks.1.0.skip_connection.weight", dtype: .i32))
        }
        var empty = try tiny()
        empty.tensors.append(TensorEntry(name: "model.diffusion_model.input_blocks.1.0.skip_connection.weight", dtype: .f16,
                                         shape: [0, 8, 1, 1], bytes: 0 ..< 0))
        let quantizer = try ModelQuantizer(empty, options: QuantizationOptions())
        let average = quantizer.averageBits(of: try quantizer.makePlan())
        XCTAssertLessThanOrEqual(average, 1.99)
        XCTAssertGreaterThan(average, 1.98)
    }

    /// A UNet under `unet.` diffusers names matches its ldm copy tensor for tensor.
    func testComparisonMatchesPrefixedDiffusersNames() throws {
        var prefixed = try CheckpointFile.open(TestFiles.path("unet/tiny_unet.diffusers.safetensors"))
        for index in prefixed.tensors.indices { prefixed.tensors[index].name = "unet." + prefixed.tensors[index].name }
        let comparison = try CheckpointComparison(prefixed, try tiny(), matchingNames: true)
        XCTAssertEqual(comparison.onlyInFirst, [])
        XCTAssertEqual(comparison.onlyInSecond, [])
        XCTAssertTrue(comparison.identical)
    }
}
