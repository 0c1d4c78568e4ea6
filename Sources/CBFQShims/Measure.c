/* Candidate measurement (BFQMeasure.h).
 *
 * A row is sorted once: a counting pass into about n bins of a monotone function of w (the importance carried
 * along), then a sort within each bin, then the sums of h, h w and h w^2 over the first i weights for every i. Any
 * code assignment monotone in w is a list of boundaries; the weights below a boundary at t are a prefix of the sorted
 * row, found in t's bin (the bins before it hold lower weights and those after it higher ones), so the sums of any
 * range of levels are two lookups: O(1) per boundary, for light and heavy tails alike.
 * - Grid: level >= q exactly when w > m_q s, m_q fixed per level and m_q s exact in f64 (grid_init), so a pass at
 *   scale s is L - 1 boundary lookups; sum h w q and sum h q^2 follow level by level, the objective and the next
 *   scale as the quantizer computes them (bfq_pass_result), and the starts and accept rules are the quantizer's own
 *   (bfq_best_scale). Where the lookups would cost more than a sweep over the row (few weights, many levels), the
 *   quantizer's own pass runs instead.
 * - The error at the stored scale, and a palette's, is the sum over levels of S2 - 2 e S1 + e^2 S0, e the decoded
 *   value; a palette's table comes from the quantizer's own histogram (in element order), Lloyd code and rounding.
 * The sums differ from the quantizers' in the order of the f64 additions only. */
#include "BFQMeasure.h"
#include "CBFQShims.h"
#include "CPUFeatures.h"
#include "QuantizeCommon.h"
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

/* A boundary lookup costs about as much as QUERY_COST weights of a sweep (measured on 1280 to 11520 weights). */
#define QUERY_COST 28
/* Places of a bin a lookup compares without a loop. */
#define SLOTS 4

/* ---- The sorted row ---- */

typedef struct sums {
    double h, hw, hw2; /* sum h, sum h w, sum h w^2 */
} sums;

typedef struct element {
    float w, h; /* a weight and its importance (1 without) */
} element;

typedef struct sorted_row {
    size_t n, bins;
    const element *e;      /* the weights ascending, with their importance */
    const float *v;        /* the same weights alone (dense for lookups), then SLOTS x +infinity */
    const sums *below;     /* sums over v[0 .. i) (n + 1 entries) */
    const uint32_t *index; /* the first place of each bin (bins + 1 entries) */
    double c;              /* the spread's linear range: the row's RMS */
    int64_t top;           /* spread(max|w|) */
    int shift;             /* a bin is 2^shift steps of spread */
} sorted_row;

static inline uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* sign(x) (bits(|x| + c) - bits(c)) over f64 bits: monotone in x, near linear for |x| < c and near log |x| above,
 * so a step of it holds about as many weights in the middle as in light or heavy tails. */
static inline int64_t spread(double x, double c) {
    const double a = fabs(x) + c;
    int64_t bits, base;
    memcpy(&bits, &a, sizeof bits);
    memcpy(&base, &c, sizeof base);
    return x < 0 ? base - bits : bits - base;
}

/* The bin of x: monotone in x, clamped to [0, bins) (without branches: a lookup's bin is unpredictable). */
static inline size_t bin_of(const sorted_row *r, double x) {
    const int64_t d = spread(x, r->c) + r->top;
    const size_t j = (size_t)((d & ~(d >> 63)) >> r->shift);
    return j < r->bins ? j : r->bins - 1;
}

/* The number of weights at or below t. They are those of the bins before t's and a prefix of t's bin, which ends
 * within its first SLOTS places unless all of them are below (the places after the bin hold higher weights, or
 * +infinity). In f32: w < t exactly when w < u, u the least f32 >= t, and w = t only when u = t. */
static inline size_t count_below(const sorted_row *r, double t) {
    const size_t a = r->index[bin_of(r, t)];
    const float near = (float)t;
    const float u = bits_f32(f32_bits(near) + (uint32_t)((double)near < t) * (1u - 2u * (uint32_t)(near < 0)));
    const int equal = (double)u == t;
    const float *v = r->v + a;
    size_t i = a;
    for (int k = 0; k < SLOTS; k++) i += (size_t)((v[k] < u) | ((v[k] == u) & equal));
    if (i == a + SLOTS)
        while ((r->v[i] < u) | ((r->v[i] == u) & equal)) i++;
    return i;
}

/* sum h (w - e)^2 over the places [a, b): S2 - 2 e S1 + e^2 S0, or one by one where that cancels so far that the
 * rounding of S2 and e^2 S0 could show (all the weights within about 2^-7 of e, relative: few weights, or values
 * close to f16 ones). */
static double range_error(const sorted_row *r, size_t a, size_t b, double e) {
    const sums *lo = r->below + a, *hi = r->below + b;
    const double s0 = hi->h - lo->h, s1 = hi->hw - lo->hw, s2 = hi->hw2 - lo->hw2;
    const double d = s2 - 2.0 * e * s1 + e * e * s0;
    if (d > 0x1p-15 * (s2 + e * e * s0)) return d;
    double sum = 0;
    for (size_t i = a; i < b; i++) {
        const double x = (double)r->e[i].w - e;
        sum += (double)r->e[i].h * (x * x);
    }
    return sum;
}

/* Sorts m weights by w: by insertion, after passes of Shell sort (Ciura's gaps) for a bin of many. */
static void sort_bin(element *e, size_t m) {
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    size_t g = 0;
    while (gaps[g] >= m / 2 && gaps[g] > 1) g++;
    for (; g < sizeof gaps / sizeof gaps[0]; g++) {
        const size_t gap = gaps[g];
        for (size_t i = gap; i < m; i++) {
            const element x = e[i];
            size_t j = i;
            for (; j >= gap && e[j - gap].w > x.w; j -= gap) e[j] = e[j - gap];
            e[j] = x;
        }
    }
}

/* Sorts the n >= 1 weights (with h) through about n bins of spread between -max|w| and max|w|. `e` and `bin` hold
 * n entries, `v` n + SLOTS, `below` and `index` n + 1. */
static void sort_row(sorted_row *r, const float *w, const float *h, size_t n, float absmax, double signal,
                     element *e, uint32_t *bin, float *v, sums *below, uint32_t *index) {
    *r = (sorted_row){n, 0, e, v, below, index, sqrt(signal / (double)n), 0, 0};
    r->top = spread(absmax, r->c);
    while ((2 * r->top) >> r->shift >= (int64_t)n) r->shift++;
    const size_t bins = r->bins = (size_t)((2 * r->top) >> r->shift) + 1;
    for (size_t i = 0; i < n; i++) bin[i] = (uint32_t)((spread(w[i], r->c) + r->top) >> r->shift);
    memset(index, 0, (bins + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) index[bin[i] + 1]++;
    for (size_t j = 0; j < bins; j++) index[j + 1] += index[j];
    for (size_t i = 0; i < n; i++) e[index[bin[i]]++] = (element){w[i], h ? h[i] : 1.0f};
    memmove(index + 1, index, bins * sizeof(uint32_t)); /* the scatter left each bin's end in its start */
    index[0] = 0;
    for (size_t j = 0; j < bins; j++)
        if (index[j + 1] - index[j] > 1) sort_bin(e + index[j], index[j + 1] - index[j]);
    sums s = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const double x = e[i].w, hx = e[i].h;
        below[i] = s, v[i] = e[i].w;
        s.h += hx, s.hw += hx * x, s.hw2 += hx * (x * x);
    }
    below[n] = s;
    for (int k = 0; k < SLOTS; k++) v[n + k] = INFINITY;
}

/* ---- Grid ---- */

/* A grid's levels q = qmin + k, k in [0, L); boundary k (1 <= k < L) lies below level qmin + k. */
typedef struct grid_search {
    const sorted_row *row;
    uint32_t levels;
    int32_t qmin;
    double wsignal;
    double m[BFQ_MAX_LEVELS]; /* level >= qmin + k exactly when w > m[k] s */
} grid_search;

/* The f32 next to x (finite, not 0) upwards (+1) or downwards (-1). */
static inline float f32_step(float x, int direction) {
    return bits_f32(f32_bits(x) + ((x > 0) == (direction > 0) ? 1 : (uint32_t)-1));
}

/* Level >= q exactly when f32(w / s) >= g, g = q - 0.5 for even q (rint ties to even) and the next f32 above it for
 * odd q; f32(w / s) >= g exactly when w / s lies above the midpoint m between g and the f32 below it (w / s is never
 * on it: that would take 25 significant bits in w). m s is exact in f64 (25 and 24 significant bits). */
static void grid_init(grid_search *g, const sorted_row *r, const bfq_grid_params *p, double wsignal) {
    g->row = r, g->qmin = -p->half, g->levels = (uint32_t)(p->qmax + p->half + 1), g->wsignal = wsignal;
    for (uint32_t k = 1; k < g->levels; k++) {
        const int32_t q = g->qmin + (int32_t)k;
        const float c = (float)q - 0.5f, lowest = q % 2 == 0 ? c : f32_step(c, 1);
        g->m[k] = ((double)f32_step(lowest, -1) + (double)lowest) / 2;
    }
}

/* The number of weights below each boundary at scale s (L + 1 entries: 0 below the lowest level, n below the top). */
static void boundaries(const grid_search *g, float s, size_t *at) {
    const double s64 = s;
    at[0] = 0, at[g->levels] = g->row->n;
    for (uint32_t k = 1; k < g->levels; k++) at[k] = count_below(g->row, g->m[k] * s64);
}

/* A bfq_grid_pass: sum h w q and sum h q^2 level by level. */
static double grid_pass(void *context, float s, float *next) {
    const grid_search *g = context;
    size_t at[BFQ_MAX_LEVELS + 1];
    boundaries(g, s, at);
    double sn = 0, sd = 0;
    for (uint32_t k = 0; k < g->levels; k++) {
        const double q = g->qmin + (int32_t)k;
        const sums *lo = g->row->below + at[k], *hi = g->row->below + at[k + 1];
        sn += q * (hi->hw - lo->hw);
        sd += (q * q) * (hi->h - lo->h);
    }
    return bfq_pass_result(sn, sd, s, g->wsignal, next);
}

/* The error at the stored scale s: every weight at its level's f32(s q) + 0 (at 0 when s is 0). */
static double grid_error(const grid_search *g, float s) {
    if (!(s > 0)) return g->wsignal;
    size_t at[BFQ_MAX_LEVELS + 1];
    boundaries(g, s, at);
    double error = 0;
    for (uint32_t k = 0; k < g->levels; k++)
        error += range_error(g->row, at[k], at[k + 1], (double)(s * (float)(g->qmin + (int32_t)k) + 0.0f));
    return error;
}

/* The stored scale of a grid search, and the error at it. */
static float grid_scale(const sorted_row *r, const bfq_grid_params *p, const float *w, const float *h, float absmax,
                        double signal, double wsignal, double *error) {
    grid_search g;
    grid_init(&g, r, p, wsignal);
    bfq_segment segment = {w, h, r->n, (float)-p->half, (float)p->qmax, wsignal, bfq_use_avx2(1)};
    const int sweep = (size_t)g.levels * QUERY_COST > r->n;
    bfq_visited_set visited;
    const float best = absmax > 0 ? bfq_best_scale(p, sweep ? bfq_segment_pass : grid_pass,
                                                   sweep ? (void *)&segment : &g, r->n, absmax, signal, &visited)
                                  : 0;
    const float s = bfq_stored_scale(best, p->f16_scales);
    *error = grid_error(&g, s);
    return s;
}

/* ---- Palette and raw ---- */

/* The palette's error: each weight at its nearest stored entry (the code is the number of thresholds below it). */
static double palette_error(const sorted_row *r, const bfq_palette_params *p, float scale,
                            const bfq_palette_bins *bins) {
    float entries[BFQ_MAX_LEVELS], t[BFQ_MAX_LEVELS];
    bfq_palette_table(p, scale, bins, entries, t);
    double error = 0;
    for (uint32_t k = 0, a = 0; k < p->levels; k++) {
        const size_t b = k + 1 < p->levels ? count_below(r, t[k]) : r->n;
        error += range_error(r, a, b, entries[k]);
        a = (uint32_t)b;
    }
    return error;
}

/* sum h (w - f16(w))^2 in element order. */
static double raw_error(const float *w, const float *h, size_t n) {
    enum { CHUNK = 256 };
    uint16_t bits[CHUNK];
    float rounded[CHUNK];
    double error = 0;
    for (size_t start = 0; start < n; start += CHUNK) {
        const size_t m = n - start < CHUNK ? n - start : CHUNK;
        bfq_f32_to_f16(w + start, bits, m);
        bfq_f16_to_f32(bits, rounded, m);
        for (size_t i = 0; i < m; i++) {
            const double d = (double)w[start + i] - (double)rounded[i], dd = d * d;
            error += h ? (double)h[start + i] * dd : dd;
        }
    }
    return error;
}

/* ---- Rows ---- */

/* Scratch layout for n weights and count candidates, 64-byte aligned pieces. */
typedef struct layout {
    size_t elements, bin, values, below, index, bins, scales, errors, total;
} layout;

static size_t piece(size_t *at, size_t bytes) {
    const size_t start = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return start;
}

static layout layout_of(size_t n, size_t count) {
    layout l;
    size_t at = 0;
    l.elements = piece(&at, n * sizeof(element)), l.bin = piece(&at, n * sizeof(uint32_t));
    l.values = piece(&at, (n + SLOTS) * sizeof(float)), l.below = piece(&at, (n + 1) * sizeof(sums));
    l.index = piece(&at, (n + 1) * sizeof(uint32_t)), l.bins = piece(&at, sizeof(bfq_palette_bins));
    l.scales = piece(&at, count * sizeof(float)), l.errors = piece(&at, count * sizeof(double));
    l.total = at;
    return l;
}

size_t bfq_measure_scratch_size(size_t n, size_t count) { return layout_of(n, count).total; }

static int same_grid(const bfq_grid_params *a, const bfq_grid_params *b) {
    return a->half == b->half && a->qmax == b->qmax && a->max_iterations == b->max_iterations &&
           a->factor_count == b->factor_count && a->rms_clip == b->rms_clip && a->f16_scales == b->f16_scales &&
           (a->factor_count == 0 || memcmp(a->factors, b->factors, a->factor_count * sizeof(float)) == 0);
}

void bfq_measure_row(const bfq_candidate *candidates, size_t count, const float *w, const float *h, size_t n,
                     void *scratch, double *distortions, double *signal) {
    *signal = 0;
    for (size_t c = 0; c < count; c++) distortions[c] = 0;
    if (n == 0) return;
    char *base = scratch;
    const layout l = layout_of(n, count);
    double wsignal;
    const float absmax = bfq_row_stats(w, h, n, signal, &wsignal, bfq_use_avx2(1));
    sorted_row row;
    sort_row(&row, w, h, n, absmax, *signal, (element *)(base + l.elements), (uint32_t *)(base + l.bin),
             (float *)(base + l.values), (sums *)(base + l.below), (uint32_t *)(base + l.index));
    bfq_palette_bins *bins = NULL;
    float *scales = (float *)(base + l.scales);
    double *grid_errors = (double *)(base + l.errors);
    for (size_t c = 0; c < count; c++) {
        const bfq_candidate *x = candidates + c;
        if (x->kind == BFQ_CANDIDATE_RAW) {
            distortions[c] = raw_error(w, h, n);
            continue;
        }
        size_t same = 0;
        while (same < c && !(candidates[same].kind != BFQ_CANDIDATE_RAW && same_grid(&candidates[same].grid, &x->grid)))
            same++;
        if (same == c) scales[c] = grid_scale(&row, &x->grid, w, h, absmax, *signal, wsignal, grid_errors + c);
        else scales[c] = scales[same], grid_errors[c] = grid_errors[same];
        if (x->kind == BFQ_CANDIDATE_GRID) {
            distortions[c] = grid_errors[c];
            continue;
        }
        if (!bins) {
            bins = (bfq_palette_bins *)(base + l.bins);
            bfq_palette_histogram(w, h, n, bfq_use_avx2(1), bins);
        }
        distortions[c] = palette_error(&row, &x->palette, scales[c], bins);
    }
}
