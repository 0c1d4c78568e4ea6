/* Elementwise kernels of the reference UNet: exp, softmax, SiLU, GEGLU, and im2col. The AVX2 code performs the scalar
 * code's multiplies, adds and divides lane by lane in the same order (no fused multiply-add), so both give the same
 * bits; sums run in eight interleaved lanes in both. */
#include "CPUFeatures.h"
#include "include/BFQUNet.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF

#define EXP_HI 88.3f /* n <= 127: 2^n stays a normal f32 */
#define EXP_LO -87.3f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

static inline float exp_scalar(float x) {
    if (x != x) return x; /* NaN stays NaN */
    x = x > EXP_HI ? EXP_HI : (x < EXP_LO ? EXP_LO : x);
    const float n = nearbyintf(x * LOG2E);
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float y = P0 * r + P1;
    y = y * r + P2;
    y = y * r + P3;
    y = y * r + P4;
    y = y * r + P5;
    y = y * (r * r) + r;
    y = y + 1.0f;
    union { uint32_t u; float f; } scale = { .u = (uint32_t)((int32_t)n + 127) << 23 };
    return y * scale.f;
}

/* A&S 7.1.26 (absolute error below 1.5e-7). */
#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 -0.284496736f
#define ERF_A3 1.421413741f
#define ERF_A4 -1.453152027f
#define ERF_A5 1.061405429f
#define SQRT1_2 0.70710678118654752f

static inline float geglu_scalar(float hidden, float gate) {
    const float z = gate * SQRT1_2;
    const float a = fabsf(z);
    const float t = 1.0f / (ERF_P * a + 1.0f);
    float p = ERF_A5 * t + ERF_A4;
    p = p * t + ERF_A3;
    p = p * t + ERF_A2;
    p = p * t + ERF_A1;
    p = p * t;
    const float e = 1.0f - p * exp_scalar(-(a * a));
    const float erf = z < 0 ? -e : e;
    return hidden * (gate * 0.5f * (1.0f + erf));
}

static inline float silu_scalar(float x) { return x / (1.0f + exp_scalar(-x)); }

#if defined(__x86_64__)
__attribute__((target("avx2"), always_inline))
static inline __m256 exp_avx2(__m256 input) {
    __m256 x = _mm256_min_ps(_mm256_max_ps(input, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)));
    __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(P0), r), _mm256_set1_ps(P1));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(P2));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(P3));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(P4));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(P5));
    y = _mm256_add_ps(_mm256_mul_ps(y, _mm256_mul_ps(r, r)), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    /* NaN lanes stay NaN, as in the scalar code. */
    return _mm256_blendv_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(bits)), input, _mm256_cmp_ps(input, input, _CMP_UNORD_Q));
}

__attribute__((target("avx2")))
static void exp_rows_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = exp_scalar(x[i]);
}

__attribute__((target("avx2")))
static void silu_avx2(float *x, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(zero, v)))));
    }
    for (; i < n; i++) x[i] = silu_scalar(x[i]);
}

__attribute__((target("avx2")))
static void geglu_avx2(const float *hidden, const float *gate, float *out, size_t n) {
    size_t i = 0;
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 z = _mm256_mul_ps(g, _mm256_set1_ps(SQRT1_2));
        const __m256 a = _mm256_andnot_ps(sign, z);
        const __m256 t = _mm256_div_ps(one, _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(ERF_P), a), one));
        __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(ERF_A5), t), _mm256_set1_ps(ERF_A4));
        p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(ERF_A3));
        p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(ERF_A2));
        p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(ERF_A1));
        p = _mm256_mul_ps(p, t);
        const __m256 e = _mm256_sub_ps(one, _mm256_mul_ps(p, exp_avx2(_mm256_xor_ps(_mm256_mul_ps(a, a), sign))));
        const __m256 negative = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
        const __m256 erf = _mm256_blendv_ps(e, _mm256_xor_ps(e, sign), negative);
        const __m256 gelu = _mm256_mul_ps(_mm256_mul_ps(g, _mm256_set1_ps(0.5f)), _mm256_add_ps(one, erf));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(hidden + i), gelu));
    }
    for (; i < n; i++) out[i] = geglu_scalar(hidden[i], gate[i]);
}

__attribute__((target("avx2")))
static void softmax_row_avx2(float *x, size_t n) {
    size_t full = n / 8 * 8;
    float maximum = -INFINITY;
    if (full) {
        __m256 m = _mm256_loadu_ps(x);
        /* max(new, m) keeps m when either is NaN, as the scalar code's comparison does. */
        for (size_t i = 8; i < full; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
        float lanes[8];
        _mm256_storeu_ps(lanes, m);
        for (int k = 0; k < 8; k++) maximum = lanes[k] > maximum ? lanes[k] : maximum;
    }
    for (size_t i = full; i < n; i++) maximum = x[i] > maximum ? x[i] : maximum;
    const __m256 mv = _mm256_set1_ps(maximum);
    __m256 sums = _mm256_setzero_ps();
    for (size_t i = 0; i < full; i += 8) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sums = _mm256_add_ps(sums, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sums);
    for (size_t i = full; i < n; i++) {
        x[i] = exp_scalar(x[i] - maximum);
        lanes[i - full] += x[i];
    }
    const float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    const __m256 inverse = _mm256_set1_ps(1.0f / sum);
    for (size_t i = 0; i < full; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inverse));
    for (size_t i = full; i < n; i++) x[i] = x[i] * (1.0f / sum);
}
#endif

static void softmax_row_scalar(float *x, size_t n) {
    size_t full = n / 8 * 8;
    float maximum = -INFINITY;
    if (full) {
        float m[8];
        memcpy(m, x, sizeof m);
        for (size_t i = 8; i < full; i += 8)
            for (int k = 0; k < 8; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
        for (int k = 0; k < 8; k++) maximum = m[k] > maximum ? m[k] : maximum;
    }
    for (size_t i = full; i < n; i++) maximum = x[i] > maximum ? x[i] : maximum;
    float lanes[8] = {0};
    for (size_t i = 0; i < full; i += 8)
        for (int k = 0; k < 8; k++) {
            x[i + k] = exp_scalar(x[i + k] - maximum);
            lanes[k] += x[i + k];
        }
    for (size_t i = full; i < n; i++) {
        x[i] = exp_scalar(x[i] - maximum);
        lanes[i - full] += x[i];
    }
    const float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    const float inverse = 1.0f / sum;
    for (size_t i = 0; i < n; i++) x[i] = x[i] * inverse;
}

void bfq_exp(float *x, size_t n, int vectorized) {
#if defined(__x86_64__)
    if (bfq_use_avx2(vectorized)) { exp_rows_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = exp_scalar(x[i]);
}

void bfq_softmax_rows(float *x, size_t rows, size_t columns, size_t stride, int vectorized) {
    for (size_t r = 0; r < rows; r++) {
#if defined(__x86_64__)
        if (bfq_use_avx2(vectorized)) { softmax_row_avx2(x + r * stride, columns); continue; }
#endif
        softmax_row_scalar(x + r * stride, columns);
    }
}

void bfq_silu(float *x, size_t n, int vectorized) {
#if defined(__x86_64__)
    if (bfq_use_avx2(vectorized)) { silu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = silu_scalar(x[i]);
}

void bfq_geglu(const float *hidden, const float *gate, float *out, size_t n, int vectorized) {
#if defined(__x86_64__)
    if (bfq_use_avx2(vectorized)) { geglu_avx2(hidden, gate, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = geglu_scalar(hidden[i], gate[i]);
}

void bfq_im2col(const float *input, size_t channel_stride, size_t height, size_t width, size_t kernel, size_t stride,
                size_t pad, size_t out_h, size_t out_w, size_t first_channel, size_t channels, size_t first_column,
                size_t columns, float *cols) {
    const size_t plane = out_h * out_w;
    for (size_t c = 0; c < channels; c++) {
        const float *channel = input + (first_channel + c) * channel_stride;
        for (size_t ky = 0; ky < kernel; ky++) {
            for (size_t kx = 0; kx < kernel; kx++) {
                float *row = cols + ((c * kernel + ky) * kernel + kx) * columns;
                size_t j = first_column, b = j / plane, p = j % plane, y = p / out_w, x = p % out_w;
                for (size_t i = 0; i < columns; i++) {
                    const ptrdiff_t iy = (ptrdiff_t)(y * stride + ky) - (ptrdiff_t)pad;
                    const ptrdiff_t ix = (ptrdiff_t)(x * stride + kx) - (ptrdiff_t)pad;
                    row[i] = (iy >= 0 && iy < (ptrdiff_t)height && ix >= 0 && ix < (ptrdiff_t)width)
                        ? channel[b * height * width + (size_t)iy * width + (size_t)ix] : 0.0f;
                    if (++x == out_w) {
                        x = 0;
                        if (++y == out_h) { y = 0; b++; }
                    }
                }
            }
        }
    }
}
