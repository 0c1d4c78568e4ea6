import Foundation

/// A shard size as transformers, diffusers and huggingface_hub take it: a byte count, or a number with a decimal
/// unit (KB, MB, GB, TB: powers of 1000) or a binary one (KiB, MiB, GiB, TiB: powers of 1024).
public enum ShardSize {
    /// Bytes in `text`, e.g. "5GB" = 5,000,000,000.
    /// - Throws: `AssemblyError.badShardSize` for anything else, or less than one byte.
    public static func parse(_ text: String) throws -> Int {
        let units: [(String, Double)] = [("kib", 0x1p10), ("mib", 0x1p20), ("gib", 0x1p30), ("tib", 0x1p40),
                                         ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12), ("b", 1)]
        let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
        let (digits, scale) = units.first { lower.hasSuffix($0.0) }.map { (String(lower.dropLast($0.0.count)), $0.1) } ?? (lower, 1)
        guard let number = Double(digits.trimmingCharacters(in: .whitespaces)), number.isFinite,
              digits.allSatisfy({ $0.isNumber || $0 == "." || $0 == " " }) else { throw AssemblyError.badShardSize(text) }
        let bytes = (number * scale).rounded(.down)
        guard bytes >= 1, bytes < 9e18 else { throw AssemblyError.badShardSize(text) }
        return Int(bytes)
    }

    /// Groups tensors of `sizes` bytes, in order, into shards of at most `limit` bytes as huggingface_hub's
    /// `split_torch_state_dict_into_shards` does: a tensor that would tip the current shard over starts the next one,
    /// and a tensor bigger than the limit gets a shard of its own, placed before the shard being filled.
    public static func split(_ sizes: [Int], limit: Int) -> [[Int]] {
        var shards: [[Int]] = [], current: [Int] = [], currentSize = 0
        for (index, size) in sizes.enumerated() {
            if size > limit {
                shards.append([index])
                continue
            }
            if currentSize + size > limit {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(index)
            currentSize += size
        }
        if !current.isEmpty { shards.append(current) }
        return shards
    }
}
