/// How a quantized tensor's codes become weights (spec/bfq.md section 3.2). Scales, offsets and palettes are given
/// as f32; values stored as f16 widen to f32 exactly first.
public enum QuantizedValues: Sendable, Equatable {
    /// The group sizes a grid's per-group scales may use.
    public static let groupSizes = 32 ... 256

    /// w = s x q + o in f32 (product, then sum, each rounded to nearest even), q = c - floor(L / 2): the balanced grid
    /// for L = 2^b + 1, the plain grid for L = 2^b. `scales` holds one scale per row when `groupSize` is nil, else
    /// ceil(columns / groupSize) per row (row-major); `offsets` one per row, or nil for o = 0.
    case grid(scales: [Float], groupSize: Int? = nil, offsets: [Float]? = nil)
    /// w = palette[c]: L values per row when `perRow`, else one table of L values for every row.
    case palette([Float], perRow: Bool)

    /// Checks that the parameters fit a tensor of `rows` x `columns` codes of `levels` levels.
    func validate(rows: Int, columns: Int, levels: Int) throws {
        switch self {
        case let .grid(scales, groupSize, offsets):
            let b = (levels - 1).trailingZeroBitCount
            guard levels & (levels - 1) == 0 || (levels - 1) & (levels - 2) == 0 && (1 ... 8).contains(b) else {
                throw PackingError.notAGrid(levels: levels)
            }
            var perRow = 1
            if let groupSize {
                guard Self.groupSizes.contains(groupSize) else { throw PackingError.groupSizeOutOfRange(groupSize) }
                perRow = (columns + groupSize - 1) / groupSize
            }
            guard scales.count == rows * perRow else {
                throw PackingError.scaleCountMismatch(expected: rows * perRow, found: scales.count)
            }
            if let offsets, offsets.count != rows {
                throw PackingError.offsetCountMismatch(expected: rows, found: offsets.count)
            }
        case let .palette(values, perRow):
            let (expected, overflow) = perRow ? rows.multipliedReportingOverflow(by: levels) : (levels, false)
            guard !overflow else { throw PackingError.shapeInvalid(rows: rows, columns: columns) }
            guard values.count == expected else {
                throw PackingError.paletteCountMismatch(expected: expected, found: values.count)
            }
        }
    }
}
