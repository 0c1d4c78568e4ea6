/// How a quantized tensor's codes are laid out in their section (spec/bfq.md section 5, the manifest key `packing`).
public enum CodePacking: String, CaseIterable, Sendable {
    /// The densest fields: plain bit packing for L = 2^w, else radix groups of G codes in W-bit fields.
    case radix
    /// Whole symbols per byte, so zstd's Huffman stage sees them: G codes in each byte (L^G <= 256), or 2 bytes per
    /// code for L = 257.
    case bytes
}
