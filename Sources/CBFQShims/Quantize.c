/* Quantizer kernels (BFQQuantize.h). The AVX2 functions do the scalar functions' f32 and f64 operations lane by lane
 * and keep the same 8 f64 accumulator lanes (element i of a segment in lane i % 8), so both give the same bits. */
#include "CPUFeatures.h"
#include "BFQQuantize.h"
#include "CBFQShims.h"
#include "QuantizeCommon.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF /* every product and sum rounds on its own, as the numpy reference does */

#define LANES 8

static double combine(const double lane[LANES]) {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* maxps / minps semantics, so the scalar and vector clips agree on the sign of zero too. */
static inline float max_ps1(float a, float b) { return a > b ? a : b; }
static inline float min_ps1(float a, float b) { return a < b ? a : b; }

static inline float level(float x, float s, float qmin, float qmax) {
    return min_ps1(max_ps1(rintf(x / s), qmin), qmax);
}

/* ---- Scalar kernels, from element `i` on (the vector kernels finish their tails with them). ---- */

/* max|w|, sum w^2 and sum h w^2. */
static float stats_scalar(const float *w, const float *h, size_t i, size_t n, double sig[LANES], double wsig[LANES],
                          float absmax) {
    for (; i < n; i++) {
        const double x = w[i], xx = x * x;
        absmax = max_ps1(fabsf(w[i]), absmax);
        sig[i % LANES] += xx;
        wsig[i % LANES] += h ? (double)h[i] * xx : xx;
    }
    return absmax;
}

/* <w, q>_h and <q, q>_h for q = clip(rint(w / s)). */
static void search_scalar(const float *w, const float *h, size_t i, size_t n, float s, float qmin, float qmax,
                          double num[LANES], double den[LANES]) {
    for (; i < n; i++) {
        const double x = w[i], q = level(w[i], s, qmin, qmax);
        if (h) {
            num[i % LANES] += ((double)h[i] * x) * q;
            den[i % LANES] += (double)h[i] * (q * q);
        } else {
            num[i % LANES] += x * q;
            den[i % LANES] += q * q;
        }
    }
}

/* Codes q + half for scale s (q = 0 when s = 0) and the errors of the decoded values f32(s q) + 0. */
static void final_scalar(const float *w, const float *h, size_t i, size_t n, float s, float qmin, float qmax,
                         int32_t half, uint16_t *codes, double err[LANES], double werr[LANES]) {
    for (; i < n; i++) {
        const float q = s > 0 ? level(w[i], s, qmin, qmax) : 0.0f;
        codes[i] = (uint16_t)((int32_t)q + half);
        const double d = (double)w[i] - (double)(s * q + 0.0f), dd = d * d;
        err[i % LANES] += dd;
        werr[i % LANES] += h ? (double)h[i] * dd : dd;
    }
}

#if defined(__x86_64__)

#define LO(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define HI(v) _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))

__attribute__((target("avx2"), always_inline))
static inline __m256 level8(__m256 x, __m256 s, __m256 qmin, __m256 qmax) {
    __m256 r = _mm256_round_ps(_mm256_div_ps(x, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
}

__attribute__((target("avx2")))
static float stats_avx2(const float *w, const float *h, size_t n, double sig[LANES], double wsig[LANES]) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, v0 = s0, v1 = s0;
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const __m256 x = _mm256_loadu_ps(w + i);
        amax = _mm256_max_ps(_mm256_andnot_ps(sign, x), amax);
        const __m256d x0 = LO(x), x1 = HI(x), xx0 = _mm256_mul_pd(x0, x0), xx1 = _mm256_mul_pd(x1, x1);
        s0 = _mm256_add_pd(s0, xx0);
        s1 = _mm256_add_pd(s1, xx1);
        if (h) {
            const __m256 hv = _mm256_loadu_ps(h + i);
            v0 = _mm256_add_pd(v0, _mm256_mul_pd(LO(hv), xx0));
            v1 = _mm256_add_pd(v1, _mm256_mul_pd(HI(hv), xx1));
        } else {
            v0 = _mm256_add_pd(v0, xx0);
            v1 = _mm256_add_pd(v1, xx1);
        }
    }
    _mm256_storeu_pd(sig, s0), _mm256_storeu_pd(sig + 4, s1), _mm256_storeu_pd(wsig, v0), _mm256_storeu_pd(wsig + 4, v1);
    float lanes[LANES], absmax = 0;
    _mm256_storeu_ps(lanes, amax);
    for (int k = 0; k < LANES; k++) absmax = max_ps1(lanes[k], absmax);
    return stats_scalar(w, h, i, n, sig, wsig, absmax);
}

__attribute__((target("avx2")))
static void search_avx2(const float *w, const float *h, size_t n, float s, float qmin, float qmax, double num[LANES],
                        double den[LANES]) {
    __m256d n0 = _mm256_setzero_pd(), n1 = n0, d0 = n0, d1 = n0;
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(qmin), hi = _mm256_set1_ps(qmax);
    size_t i = 0;
    if (h) {
        for (; i + LANES <= n; i += LANES) {
            const __m256 x = _mm256_loadu_ps(w + i), q = level8(x, vs, lo, hi), hv = _mm256_loadu_ps(h + i);
            const __m256d q0 = LO(q), q1 = HI(q), h0 = LO(hv), h1 = HI(hv);
            n0 = _mm256_add_pd(n0, _mm256_mul_pd(_mm256_mul_pd(h0, LO(x)), q0));
            n1 = _mm256_add_pd(n1, _mm256_mul_pd(_mm256_mul_pd(h1, HI(x)), q1));
            d0 = _mm256_add_pd(d0, _mm256_mul_pd(h0, _mm256_mul_pd(q0, q0)));
            d1 = _mm256_add_pd(d1, _mm256_mul_pd(h1, _mm256_mul_pd(q1, q1)));
        }
    } else {
        for (; i + LANES <= n; i += LANES) {
            const __m256 x = _mm256_loadu_ps(w + i), q = level8(x, vs, lo, hi);
            const __m256d q0 = LO(q), q1 = HI(q);
            n0 = _mm256_add_pd(n0, _mm256_mul_pd(LO(x), q0));
            n1 = _mm256_add_pd(n1, _mm256_mul_pd(HI(x), q1));
            d0 = _mm256_add_pd(d0, _mm256_mul_pd(q0, q0));
            d1 = _mm256_add_pd(d1, _mm256_mul_pd(q1, q1));
        }
    }
    _mm256_storeu_pd(num, n0), _mm256_storeu_pd(num + 4, n1), _mm256_storeu_pd(den, d0), _mm256_storeu_pd(den + 4, d1);
    search_scalar(w, h, i, n, s, qmin, qmax, num, den);
}

/* Stores 8 codes (small non-negative integers held as i32 lanes) as u16. */
__attribute__((target("avx2"), always_inline))
static inline void store_codes8(uint16_t *out, __m256i c) {
    _mm_storeu_si128((__m128i *)out, _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1)));
}

/* Adds (w - v)^2 and h (w - v)^2 of 8 elements to the error lanes. */
__attribute__((target("avx2"), always_inline))
static inline void add_errors8(__m256 x, __m256 v, const float *h, __m256d e[2], __m256d we[2]) {
    const __m256d a0 = _mm256_sub_pd(LO(x), LO(v)), a1 = _mm256_sub_pd(HI(x), HI(v));
    const __m256d dd0 = _mm256_mul_pd(a0, a0), dd1 = _mm256_mul_pd(a1, a1);
    e[0] = _mm256_add_pd(e[0], dd0);
    e[1] = _mm256_add_pd(e[1], dd1);
    if (h) {
        const __m256 hv = _mm256_loadu_ps(h);
        we[0] = _mm256_add_pd(we[0], _mm256_mul_pd(LO(hv), dd0));
        we[1] = _mm256_add_pd(we[1], _mm256_mul_pd(HI(hv), dd1));
    } else {
        we[0] = _mm256_add_pd(we[0], dd0);
        we[1] = _mm256_add_pd(we[1], dd1);
    }
}

__attribute__((target("avx2")))
static void final_avx2(const float *w, const float *h, size_t n, float s, float qmin, float qmax, int32_t half,
                       uint16_t *codes, double err[LANES], double werr[LANES]) {
    __m256d e[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, we[2] = {e[0], e[0]};
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(qmin), hi = _mm256_set1_ps(qmax),
                 zero = _mm256_setzero_ps();
    const __m256i offset = _mm256_set1_epi32(half);
    size_t i = 0;
    for (; s > 0 && i + LANES <= n; i += LANES) {
        const __m256 x = _mm256_loadu_ps(w + i), q = level8(x, vs, lo, hi);
        store_codes8(codes + i, _mm256_add_epi32(_mm256_cvtps_epi32(q), offset));
        add_errors8(x, _mm256_add_ps(_mm256_mul_ps(vs, q), zero), h ? h + i : NULL, e, we);
    }
    _mm256_storeu_pd(err, e[0]), _mm256_storeu_pd(err + 4, e[1]), _mm256_storeu_pd(werr, we[0]);
    _mm256_storeu_pd(werr + 4, we[1]);
    final_scalar(w, h, i, n, s, qmin, qmax, half, codes, err, werr);
}
#endif

/* ---- Grid ---- */

float bfq_row_stats(const float *w, const float *h, size_t n, double *signal, double *wsignal, int vectorized) {
    double sig[LANES] = {0}, wsig[LANES] = {0};
    float absmax;
#if defined(__x86_64__)
    if (vectorized) absmax = stats_avx2(w, h, n, sig, wsig);
    else
#endif
        absmax = stats_scalar(w, h, 0, n, sig, wsig, 0.0f);
    *signal = combine(sig);
    *wsignal = combine(wsig);
    return absmax;
}

double bfq_pass_result(double sn, double sd, float s, double wsignal, float *next) {
    const double s64 = s;
    *next = 0;
    if (sd > 0) {
        const float t = (float)(sn / sd);
        if (isfinite(t) && t > 0) *next = t;
    }
    return wsignal - 2.0 * s64 * sn + s64 * s64 * sd;
}

double bfq_segment_pass(void *context, float s, float *next) {
    const bfq_segment *g = context;
    double num[LANES] = {0}, den[LANES] = {0};
#if defined(__x86_64__)
    if (g->vectorized) search_avx2(g->w, g->h, g->n, s, g->qmin, g->qmax, num, den);
    else
#endif
        search_scalar(g->w, g->h, 0, g->n, s, g->qmin, g->qmax, num, den);
    return bfq_pass_result(combine(num), combine(den), s, g->wsignal, next);
}

float bfq_stored_scale(float s, int f16) {
    if (!f16) return s;
    s = s < BFQ_F16_MAX ? s : BFQ_F16_MAX;
    uint16_t bits;
    bfq_f32_to_f16(&s, &bits, 1);
    bfq_f16_to_f32(&bits, &s, 1);
    return s;
}

static ptrdiff_t find_visited(const bfq_visited_set *set, float s) {
    for (size_t k = 0; k < set->count; k++)
        if (set->scale[k] == s) return (ptrdiff_t)k;
    return -1;
}

static void visit(bfq_visited_set *set, float s, double value, int64_t left) {
    const ptrdiff_t k = find_visited(set, s);
    if (k >= 0) {
        if (left > set->left[k]) set->left[k] = left;
    } else if (set->count < BFQ_MAX_VISITED) {
        set->scale[set->count] = s, set->value[set->count] = value, set->left[set->count++] = left;
    }
}

/* Every start, alternating optimisation until the objective stops falling strictly. Shortcuts that do not change
 * the result: a scale's objective is computed once; a start that would move to a point an earlier start moved to,
 * with no more rounds left than that start had there, follows that start's path (or a prefix of it), so it ends no
 * lower than that start did and cannot win (ties go to the earlier start). */
float bfq_best_scale(const bfq_grid_params *p, bfq_grid_pass pass, void *context, size_t n, float absmax,
                     double signal, bfq_visited_set *visited) {
    const float s0 = absmax / (float)p->half;
    const int64_t rounds = p->max_iterations;
    float best = 0;
    double best_value = INFINITY;
    int found = 0;
    visited->count = 0;
    const size_t starts = p->factor_count + (p->rms_clip > 0);
    for (size_t f = 0; f < starts; f++) {
        float s = f < p->factor_count ? s0 * p->factors[f] : ((float)sqrt(signal / (double)n) * p->rms_clip) / (float)p->half;
        float next;
        if (!(isfinite(s) && s > 0)) continue;
        const ptrdiff_t seen = find_visited(visited, s);
        if (seen >= 0 && visited->left[seen] >= rounds) continue;
        double value = pass(context, s, &next);
        visit(visited, s, value, rounds);
        int joined = 0;
        for (int64_t it = 0; it < rounds && next > 0; it++) {
            const ptrdiff_t k = find_visited(visited, next);
            if (k >= 0 && !(visited->value[k] < value)) break;
            if (k >= 0 && visited->left[k] >= rounds - it - 1) {
                joined = 1;
                break;
            }
            float after;
            const double next_value = pass(context, next, &after);
            if (!(next_value < value)) {
                visit(visited, next, next_value, -1);
                break;
            }
            visit(visited, next, next_value, rounds - it - 1);
            s = next, value = next_value, next = after;
        }
        if (!joined && (!found || value < best_value)) best = s, best_value = value, found = 1;
    }
    return best;
}

void bfq_grid_quantize_row(const bfq_grid_params *p, const float *w, const float *h, size_t n, uint16_t *codes,
                           float *scales, bfq_row_error *result) {
    const int vectorized = bfq_use_avx2(p->vectorized);
    bfq_visited_set visited;
    const float qmin = (float)-p->half, qmax = (float)p->qmax;
    *result = (bfq_row_error){0, 0, 0};
    for (size_t start = 0, g = 0; start < n; start += p->group_size, g++) {
        const size_t count = n - start < p->group_size ? n - start : p->group_size;
        const float *x = w + start, *hx = h ? h + start : NULL;
        double signal, wsignal, err[LANES] = {0}, werr[LANES] = {0};
        const float absmax = bfq_row_stats(x, hx, count, &signal, &wsignal, vectorized);
        bfq_segment segment = {x, hx, count, qmin, qmax, wsignal, vectorized};
        const float s = absmax > 0 ? bfq_stored_scale(bfq_best_scale(p, bfq_segment_pass, &segment, count, absmax,
                                                                     signal, &visited), p->f16_scales) : 0.0f;
#if defined(__x86_64__)
        if (vectorized) final_avx2(x, hx, count, s, qmin, qmax, p->half, codes + start, err, werr);
        else
#endif
            final_scalar(x, hx, 0, count, s, qmin, qmax, p->half, codes + start, err, werr);
        scales[g] = s;
        result->error += combine(err);
        result->weighted_error += combine(werr);
        result->signal += signal;
    }
}

/* ---- Palette ---- */

/* Smallest and largest weight, from element i on. */
static void min_max_scalar(const float *w, size_t i, size_t n, float *lo, float *hi) {
    float a = *lo, b = *hi;
    for (; i < n; i++) a = w[i] < a ? w[i] : a, b = w[i] > b ? w[i] : b;
    *lo = a, *hi = b;
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void min_max_avx2(const float *w, size_t n, float *lo, float *hi) {
    __m256 va = _mm256_set1_ps(w[0]), vb = va;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const __m256 x = _mm256_loadu_ps(w + i);
        va = _mm256_min_ps(va, x), vb = _mm256_max_ps(vb, x);
    }
    float la[LANES], lb[LANES];
    _mm256_storeu_ps(la, va), _mm256_storeu_ps(lb, vb);
    for (int k = 0; k < LANES; k++) *lo = la[k] < *lo ? la[k] : *lo, *hi = lb[k] > *hi ? lb[k] : *hi;
    min_max_scalar(w, i, n, lo, hi);
}
#endif

static void min_max(const float *w, size_t n, float *lo, float *hi, int vectorized) {
    *lo = *hi = w[0];
#if defined(__x86_64__)
    if (vectorized) {
        min_max_avx2(w, n, lo, hi);
        return;
    }
#endif
    min_max_scalar(w, 0, n, lo, hi);
}

/* Number of thresholds below x (thresholds ascending): the code of x. */
static inline uint32_t count_below(const float *t, uint32_t count, float x) {
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        const uint32_t mid = (lo + hi) / 2;
        if (t[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void assign_scalar(const float *w, const float *h, size_t i, size_t n, const float *entries, const float *t,
                          uint32_t levels, uint16_t *codes, double err[LANES], double werr[LANES]) {
    for (; i < n; i++) {
        const uint32_t c = count_below(t, levels - 1, w[i]);
        codes[i] = (uint16_t)c;
        const double d = (double)w[i] - (double)entries[c], dd = d * d;
        err[i % LANES] += dd;
        werr[i % LANES] += h ? (double)h[i] * dd : dd;
    }
}

#if defined(__x86_64__)
/* Codes by comparing with every threshold (at most 16) and their errors, 8 weights at a time. */
__attribute__((target("avx2")))
static void assign_avx2(const float *w, const float *h, size_t n, const float *entries, const float *t, uint32_t levels,
                        uint16_t *codes, double err[LANES], double werr[LANES]) {
    __m256d e[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, we[2] = {e[0], e[0]};
    __m256 tv[16];
    for (uint32_t k = 0; k + 1 < levels; k++) tv[k] = _mm256_set1_ps(t[k]);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const __m256 x = _mm256_loadu_ps(w + i);
        __m256i c = _mm256_setzero_si256();
        for (uint32_t k = 0; k + 1 < levels; k++)
            c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(x, tv[k], _CMP_GT_OQ)));
        store_codes8(codes + i, c);
        add_errors8(x, _mm256_i32gather_ps(entries, c, 4), h ? h + i : NULL, e, we);
    }
    _mm256_storeu_pd(err, e[0]), _mm256_storeu_pd(err + 4, e[1]), _mm256_storeu_pd(werr, we[0]);
    _mm256_storeu_pd(werr + 4, we[1]);
    assign_scalar(w, h, i, n, entries, t, levels, codes, err, werr);
}
#endif

/* Per-bin importance (count without h) and importance-weighted sum of the weights, accumulated in element order,
 * turned into prefix sums (PW[j], PS[j] over bins below j; BINS + 1 entries each). */
static void histogram(const float *w, const float *h, size_t n, float lo, float inv, double *pw, double *ps) {
    const size_t bins = BFQ_PALETTE_BINS;
    memset(pw, 0, (bins + 1) * sizeof(double));
    memset(ps, 0, (bins + 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const float t = (w[i] - lo) * inv;
        const size_t b = 1 + (t < (float)(bins - 1) ? (size_t)t : bins - 1);
        pw[b] += h ? (double)h[i] : 1.0;
        ps[b] += h ? (double)h[i] * (double)w[i] : (double)w[i];
    }
    for (size_t b = 1; b <= bins; b++) pw[b] = pw[b - 1] + pw[b], ps[b] = ps[b - 1] + ps[b];
}

/* Number of bin centres at or below m. */
static size_t centres_at_or_below(const double *centre, double m) {
    size_t lo = 0, hi = BFQ_PALETTE_BINS;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (centre[mid] <= m) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void sort_ascending(double *c, uint32_t count) {
    for (uint32_t k = 1; k < count; k++)
        for (uint32_t j = k; j > 0 && c[j] < c[j - 1]; j--) {
            const double t = c[j];
            c[j] = c[j - 1], c[j - 1] = t;
        }
}

/* Lloyd iterations on the histogram: each entry moves to the weighted mean of the bins whose centres are nearest to
 * it (bins at exact midpoints go down); an entry with no weight stays. Stops when no entry moves. */
static void lloyd(double *c, uint32_t levels, uint32_t rounds, const double *centre, const double *pw, const double *ps) {
    size_t edge[BFQ_MAX_LEVELS];
    for (uint32_t it = 0; it < rounds; it++) {
        for (uint32_t k = 0; k + 1 < levels; k++) edge[k] = centres_at_or_below(centre, (c[k] + c[k + 1]) / 2);
        edge[levels - 1] = BFQ_PALETTE_BINS;
        int moved = 0;
        for (uint32_t k = 0; k < levels; k++) {
            const size_t from = k ? edge[k - 1] : 0, to = edge[k];
            const double weight = pw[to] - pw[from];
            if (weight > 0) {
                const double mean = (ps[to] - ps[from]) / weight;
                moved |= mean != c[k];
                c[k] = mean;
            }
        }
        sort_ascending(c, levels);
        if (!moved) break;
    }
}

void bfq_palette_histogram(const float *w, const float *h, size_t n, int vectorized, bfq_palette_bins *bins) {
    static const size_t count = BFQ_PALETTE_BINS;
    float lo, hi;
    min_max(w, n, &lo, &hi, vectorized);
    const double lo64 = lo, range = (double)hi - lo64, width = range / (double)count;
    const float inv = hi > lo ? (float)((double)count / range) : 0.0f;
    histogram(w, h, n, lo, inv, bins->pw, bins->ps);
    for (size_t j = 0; j < count; j++) bins->centre[j] = lo64 + ((double)j + 0.5) * width;
}

/* Entries as stored (f16), and thresholds: the exact midpoints rounded down to f32, so x > t exactly when x lies
 * above the midpoint; each weight gets its nearest entry, ties to the lower one. */
void bfq_palette_table(const bfq_palette_params *p, float scale, const bfq_palette_bins *bins, float *entries,
                       float *t) {
    const uint32_t levels = p->levels, half = levels / 2;
    double c[BFQ_MAX_LEVELS];
    for (uint32_t k = 0; k < levels; k++) c[k] = (double)(scale * (float)((int32_t)k - (int32_t)half) + 0.0f);
    if (bins) lloyd(c, levels, p->max_iterations, bins->centre, bins->pw, bins->ps);
    for (uint32_t k = 0; k < levels; k++) {
        const float e = (float)c[k];
        entries[k] = e > BFQ_F16_MAX ? BFQ_F16_MAX : e < -BFQ_F16_MAX ? -BFQ_F16_MAX : e;
    }
    uint16_t bits[BFQ_MAX_LEVELS];
    bfq_f32_to_f16(entries, bits, levels);
    bfq_f16_to_f32(bits, entries, levels);
    for (uint32_t k = 0; k + 1 < levels; k++) {
        const double m = ((double)entries[k] + (double)entries[k + 1]) / 2;
        t[k] = (float)m;
        if ((double)t[k] > m) t[k] = nextafterf(t[k], -INFINITY);
    }
}

void bfq_palette_quantize_row(const bfq_palette_params *p, const float *w, const float *h, size_t n, float scale,
                              float *entries, uint16_t *codes, bfq_row_error *result) {
    const int vectorized = bfq_use_avx2(p->vectorized);
    const uint32_t levels = p->levels;
    double wsignal;
    *result = (bfq_row_error){0, 0, 0};
    bfq_row_stats(w, h, n, &result->signal, &wsignal, vectorized);
    bfq_palette_bins bins;
    if (n > 0) bfq_palette_histogram(w, h, n, vectorized, &bins);
    float t[BFQ_MAX_LEVELS];
    bfq_palette_table(p, scale, n > 0 ? &bins : NULL, entries, t);
    double err[LANES] = {0}, werr[LANES] = {0};
#if defined(__x86_64__)
    if (vectorized && levels <= 17) assign_avx2(w, h, n, entries, t, levels, codes, err, werr);
    else
#endif
        assign_scalar(w, h, 0, n, entries, t, levels, codes, err, werr);
    result->error = combine(err);
    result->weighted_error = combine(werr);
}
