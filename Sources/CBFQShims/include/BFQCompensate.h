#ifndef BFQ_COMPENSATE_H
#define BFQ_COMPENSATE_H
/// The column sweep of error-compensating rounding (GPTQ, Frantar et al. 2023) for one row and one block of columns.
#include <stddef.h>
#include <stdint.h>

/// The row's fixed quantizer: a grid (code = q + half, w' = f32(s x q) + 0, q in [-half, qmax]) or a table of
/// `levels` ascending entries (nearest entry, ties to the lower).
typedef struct bfq_compensate_params {
    int32_t palette;    /// 0: grid, 1: per-row table
    int32_t half;       /// grid: the code of q = 0
    int32_t qmax;       /// grid: the largest level
    uint32_t levels;    /// table: entries
} bfq_compensate_params;

/// Rounds columns 0..<count of one row in order, each to the level nearest its current value, and spreads each
/// column's error over the later columns of the block: e_i = (w_i - w'_i) / u[i][i], w_j -= e_i u[i][j] for j > i
/// (u: the block's rows of the upper Cholesky factor of H^-1, leading dimension `ldu`, column i of the block at
/// u[i * ldu + i]). Writes the codes and the scaled errors e_i (for the caller's update of the columns after the block).
/// `values`: the row's scales (grid; `scale_index[i]` picks column i's) or its table entries. Returns 0, or -1 when a
/// value or a pivot is not finite.
int bfq_compensate_row(const bfq_compensate_params *params, float *w, const float *u, size_t ldu, size_t count,
                       const float *values, const uint32_t *scale_index, uint16_t *codes, float *errors);

#endif
