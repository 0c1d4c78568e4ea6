/// The integer timesteps a sampler visits, for the time-feature cache (spec/bfq.md section 3.3).
///
/// Spacings are diffusers' `timestep_spacing` options as `DDIMScheduler.set_timesteps` computes them, with
/// SD-v1.5's scheduler config (1000 training steps, `steps_offset` 1, which only `leading` uses):
/// - leading: (i x (1000 / N)) + 1 for i in 0..<N, integer division;
/// - trailing: round(1000 + i x d) - 1 over numpy's `arange(1000, 0, -1000 / N)` (d = (1000 - 1000 / N) - 1000,
///   ceil(1000 / (1000 / N)) elements: N + 1 for some N, such as 61, whose extra timestep is -1);
/// - linspace: round(i x 999 / (N - 1)) for i in 0..<N, the last exactly 999 (0 when N = 1);
/// rounding half to even, as numpy. `tools/testdata/time_features.py` records the real schedulers' lists.
public enum TimestepSchedule {
    /// Training timesteps of SD 1.x/2.x: valid timesteps are 0..<1000.
    public static let trainingSteps = 1000

    public enum Spacing: String, Sendable, CaseIterable {
        case leading, trailing, linspace
    }

    /// The timesteps `text` names, sorted strictly increasing:
    /// - `"50"`: SD-v1.5's default scheduler (PNDM or DDIM, leading spacing) for that many steps;
    /// - `"ddim:N"` (the same as `"leading:N"`), `"leading:N"`, `"trailing:N"`, `"linspace:N"`, N in 1...1000;
    /// - an explicit comma list, `"1,21,981"`; one timestep is written with a trailing comma, `"500,"`.
    /// - Throws: `TimeFeatureCacheError` for bad syntax, step counts outside 1...1000, timesteps outside 0...999
    ///   (`leading:1000` reaches 1000, `trailing:61` reaches -1) and repeated timesteps.
    public static func parse(_ text: String) throws -> [Int] {
        let trimmed = text.trimmingWhitespace
        if trimmed.contains(",") { return try list(trimmed, source: text) }
        let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
        guard (1 ... 2).contains(parts.count), let steps = Int(parts[parts.count - 1].trimmingWhitespace) else {
            throw TimeFeatureCacheError.scheduleSyntax(text)
        }
        var spacing = Spacing.leading
        if parts.count == 2 {
            let name = parts[0].trimmingWhitespace.lowercased()
            guard let named = name == "ddim" ? .leading : Spacing(rawValue: name) else {
                throw TimeFeatureCacheError.unknownSpacing(String(parts[0]))
            }
            spacing = named
        }
        let timesteps = try self.timesteps(spacing, steps: steps)
        try checkRange(timesteps, source: text)
        return timesteps.sorted()
    }

    /// The timesteps DDIMScheduler visits for `steps` steps with `spacing`, in its (descending) order, unchecked.
    /// - Throws: `TimeFeatureCacheError.stepCountOutOfRange` unless `steps` is in 1...1000.
    public static func timesteps(_ spacing: Spacing, steps: Int) throws -> [Int] {
        guard (1 ... trainingSteps).contains(steps) else { throw TimeFeatureCacheError.stepCountOutOfRange(steps) }
        let total = Double(trainingSteps)
        switch spacing {
        case .leading:
            return (0 ..< steps).reversed().map { $0 * (trainingSteps / steps) + 1 }
        case .trailing:
            let step = -(total / Double(steps))
            let delta = (total + step) - total
            let count = Int(((0 - total) / step).rounded(.up))
            return (0 ..< count).map { Int((total + Double($0) * delta).rounded(.toNearestOrEven)) - 1 }
        case .linspace:
            guard steps > 1 else { return [0] }
            let step = (total - 1) / Double(steps - 1)
            return (0 ..< steps).reversed().map { $0 == steps - 1 ? trainingSteps - 1
                                                                  : Int((Double($0) * step).rounded(.toNearestOrEven)) }
        }
    }

    /// Checks what the cache requires: at least one timestep, strictly increasing, each in 0...999.
    public static func validate(_ timesteps: [Int]) throws {
        guard !timesteps.isEmpty else { throw TimeFeatureCacheError.timestepsNotIncreasing(index: 0) }
        if let index = timesteps.indices.dropFirst().first(where: { timesteps[$0] <= timesteps[$0 - 1] }) {
            throw TimeFeatureCacheError.timestepsNotIncreasing(index: index)
        }
        try checkRange(timesteps, source: timesteps.map(String.init).joined(separator: ","))
    }

    private static func list(_ text: String, source: String) throws -> [Int] {
        var elements = text.split(separator: ",", omittingEmptySubsequences: false).map(\.trimmingWhitespace)
        if elements.count > 1, elements.last == "" { elements.removeLast() }
        let timesteps = try elements.map { element -> Int in
            guard let value = Int(element) else { throw TimeFeatureCacheError.notATimestep(element) }
            return value
        }
        try checkRange(timesteps, source: source)
        let sorted = timesteps.sorted()
        if let index = sorted.indices.dropFirst().first(where: { sorted[$0] == sorted[$0 - 1] }) {
            throw TimeFeatureCacheError.duplicateTimestep(sorted[index])
        }
        return sorted
    }

    private static func checkRange(_ timesteps: [Int], source: String) throws {
        if let bad = timesteps.first(where: { !(0 ..< trainingSteps).contains($0) }) {
            throw TimeFeatureCacheError.timestepOutOfRange(bad, source: source)
        }
    }
}

private extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
