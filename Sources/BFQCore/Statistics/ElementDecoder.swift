import CBFQShims

/// Widens elements of any supported type to `Double` (booleans to 0 and 1).
enum ElementDecoder {
    static func decode(_ start: UnsafeRawPointer, dtype: DType, count: Int, into out: UnsafeMutablePointer<Double>) {
        func widen<T>(_: T.Type, _ convert: (T) -> Double) {
            let source = start.assumingMemoryBound(to: T.self)
            for i in 0 ..< count { out[i] = convert(source[i]) }
        }
        switch dtype {
        case .f64: out.update(from: start.assumingMemoryBound(to: Double.self), count: count)
        case .f32: widen(Float.self) { Double($0) }
        case .f16, .bf16, .f8e4m3, .f8e5m2:
            withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { floats in
                ElementConverter.convert(start, dtype, to: UnsafeMutableRawPointer(floats.baseAddress!), .f32, count: count)
                for i in 0 ..< count { out[i] = Double(floats[i]) }
            }
        case .i64: widen(Int64.self) { Double($0) }
        case .i32: widen(Int32.self) { Double($0) }
        case .i16: widen(Int16.self) { Double($0) }
        case .i8: widen(Int8.self) { Double($0) }
        case .u8: widen(UInt8.self) { Double($0) }
        case .bool: widen(UInt8.self) { $0 != 0 ? 1 : 0 }
        }
    }
}
