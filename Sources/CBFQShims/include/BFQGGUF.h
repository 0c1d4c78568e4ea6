#ifndef BFQ_GGUF_H
#define BFQ_GGUF_H
/// Block decoders for the ggml types GGUF files hold. Each computes what gguf-py's `gguf.quants.dequantize` computes,
/// operation for operation in f32 (no fused multiply-adds), so the values are the same bits.
#include <stddef.h>
#include <stdint.h>

/// Decodes `blocks` consecutive blocks of ggml type `type` (its ggml id) from `src` into `dst` (block size floats
/// each). Returns 0, or -1 for a type this decoder does not know.
int bfq_gguf_dequantize(uint32_t type, const uint8_t *src, float *dst, size_t blocks);

/// Encodes `blocks` blocks of f32 values from `src` as ggml type `type` into `dst`, computing what gguf-py's
/// `gguf.quants.quantize` computes (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0, TQ2_0) or, for Q2_K-Q6_K (which gguf-py
/// cannot quantize), what ggml's reference quantizers compute without an importance matrix: the same bytes.
/// Returns 0, or -1 for a type this encoder does not know.
int bfq_gguf_quantize(uint32_t type, const float *src, uint8_t *dst, size_t blocks);

#endif
