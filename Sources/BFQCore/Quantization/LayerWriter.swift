import CBFQShims

/// Writes one tensor of a quantized model into a container: quantized as its choice says, or raw.
enum LayerWriter {
    /// `calibrated`: the layer as `CalibratedQuantization` quantized it; `replacement`: the f32 values of a kept tensor
    /// (a corrected bias) instead of the file's.
    static func write(_ tensor: QuantizationLayout.Tensor, choice: LayerChoice?, importance: [Float]?, from checkpoint: Checkpoint,
                      keptType: TargetDType, to writer: ContainerWriter, calibrated: CalibratedQuantization.Layer? = nil,
                      replacement: [Float]? = nil) throws -> (ContainerTensor, QuantizationReport.Row) {
        let entry = tensor.entry
        guard let choice, choice.kind != .raw else {
            let dtype = choice == nil ? keptType.resolve(entry.dtype) : (entry.dtype.isFloatingPoint ? .f16 : entry.dtype)
            let bytes: [UInt8]
            if let replacement {
                if dtype == .f16, let bad = replacement.firstIndex(where: { !($0.magnitude <= 65504) }) {
                    throw QuantizationError.keptBeyondHalfRange(tensor: tensor.outputName, index: bad)
                }
                bytes = replacement.withUnsafeBytes { converted($0, from: .f32, count: replacement.count, to: dtype) }
            } else {
                bytes = try rawBytes(of: entry, as: dtype, in: checkpoint)
                if dtype == .f16, entry.dtype != .f16, let bad = try firstInfinity(bytes, from: entry, in: checkpoint) {
                    throw QuantizationError.keptBeyondHalfRange(tensor: tensor.outputName, index: bad)
                }
            }
            let data = try bytes.withUnsafeBytes { try writer.addSection($0) }
            let stored = ContainerTensor(name: tensor.outputName, shape: entry.shape, sourceType: entry.dtype,
                                         encoding: .raw(dtype: dtype), sections: ["data": data])
            return (stored, QuantizationReport.Row(name: tensor.outputName, parameters: entry.elementCount, choice: choice,
                                                   dtype: dtype, sqnr: nil, storedBytes: data.storedSize))
        }
        let layer: (values: QuantizedValues, levels: Int, sqnr: Double)
        let (packing, codes): (CodePacking, ContainerTensor.SectionReference)
        if let calibrated {
            layer = (calibrated.values, calibrated.levels, calibrated.sqnr)
            (packing, codes) = try writer.addCodes(calibrated.codes)
        } else {
            let weights = try LayerQuantizer.weights(of: tensor, in: checkpoint)
            let result = try LayerQuantizer.quantize(weights, tensor: tensor, choice: choice, importance: importance)
            layer = (result.values, result.levels, result.sqnr)
            (packing, codes) = try writer.addCodes(result.codes, rows: tensor.rows, columns: tensor.columns, levels: result.levels)
        }
        var sections = ["codes": codes]
        let encoding: ContainerTensor.Encoding
        switch layer.values {
        case let .grid(scales, groupSize, _):
            sections["scales"] = try LayerQuantizer.halves(scales).withUnsafeBytes { try writer.addSection($0) }
            encoding = .grid(levels: layer.levels, balanced: true, scaleType: .f16, groupSize: groupSize, offsetType: nil,
                             packing: packing)
        case let .palette(values, perRow):
            sections["palette"] = try LayerQuantizer.halves(values).withUnsafeBytes { try writer.addSection($0) }
            encoding = .palette(levels: layer.levels, perRow: perRow, packing: packing)
        }
        let sqnr = layer.sqnr
        let stored = ContainerTensor(name: tensor.outputName, shape: entry.shape, sourceType: entry.dtype, encoding: encoding,
                                     sections: sections, sqnrDB: sqnr.isFinite ? sqnr : nil)
        return (stored, QuantizationReport.Row(name: tensor.outputName, parameters: entry.elementCount, choice: choice,
                                               dtype: nil, sqnr: sqnr, storedBytes: stored.storedBytes,
                                               codeBytes: codes.decodedSize, codeStoredBytes: codes.storedSize,
                                               rounding: calibrated?.outcome))
    }

    /// The first element that became infinite in f16 though finite in the source (a magnitude beyond 65504), if any.
    private static func firstInfinity(_ halves: [UInt8], from entry: TensorEntry, in checkpoint: Checkpoint) throws -> Int? {
        let source = try rawBytes(of: entry, as: .f32, in: checkpoint)
        return source.withUnsafeBytes { original in
            halves.withUnsafeBytes { converted in
                let floats = original.bindMemory(to: Float.self), bits = converted.bindMemory(to: UInt16.self)
                return bits.indices.first { bits[$0] & 0x7FFF == 0x7C00 && floats[$0].isFinite }
            }
        }
    }

    /// The tensor's elements converted to `dtype`.
    private static func rawBytes(of entry: TensorEntry, as dtype: DType, in checkpoint: Checkpoint) throws -> [UInt8] {
        guard entry.elementCount > 0 else { return [] }
        let out = try checkpoint.withContiguousBytes(of: entry) { converted($0, from: entry.dtype, count: entry.elementCount, to: dtype) }
        checkpoint.release(entry)
        return out
    }

    /// `count` elements of `from` converted to `dtype`.
    private static func converted(_ source: UnsafeRawBufferPointer, from: DType, count: Int, to dtype: DType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * dtype.byteSize)
        guard count > 0 else { return out }
        out.withUnsafeMutableBytes { ElementConverter.convert(source.baseAddress!, from, to: $0.baseAddress!, dtype, count: count) }
        return out
    }
}
