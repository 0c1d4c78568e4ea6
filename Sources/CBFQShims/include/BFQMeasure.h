#ifndef BFQ_MEASURE_H
#define BFQ_MEASURE_H
/// Candidate measurement: the distortion a row would get from each of several encodings, without their codes. Each
/// equals what the quantizer kernels (BFQQuantize.h) report for that encoding up to the order of f64 summation.
#include "BFQQuantize.h"
#include <stddef.h>

typedef enum bfq_candidate_kind {
    BFQ_CANDIDATE_GRID = 0,     /// a grid with one scale per row (bfq_grid_quantize_row)
    BFQ_CANDIDATE_PALETTE = 1,  /// a palette started from the grid's stored scale (bfq_palette_quantize_row)
    BFQ_CANDIDATE_RAW = 2,      /// the weights rounded to f16
} bfq_candidate_kind;

typedef struct bfq_candidate {
    bfq_candidate_kind kind;
    bfq_grid_params grid;        /// grid and palette: the scale search (`group_size` and `vectorized` are not read)
    bfq_palette_params palette;  /// palette: levels and Lloyd rounds (`vectorized` is not read)
} bfq_candidate;

/// Bytes of scratch bfq_measure_row needs for rows of up to `n` weights and `count` candidates.
size_t bfq_measure_scratch_size(size_t n, size_t count);

/// Writes the distortion of each of `count` candidates for one row of `n` weights: sum h (w - w')^2 with w' the
/// decoded value (sum (w - w')^2 when `h` is NULL), and the row's signal sum w^2 to `*signal`. `scratch` holds
/// bfq_measure_scratch_size(n, count) bytes aligned to 64; a grid search that several candidates share (equal
/// `grid` fields) runs once.
void bfq_measure_row(const bfq_candidate *candidates, size_t count, const float *w, const float *h, size_t n,
                     void *scratch, double *distortions, double *signal);

#endif
