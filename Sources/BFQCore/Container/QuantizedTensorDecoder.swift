/// Decodes one grid or palette tensor of a container through the lookup-table `Dequantizer`.
struct QuantizedTensorDecoder {
    let reader: ContainerReader
    let tensor: ContainerTensor

    /// Calls `body` with the tensor's weights as `dtype` (f32, f16 or bf16), row-major.
    func withDecoded<R>(as dtype: DType, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let decodeType: DType = dtype == .f16 ? .f16 : .f32
        let count = tensor.elementCount
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: count * decodeType.byteSize, alignment: 64)
        defer { output.deallocate() }
        try decode(into: output, as: decodeType)
        guard dtype == .bf16 else { return try body(UnsafeRawBufferPointer(output)) }
        let converted = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 2, alignment: 64)
        defer { converted.deallocate() }
        ElementConverter.convert(output.baseAddress!, .f32, to: converted.baseAddress!, .bf16, count: count)
        return try body(UnsafeRawBufferPointer(converted))
    }

    /// Decodes the weights as `dtype` (f32 or f16) into `output`, which holds exactly that many bytes.
    func decode(into output: UnsafeMutableRawBufferPointer, as dtype: DType) throws {
        let dequantizer = try makeDequantizer()
        try reader.withSection(tensor.sections["codes"]!.index) { packed in
            do {
                try dequantizer.decode(packed, into: output, as: dtype)
            } catch let error as PackingError {
                throw ContainerError.codeInvalid(path: reader.file.path, tensor: tensor.name, rule: "\(error)")
            }
        }
    }

    private func makeDequantizer() throws -> Dequantizer {
        let rows = tensor.shape[0]
        let columns = rows == 0 ? 0 : tensor.elementCount / rows
        let values: QuantizedValues
        switch tensor.encoding {
        case .raw:
            preconditionFailure("\(tensor.name) is raw")
        case let .grid(_, _, scaleType, groupSize, offsetType, _):
            let scales = try floats("scales", scaleType)
            let offsets = try offsetType.map { try floats("offsets", $0) }
            values = .grid(scales: scales, groupSize: groupSize, offsets: offsets)
        case let .palette(_, perRow, _):
            values = .palette(try floats("palette", .f16), perRow: perRow)
        }
        do {
            return try Dequantizer(rows: rows, columns: columns, levels: tensor.levels!, values: values,
                                   packing: tensor.packing!)
        } catch let error as PackingError {
            throw ContainerError.encodingInvalid(path: reader.file.path, tensor: tensor.name, rule: "\(error)")
        }
    }

    /// The tensor's `role` section of f16 or f32 values, widened to f32.
    private func floats(_ role: String, _ type: DType) throws -> [Float] {
        try reader.floats(inSection: tensor.sections[role]!.index, of: type)
    }
}
