#ifndef BFQ_QUANTIZE_H
#define BFQ_QUANTIZE_H
/// Quantizer kernels: one row at a time, an AVX2 path and a portable scalar path that give identical bits.
/// Every f64 sum over a row (or group) keeps 8 lanes, element i in lane i % 8, in element order, and combines them as
/// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
#include <stddef.h>
#include <stdint.h>

/// Errors and signal of one quantized row (sums over its groups, in group order).
typedef struct bfq_row_error {
    double error;           /// sum of (w - w')^2, w' the decoded f32 value
    double weighted_error;  /// sum of h (w - w')^2 (equals `error` without importance weights)
    double signal;          /// sum of w^2
} bfq_row_error;

/// A uniform-grid quantizer: integer levels q in [-half, qmax], code q + half.
typedef struct bfq_grid_params {
    int32_t half;               /// 2^(b-1): abs-max start divisor, and the code of q = 0
    int32_t qmax;               /// largest level (half on the balanced grid, half - 1 on the plain grid); qmin = -half
    uint32_t max_iterations;    /// least-squares rounds per start
    const float *factors;       /// start scales: factors x abs-max / half, tried in order
    size_t factor_count;
    float rms_clip;             /// > 0: one more start, last: f32(f32(rms) x rms_clip) / half, rms = sqrt(signal / n)
    size_t group_size;          /// columns per scale (the row length for one scale per row)
    int f16_scales;             /// 1: each final scale is rounded to f16 and the codes re-derived with it
    int vectorized;             /// 0 forces the scalar kernels
} bfq_grid_params;

/// Quantizes one row of `n` weights (`h`: n importance weights, or NULL): writes n codes, ceil(n / group_size)
/// scales (as stored), and the row's errors.
void bfq_grid_quantize_row(const bfq_grid_params *params, const float *w, const float *h, size_t n, uint16_t *codes,
                           float *scales, bfq_row_error *result);

/// A per-row lookup-table quantizer of `levels` entries refined by Lloyd iterations on a histogram of the row.
typedef struct bfq_palette_params {
    uint32_t levels;            /// table entries L (2 to 257)
    uint32_t max_iterations;    /// Lloyd rounds
    int vectorized;             /// 0 forces the scalar kernels
} bfq_palette_params;

/// Histogram bins per row for the Lloyd iterations.
#define BFQ_PALETTE_BINS 2048

/// Quantizes one row of `n` weights starting from the grid levels s x (k - L / 2): writes L f16-exact entries
/// (ascending), n codes, and the row's errors.
void bfq_palette_quantize_row(const bfq_palette_params *params, const float *w, const float *h, size_t n,
                              float scale, float *entries, uint16_t *codes, bfq_row_error *result);

#endif
