#ifndef BFQ_QUANTIZE_COMMON_H
#define BFQ_QUANTIZE_COMMON_H
/* What the quantizers (Quantize.c) and the candidate measurement (Measure.c) share: the row statistics, the grid's
 * scale search around a pass callback, and the palette's histogram, Lloyd iterations and stored table (internal; not
 * part of the module's headers). */
#include "BFQQuantize.h"

#define BFQ_F16_MAX 65504.0f
#define BFQ_MAX_LEVELS 257

/* max|w|, and the kernels' lane sums sum w^2 (`signal`) and sum h w^2 (`wsignal`; sum w^2 without h). */
float bfq_row_stats(const float *w, const float *h, size_t n, double *signal, double *wsignal, int vectorized);

/* The scale as stored: itself, or rounded to f16 (to nearest even; clamped to the largest finite f16). */
float bfq_stored_scale(float s, int f16);

/* A grid pass's result from its sums sn = <w, q>_h and sd = <q, q>_h at scale s: the objective sum h (w - s q)^2
 * in closed form (sum h w^2 = wsignal), and the least-squares scale sn / sd in *next (0 if not positive and finite). */
double bfq_pass_result(double sn, double sd, float s, double wsignal, float *next);

/* One grid pass at scale s: returns the objective sum h (w - s q)^2 and sets *next to the least-squares scale of its
 * codes q (0 if none). */
typedef double (*bfq_grid_pass)(void *context, float s, float *next);

/* A segment of a row for bfq_segment_pass: its weights and importance (or NULL), the grid's clip, sum h w^2. */
typedef struct bfq_segment {
    const float *w, *h;
    size_t n;
    float qmin, qmax;
    double wsignal;
    int vectorized;
} bfq_segment;

/* The quantizer's pass (a bfq_grid_pass on a bfq_segment): one sweep over the weights, q = clip(rint(w / s)). */
double bfq_segment_pass(void *context, float s, float *next);

/* Scales earlier starts reached: their objective, and for a point a start moved to, how many rounds that start had
 * left after it (-1 for a scale only tried and refused). */
#define BFQ_MAX_VISITED 1024
typedef struct bfq_visited_set {
    size_t count;
    float scale[BFQ_MAX_VISITED];
    double value[BFQ_MAX_VISITED];
    int64_t left[BFQ_MAX_VISITED];
} bfq_visited_set;

/* The best scale of a segment of n weights (max|w| = absmax > 0, sum w^2 = signal) over the starts of `params`,
 * each followed by alternating optimisation with `pass` while the objective falls strictly; 0 when no start is
 * usable. */
float bfq_best_scale(const bfq_grid_params *params, bfq_grid_pass pass, void *context, size_t n, float absmax,
                     double signal, bfq_visited_set *visited);

/* A row's histogram for the Lloyd iterations: per bin the importance (count without h) and importance-weighted sum
 * of the weights as prefix sums (BINS + 1 entries each), and the bin centres. */
typedef struct bfq_palette_bins {
    double pw[BFQ_PALETTE_BINS + 1], ps[BFQ_PALETTE_BINS + 1], centre[BFQ_PALETTE_BINS];
} bfq_palette_bins;

/* The histogram of n >= 1 weights between their smallest and largest, accumulated in element order. */
void bfq_palette_histogram(const float *w, const float *h, size_t n, int vectorized, bfq_palette_bins *bins);

/* The stored table of a palette started at grid scale `scale`, refined on `bins` (NULL for an empty row): L f16-exact
 * ascending entries and L - 1 thresholds (the code of x is the number of thresholds below x). */
void bfq_palette_table(const bfq_palette_params *params, float scale, const bfq_palette_bins *bins, float *entries,
                       float *thresholds);

#endif
