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
            if let replacement {
                return try writeRaw(tensor, values: replacement, as: dtype, to: writer)
            }
            let bytes = try rawBytes(of: entry, as: dtype, in: checkpoint)
            if dtype == .f16, entry.dtype != .f16, let bad = try firstInfinity(bytes, from: entry, in: checkpoint) {
                throw QuantizationError.keptBeyondHalfRange(tensor: tensor.outputName, index: bad)
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

    /// A kept tensor stored from f32 `values` as `dtype`; a value beyond f16's range in an f16 tensor is an error.
    private static func writeRaw(_ tensor: QuantizationLayout.Tensor, values: [Float], as dtype: DType,
                                 to writer: ContainerWriter) throws -> (ContainerTensor, QuantizationReport.Row) {
        if dtype == .f16, let bad = values.firstIndex(where: { !($0.magnitude <= 65504) }) {
            throw QuantizationError.keptBeyondHalfRange(tensor: tensor.outputName, index: bad)
        }
        var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
        if !values.isEmpty {
            values.withUnsafeBytes { source in
                bytes.withUnsafeMutableBytes { target in
                    ElementConverter.convert(source.baseAddress!, .f32, to: target.baseAddress!, dtype, count: values.count)
                }
            }
        }
        let data = try bytes.withUnsafeBytes { try writer.addSection($0) }
        let stored = ContainerTensor(name: tensor.outputName, shape: tensor.entry.shape, sourceType: tensor.entry.dtype,
                                     encoding: .raw(dtype: dtype), sections: ["data": data])
        return (stored, QuantizationReport.Row(name: tensor.outputName, parameters: tensor.entry.elementCount, choice: nil,
                                               dtype: dtype, sqnr: nil, storedBytes: data.storedSize))
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
        var out = [UInt8](repeating: 0, count: entry.elementCount * dtype.byteSize)
        guard entry.elementCount > 0 else { return out }
        try checkpoint.withContiguousBytes(of: entry) { bytes in
            out.withUnsafeMutableBytes { target in
                ElementConverter.convert(bytes.baseAddress!, entry.dtype, to: target.baseAddress!, dtype, count: entry.elementCount)
            }
        }
        checkpoint.file.release(entry.storage)
        return out
    }
}
