import CBFQShims

/// The distortion each candidate encoding would give a layer, without producing its codes: per row the C kernel
/// (CBFQShims Measure.c) sorts the weights once, sums them over the sorted order and answers each grid pass by
/// boundary lookups. Each distortion equals `LayerQuantizer.distortion(of:)` of `LayerQuantizer.quantize` (grids
/// with the default starts, f16 scales, one scale per row; palettes started from that grid result), and raw the f16
/// rounding error, up to the order of f64 additions.
enum CandidateMeasurement {
    /// Distortions of `candidates` (grids without group scales, palettes, raw) for `rows` x `columns` weights: the
    /// squared error weighted by `importance` (one non-negative weight per column) when given, else the plain one,
    /// each summed over rows in row order; and the signal sum w^2 (unweighted). Rows run on `Parallel`'s threads
    /// unless `parallel` is false; the result is the same for any thread count.
    /// `startFactors` are the grids' abs-max starts (nil: the quantizer's defaults; [] the RMS start alone) and
    /// `rounds` gives a grid of b bits its most least-squares rounds per start (nil: the quantizer's 10).
    static func measure(_ weights: [Float], rows: Int, columns: Int, importance: [Float]?, candidates: [LayerChoice],
                        startFactors: [Float]? = nil, rounds: ((Int) -> Int)? = nil,
                        parallel: Bool = true) throws -> (distortions: [Double], signal: Double) {
        try weights.withUnsafeBufferPointer {
            try measure($0, rows: rows, columns: columns, importance: importance, candidates: candidates,
                        startFactors: startFactors, rounds: rounds, parallel: parallel)
        }
    }

    static func measure(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, importance: [Float]?,
                        candidates: [LayerChoice], startFactors: [Float]? = nil, rounds: ((Int) -> Int)? = nil,
                        parallel: Bool = true) throws -> (distortions: [Double], signal: Double) {
        try RowQuantization.check(weights, rows: rows, columns: columns, importance: importance)
        let grids = try candidates.map { choice -> GridQuantizer? in
            precondition(choice.groupSize == nil, "a grid with group scales is measured by quantizing it")
            return choice.kind == .raw ? nil : try GridQuantizer(bits: choice.bits, maxIterations: rounds?(choice.bits) ?? 10,
                                                                 startFactors: startFactors)
        }
        let palettes = try candidates.map { $0.kind == .palette ? try PaletteQuantizer(bits: $0.bits) : nil }
        let count = candidates.count
        var perRow = [Double](repeating: 0, count: rows * count)
        var signals = [Double](repeating: 0, count: rows)
        // Every start factor in one array, for the parameters to point into while the rows run.
        let factors = grids.flatMap { $0?.startFactors ?? [] }
        factors.withUnsafeBufferPointer { factors in
            var next = factors.baseAddress
            let params = zip(grids, palettes).map { grid, palette in
                defer { next = next.map { $0 + (grid?.startFactors.count ?? 0) } }
                return parameters(grid: grid, palette: palette, factors: next, columns: columns)
            }
            guard rows > 0, columns > 0 else { return }
            let workers = parallel ? Swift.min(Parallel.threadCount, rows) : 1
            let scratchBytes = bfq_measure_scratch_size(columns, count)
            importance.withUnsafeBufferPointerIfPresent { h in
                perRow.withUnsafeMutableBufferPointer { perRow in
                    signals.withUnsafeMutableBufferPointer { signals in
                        Parallel.forEach(workers) { worker in
                            let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
                            defer { scratch.deallocate() }
                            for row in stride(from: worker, to: rows, by: workers) {
                                bfq_measure_row(params, count, weights.baseAddress! + row * columns, h?.baseAddress,
                                                columns, scratch, perRow.baseAddress! + row * count,
                                                signals.baseAddress! + row)
                            }
                        }
                    }
                }
            }
        }
        let distortions = (0 ..< count).map { c in (0 ..< rows).reduce(0.0) { $0 + perRow[$1 * count + c] } }
        return (distortions, signals.reduce(0, +))
    }

    /// The kernel's view of one candidate: raw without a grid; a grid's search (its start factors at `factors`); a
    /// palette's search and table.
    private static func parameters(grid: GridQuantizer?, palette: PaletteQuantizer?, factors: UnsafePointer<Float>?,
                                   columns: Int) -> bfq_candidate {
        guard let grid else { return bfq_candidate(kind: BFQ_CANDIDATE_RAW, grid: bfq_grid_params(), palette: bfq_palette_params()) }
        let search = bfq_grid_params(half: Int32(grid.half), qmax: Int32(grid.half), max_iterations: UInt32(grid.maxIterations),
                                     factors: factors, factor_count: grid.startFactors.count,
                                     rms_clip: GridQuantizer.rmsClip[grid.bits - 1], group_size: columns, f16_scales: 1,
                                     vectorized: 1)
        let table = bfq_palette_params(levels: UInt32(palette?.levels ?? 0), max_iterations: UInt32(palette?.maxIterations ?? 0),
                                       vectorized: 1)
        return bfq_candidate(kind: palette == nil ? BFQ_CANDIDATE_GRID : BFQ_CANDIDATE_PALETTE, grid: search, palette: table)
    }
}
