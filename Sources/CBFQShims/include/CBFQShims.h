#ifndef BFQ_SHIMS_H
#define BFQ_SHIMS_H
/// Element conversion and checksum kernels that need CPU intrinsics.
/// Every conversion rounds to nearest even, as PyTorch does on the CPU.
#include <stddef.h>
#include <stdint.h>

void bfq_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void bfq_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void bfq_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void bfq_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void bfq_f64_to_f32(const double *src, float *dst, size_t n);
/// Decodes float8 (e4m3fn when `e5m2` is 0, e5m2 otherwise) to f32.
void bfq_f8_to_f32(const uint8_t *src, float *dst, size_t n, int e5m2);

/// CRC-32 (ISO-HDLC, the zip polynomial) of `n` bytes, continuing from `crc` (0 to start).
uint32_t bfq_crc32(uint32_t crc, const void *data, size_t n);

#endif
