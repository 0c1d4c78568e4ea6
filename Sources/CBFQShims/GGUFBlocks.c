#include "BFQGGUF.h"
#include "CBFQShims.h"
#include <math.h>
#include <string.h>

/* Each decoder below mirrors the order of operations of the matching gguf-py `dequantize_blocks`, one f32 rounding
 * per numpy operation (this target is compiled with -ffp-contract=off), so that the results are the same bits. */

static float half(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    float f;
    bfq_f16_to_f32(&h, &f, 1);
    return f;
}

/* Q4_0, 18 bytes: f16 d, 16 bytes of nibbles (low: elements 0-15, high: 16-31); x = d * (q - 8). */
static void q4_0(const uint8_t *b, float *y) {
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((int)(b[2 + j] & 0x0F) - 8);
        y[j + 16] = d * (float)((int)(b[2 + j] >> 4) - 8);
    }
}

/* Q4_1, 20 bytes: f16 d, f16 m, nibbles; x = d * q + m. */
static void q4_1(const uint8_t *b, float *y) {
    float d = half(b), m = half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 0x0F) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Q5_0, 22 bytes: f16 d, u32 fifth bits (bit j for element j), nibbles; x = d * (q - 16). */
static void q5_0(const uint8_t *b, float *y) {
    float d = half(b);
    uint32_t qh = le32(b + 2);
    for (int j = 0; j < 16; j++) {
        int lo = (b[6 + j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
        int hi = (b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* Q5_1, 24 bytes: f16 d, f16 m, u32 fifth bits, nibbles; x = d * q + m. */
static void q5_1(const uint8_t *b, float *y) {
    float d = half(b), m = half(b + 2);
    uint32_t qh = le32(b + 4);
    for (int j = 0; j < 16; j++) {
        int lo = (b[8 + j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
        int hi = (b[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/* Q8_0, 34 bytes: f16 d, 32 int8; x = q * d. */
static void q8_0(const uint8_t *b, float *y) {
    float d = half(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Element e of a 256-element super-block whose 2-bit fields are packed as ggml's K-quants pack them: two halves of
 * 128, each 32 bytes, field s of byte l holding element 32 s + l of the half. */
static int crumb(const uint8_t *qs, int e) {
    int h = e >> 7, s = (e >> 5) & 3, l = e & 31;
    return (qs[h * 32 + l] >> (2 * s)) & 3;
}

/* Q2_K, 84 bytes: 16 scale bytes (low nibble scale, high nibble min, per 16 elements), 64 bytes of 2-bit q, f16 d,
 * f16 dmin; x = (d * sc) * q - (dmin * m). */
static void q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *qs = b + 16;
    float d = half(b + 80), dmin = half(b + 82);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)(scales[g] & 0x0F);
        float ml = dmin * (float)(scales[g] >> 4);
        for (int i = 0; i < 16; i++) {
            int e = g * 16 + i;
            y[e] = dl * (float)crumb(qs, e) - ml;
        }
    }
}

/* Q3_K, 110 bytes: 32 bytes of high bits (bit j of byte l: element 32 j + l), 64 bytes of 2-bit q, 12 bytes of
 * sixteen 6-bit scales, f16 d; x = (d * (sc - 32)) * (q - 4 * (1 - high bit)). */
static void q3_k(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = half(b + 108);
    for (int g = 0; g < 16; g++) {
        int low = (sc[g & 7] >> (4 * (g >> 3))) & 0x0F;
        int high = (sc[8 + (g & 3)] >> (2 * (g >> 2))) & 0x03;
        float dl = d * (float)((low | (high << 4)) - 32);
        for (int i = 0; i < 16; i++) {
            int e = g * 16 + i;
            int bit = (hmask[e & 31] >> (e >> 5)) & 1;
            y[e] = dl * (float)(crumb(qs, e) - ((bit ^ 1) << 2));
        }
    }
}

/* The eight 6-bit scales and mins of Q4_K and Q5_K, packed in 12 bytes. */
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 0x3F;
        *m = s[j + 4] & 0x3F;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
        *m = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
    }
}

/* Q4_K, 144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles (sub-block j of 32: byte 32 (j / 2) + l,
 * low nibble for even j); x = (d * sc) * q - (dmin * m). */
static void q4_k(const uint8_t *b, float *y) {
    float d = half(b), dmin = half(b + 2);
    const uint8_t *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(b + 4, j, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = (qs[32 * (j >> 1) + l] >> (4 * (j & 1))) & 0x0F;
            y[32 * j + l] = dl * (float)q - ml;
        }
    }
}

/* Q5_K, 176 bytes: f16 d, f16 dmin, 12 scale bytes, 32 bytes of fifth bits (bit j of byte l), 128 bytes of nibbles. */
static void q5_k(const uint8_t *b, float *y) {
    float d = half(b), dmin = half(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(b + 4, j, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = ((qs[32 * (j >> 1) + l] >> (4 * (j & 1))) & 0x0F) | (((qh[l] >> j) & 1) << 4);
            y[32 * j + l] = dl * (float)q - ml;
        }
    }
}

/* Q6_K, 210 bytes: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, f16 d; x = (d * sc) * (q - 32). */
static void q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int e = 0; e < 256; e++) {
        int h = e >> 7, nibble = (e >> 6) & 1, k = e & 63, s = (e >> 5) & 3, l = e & 31;
        int low = (ql[h * 64 + k] >> (4 * nibble)) & 0x0F;
        int high = (qh[h * 32 + l] >> (2 * s)) & 0x03;
        float dl = d * (float)scales[e >> 4];
        y[e] = dl * (float)((low | (high << 4)) - 32);
    }
}

/* TQ1_0, 54 bytes: 48 bytes of five base-3 digits each, 4 bytes of four, f16 d. Digit p of byte v is
 * ((v * 3^p mod 256) * 3) >> 8; x = d * (digit - 1). */
static void tq1_0(const uint8_t *b, float *y) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    float d = half(b + 52);
    int e = 0;
    for (int p = 0; p < 5; p++)
        for (int l = 0; l < 32; l++, e++) y[e] = d * (float)(((uint8_t)(b[l] * pow3[p]) * 3 >> 8) - 1);
    for (int p = 0; p < 5; p++)
        for (int l = 0; l < 16; l++, e++) y[e] = d * (float)(((uint8_t)(b[32 + l] * pow3[p]) * 3 >> 8) - 1);
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 4; l++, e++) y[e] = d * (float)(((uint8_t)(b[48 + l] * pow3[p]) * 3 >> 8) - 1);
}

/* TQ2_0, 66 bytes: 64 bytes of 2-bit q packed as the K-quants pack them, f16 d; x = d * (q - 1). */
static void tq2_0(const uint8_t *b, float *y) {
    float d = half(b + 64);
    for (int e = 0; e < 256; e++) y[e] = d * (float)(crumb(b, e) - 1);
}

/* Encoders: gguf-py's `quantize_blocks`, one f32 rounding per numpy operation. */

static void put_half(uint8_t *p, float f) {
    uint16_t h;
    bfq_f32_to_f16(&f, &h, 1);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* numpy's `where(d == 0, 0, 1 / d)`. */
static float inverse(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

/* gguf-py's np_roundf: round half away from zero, as floor(a) + floor(2 (a - floor(a))) with the sign put back. */
static float round_away(float x) {
    float a = fabsf(x), floored = floorf(a);
    float r = floored + floorf(2.0f * (a - floored));
    return x < 0 ? -r : (x > 0 ? r : 0.0f * r);
}

/* numpy's `trunc(v).astype(uint8).clip(0, top)` for the non-negative v these encoders produce. */
static uint8_t code(float v, int top) {
    float t = truncf(v);
    int q = t >= 255.0f ? 255 : (t <= 0.0f ? 0 : (int)t);
    return (uint8_t)(q > top ? top : q);
}

/* The signed element of largest magnitude (the first of equals), as numpy's argmax of abs picks it. */
static float signed_max(const float *x, int n) {
    float best = x[0], magnitude = fabsf(x[0]);
    for (int j = 1; j < n; j++)
        if (fabsf(x[j]) > magnitude) { magnitude = fabsf(x[j]); best = x[j]; }
    return best;
}

static void min_max(const float *x, int n, float *lo, float *hi) {
    *lo = *hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < *lo) *lo = x[j];
        if (x[j] > *hi) *hi = x[j];
    }
}

static float abs_max(const float *x, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++) if (fabsf(x[j]) > m) m = fabsf(x[j]);
    return m;
}

static void enc_q8_0(const float *x, uint8_t *b) {
    float d = abs_max(x, 32) / 127.0f, id = inverse(d);
    put_half(b, d);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)round_away(x[j] * id);
}

/* Q4_0 and Q5_0's codes: d = (signed largest) / -half, q = trunc(x / d + half + 0.5) clipped to 2 half - 1; d goes
 * to the block's first two bytes. */
static void symmetric_fit(const float *x, int half, uint8_t *q, uint8_t *b) {
    float d = signed_max(x, 32) / -(float)half, id = inverse(d);
    for (int j = 0; j < 32; j++) q[j] = code(x[j] * id + ((float)half + 0.5f), 2 * half - 1);
    put_half(b, d);
}

/* Q4_1 and Q5_1's codes: d = (max - min) / top, q = trunc((x - min) / d + 0.5) clipped to top; d and min go to the
 * block's first four bytes. */
static void offset_fit(const float *x, int top, uint8_t *q, uint8_t *b) {
    float lo, hi;
    min_max(x, 32, &lo, &hi);
    float d = (hi - lo) / (float)top, id = inverse(d);
    for (int j = 0; j < 32; j++) q[j] = code((x[j] - lo) * id + 0.5f, top);
    put_half(b, d);
    put_half(b + 2, lo);
}

/* Two codes' low nibbles per byte: code j and code j + 16. */
static void put_nibbles(uint8_t *p, const uint8_t *q) {
    for (int j = 0; j < 16; j++) p[j] = (uint8_t)((q[j] & 0x0F) | (q[j + 16] << 4));
}

/* The fifth bits of 32 five-bit codes, bit j for code j, little-endian. */
static void put_fifth_bits(uint8_t *p, const uint8_t *q) {
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(qh >> (8 * k));
}

static void enc_q4_0(const float *x, uint8_t *b) {
    uint8_t q[32];
    symmetric_fit(x, 8, q, b);
    put_nibbles(b + 2, q);
}

static void enc_q4_1(const float *x, uint8_t *b) {
    uint8_t q[32];
    offset_fit(x, 15, q, b);
    put_nibbles(b + 4, q);
}

static void enc_q5_0(const float *x, uint8_t *b) {
    uint8_t q[32];
    symmetric_fit(x, 16, q, b);
    put_fifth_bits(b + 2, q);
    put_nibbles(b + 6, q);
}

static void enc_q5_1(const float *x, uint8_t *b) {
    uint8_t q[32];
    offset_fit(x, 31, q, b);
    put_fifth_bits(b + 4, q);
    put_nibbles(b + 8, q);
}

/* Ternary digits 0, 1, 2 of a 256-element block: round(x / max|x|) + 1. */
static float ternary(const float *x, uint8_t *t) {
    float d = abs_max(x, 256), id = inverse(d);
    for (int j = 0; j < 256; j++) t[j] = (uint8_t)((int8_t)round_away(x[j] * id) + 1);
    return d;
}

static void enc_tq1_0(const float *x, uint8_t *b) {
    static const int pow3[5] = {81, 27, 9, 3, 1};
    uint8_t t[256];
    float d = ternary(x, t);
    /* Five digits per byte (four in the last 4 bytes), as a base-3 fraction scaled to 0-255, rounded up. */
    for (int l = 0; l < 32; l++) {
        int v = 0;
        for (int p = 0; p < 5; p++) v += t[p * 32 + l] * pow3[p];
        b[l] = (uint8_t)((v * 256 + 242) / 243);
    }
    for (int l = 0; l < 16; l++) {
        int v = 0;
        for (int p = 0; p < 5; p++) v += t[160 + p * 16 + l] * pow3[p];
        b[32 + l] = (uint8_t)((v * 256 + 242) / 243);
    }
    for (int l = 0; l < 4; l++) {
        int v = 0;
        for (int p = 0; p < 4; p++) v += t[240 + p * 4 + l] * pow3[p];
        b[48 + l] = (uint8_t)((v * 256 + 242) / 243);
    }
    put_half(b + 52, d);
}

static void enc_tq2_0(const float *x, uint8_t *b) {
    uint8_t t[256];
    float d = ternary(x, t);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *u = t + h * 128 + l;
            b[h * 32 + l] = (uint8_t)(u[0] | (u[32] << 2) | (u[64] << 4) | (u[96] << 6));
        }
    put_half(b + 64, d);
}

/* K-quant encoders: ggml's reference quantizers (ggml-quants.c, quantize_row_q*_K_ref, used when no importance
 * matrix is given), reproduced operation for operation in f32 so that the blocks are the same bytes. */

/* ggml's nearest_int: round half to even by adding 1.5 * 2^23 (exact for |v| < 2^22). */
static int nearest(float v) {
    float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007FFFFF) - 0x00400000;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

static float half_round_trip(float f, uint8_t *p) {
    put_half(p, f);
    return half(p);
}

/* Codes round(iscale x) clamped to [-nmax, nmax), stored + `offset` when `codes` is given, and the x^2-weighted sums
 * of x l and l^2 that ggml's symmetric searches compare. */
static void weighted_fit(int n, int nmax, const float *x, float iscale, int8_t *codes, int offset, float *sumlx,
                         float *suml2) {
    *sumlx = *suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
        if (codes) codes[i] = (int8_t)(l + offset);
        float w = x[i] * x[i];
        *sumlx += w * x[i] * (float)l;
        *suml2 += w * (float)l * (float)l;
    }
}

/* Symmetric codes in [-nmax, nmax) for a group (ggml's make_qx_quants with x^2 weights): a scale from -nmax/max, then
 * eighteen nearby scales tried, the one maximising (sum w x l)^2 / (sum w l^2) kept. Codes are stored + nmax. */
/* The group's signed largest value; 0 with all codes 0 when the group is all (near) zero, as ggml treats it. */
static float group_max(int n, const float *x, int8_t *codes) {
    float max = signed_max(x, n);
    if (fabsf(max) >= 1e-15f) return max;
    memset(codes, 0, (size_t)n);
    return 0.0f;
}

static float symmetric_codes(int n, int nmax, const float *x, int8_t *codes) {
    float max = group_max(n, x, codes);
    if (max == 0.0f) return 0.0f;
    float sumlx, suml2;
    weighted_fit(n, nmax, x, (float)(-nmax) / max, codes, nmax, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        float iscale = -((float)nmax + 0.1f * (float)step) / max;
        weighted_fit(n, nmax, x, iscale, NULL, 0, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            weighted_fit(n, nmax, x, iscale, codes, nmax, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's group codes (ggml's make_q3_quants with rmse): codes in [-nmax, nmax) from -nmax/max, then up to five passes
 * that move single codes while that raises (sum w x l)^2 / (sum w l^2), w = x^2. Codes are stored + nmax. */
static float q3_group_codes(int n, int nmax, const float *x, int8_t *codes) {
    float max = group_max(n, x, codes);
    if (max == 0.0f) return 0.0f;
    float sumlx, suml2;
    weighted_fit(n, nmax, x, (float)(-nmax) / max, codes, 0, &sumlx, &suml2);
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)codes[i];
            if (slx > 0.0f) {
                float sl2 = suml2 - w * (float)codes[i] * (float)codes[i];
                int l = clampi(nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (l != codes[i]) {
                    slx += w * x[i] * (float)l;
                    sl2 += w * (float)l * (float)l;
                    if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        codes[i] = (int8_t)l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) codes[i] = (int8_t)(codes[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric codes in [0, nmax] with a scale and a (non-positive) offset (ggml's make_qkx2_quants): the min-max fit,
 * then nstep + 1 scale candidates, each refit by weighted least squares, kept when its weighted error (absolute or
 * squared) is lower. Returns the scale; *minimum receives minus the offset. */
static float offset_codes(int n, int nmax, const float *x, const float *weights, uint8_t *codes, float *minimum,
                          uint8_t *trial, float rmin, float rdelta, int nstep, int absolute) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.0f) min = 0.0f;
    if (max == min) {
        memset(codes, 0, (size_t)n);
        *minimum = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        codes[i] = (uint8_t)clampi(nearest(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)codes[i] + min - x[i];
        diff = absolute ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * (float)step + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(iscale * (x[i] - min)), 0, nmax);
            trial[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0.0f;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)trial[i] + this_min - x[i];
                diff = absolute ? fabsf(diff) : diff * diff;
                error += weights[i] * diff;
            }
            if (error < best_error) {
                memcpy(codes, trial, (size_t)n);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *minimum = -min;
    return scale;
}

/* The 2-bit fields of a 256-code super-block packed as the K-quant decoders read them (crumb). */
static void put_crumbs(uint8_t *qs, const uint8_t *codes) {
    for (int h = 0; h < 256; h += 128)
        for (int l = 0; l < 32; l++)
            qs[h / 4 + l] = (uint8_t)(codes[h + l] | (codes[h + l + 32] << 2) | (codes[h + l + 64] << 4) | (codes[h + l + 96] << 6));
}

static void enc_q2_k(const float *x, uint8_t *b) {
    uint8_t *scales = b, *qs = b + 16;
    uint8_t codes[256], trial[16];
    float weights[16], mins[16], group_scales[16], max_scale = 0.0f, max_min = 0.0f;
    for (int g = 0; g < 16; g++) {
        for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * g + l]);
        group_scales[g] = offset_codes(16, 3, x + 16 * g, weights, codes + 16 * g, &mins[g], trial, -0.5f, 0.1f, 15, 1);
        if (group_scales[g] > max_scale) max_scale = group_scales[g];
        if (mins[g] > max_min) max_min = mins[g];
    }
    float d = 0.0f, dmin = 0.0f;
    if (max_scale > 0.0f) {
        float iscale = 15.0f / max_scale;
        for (int g = 0; g < 16; g++) scales[g] = (uint8_t)nearest(iscale * group_scales[g]);
        d = half_round_trip(max_scale / 15.0f, b + 80);
    } else {
        memset(scales, 0, 16);
        d = half_round_trip(0.0f, b + 80);
    }
    if (max_min > 0.0f) {
        float iscale = 15.0f / max_min;
        for (int g = 0; g < 16; g++) scales[g] |= (uint8_t)(nearest(iscale * mins[g]) << 4);
        dmin = half_round_trip(max_min / 15.0f, b + 82);
    } else {
        dmin = half_round_trip(0.0f, b + 82);
    }
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)(scales[g] & 0x0F);
        if (dl == 0.0f) continue;
        float ml = dmin * (float)(scales[g] >> 4);
        for (int i = 0; i < 16; i++) codes[16 * g + i] = (uint8_t)clampi(nearest((x[16 * g + i] + ml) / dl), 0, 3);
    }
    put_crumbs(qs, codes);
}

static void enc_q3_k(const float *x, uint8_t *b) {
    uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    int8_t codes[256];
    float group_scales[16], max_scale = 0.0f, amax = 0.0f;
    for (int g = 0; g < 16; g++) {
        group_scales[g] = q3_group_codes(16, 4, x + 16 * g, codes + 16 * g);
        if (fabsf(group_scales[g]) > amax) { amax = fabsf(group_scales[g]); max_scale = group_scales[g]; }
    }
    memset(sc, 0, 12);
    float d;
    if (max_scale != 0.0f) {
        float iscale = -32.0f / max_scale;
        for (int g = 0; g < 16; g++) {
            int8_t l = (int8_t)nearest(iscale * group_scales[g]);
            l = (int8_t)(clampi(l, -32, 31) + 32);
            if (g < 8) sc[g] = (uint8_t)(l & 0x0F);
            else sc[g - 8] |= (uint8_t)((l & 0x0F) << 4);
            l >>= 4;
            sc[g % 4 + 8] |= (uint8_t)(l << (2 * (g / 4)));
        }
        d = half_round_trip(1.0f / iscale, b + 108);
    } else {
        d = half_round_trip(0.0f, b + 108);
    }
    for (int g = 0; g < 16; g++) {
        int low = g < 8 ? sc[g] & 0x0F : sc[g - 8] >> 4;
        int scale = (low | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
        float dl = d * (float)scale;
        if (dl == 0.0f) continue;
        for (int i = 0; i < 16; i++) codes[16 * g + i] = (int8_t)(clampi(nearest(x[16 * g + i] / dl), -4, 3) + 4);
    }
    memset(hmask, 0, 32);
    uint8_t low[256];
    for (int e = 0; e < 256; e++) {
        int c = codes[e];
        if (c > 3) {
            hmask[e % 32] |= (uint8_t)(1 << (e / 32));
            c -= 4;
        }
        low[e] = (uint8_t)c;
    }
    put_crumbs(qs, low);
}

/* Q4_K and Q5_K: eight groups of 32 with offset codes weighted by rms + |x|, their scales and mins stored in 6 bits
 * against two f16 super-scales; then every code recomputed from the stored scales. */
static void k4_scales(const float *x, int nmax, float rmin, int nstep, uint8_t *b, uint8_t *codes) {
    uint8_t trial[32];
    float weights[32], mins[8], group_scales[8], max_scale = 0.0f, max_min = 0.0f;
    for (int g = 0; g < 8; g++) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * g + l] * x[32 * g + l];
        float rms = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) weights[l] = rms + fabsf(x[32 * g + l]);
        group_scales[g] = offset_codes(32, nmax, x + 32 * g, weights, codes + 32 * g, &mins[g], trial, rmin, 0.1f, nstep, 0);
        if (group_scales[g] > max_scale) max_scale = group_scales[g];
        if (mins[g] > max_min) max_min = mins[g];
    }
    uint8_t *s = b + 4;
    float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    for (int g = 0; g < 8; g++) {
        uint8_t ls = (uint8_t)nearest(inv_scale * group_scales[g]);
        uint8_t lm = (uint8_t)nearest(inv_min * mins[g]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (g < 4) {
            s[g] = ls;
            s[g + 4] = lm;
        } else {
            s[g + 4] = (uint8_t)((ls & 0x0F) | ((lm & 0x0F) << 4));
            s[g - 4] |= (uint8_t)((ls >> 4) << 6);
            s[g] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    float d = half_round_trip(max_scale / 63.0f, b);
    float dmin = half_round_trip(max_min / 63.0f, b + 2);
    for (int g = 0; g < 8; g++) {
        int sc, m;
        scale_min_k4(s, g, &sc, &m);
        float dl = d * (float)sc;
        if (dl == 0.0f) continue;
        float ml = dmin * (float)m;
        for (int i = 0; i < 32; i++) codes[32 * g + i] = (uint8_t)clampi(nearest((x[32 * g + i] + ml) / dl), 0, nmax);
    }
}

static void enc_q4_k(const float *x, uint8_t *b) {
    uint8_t codes[256];
    k4_scales(x, 15, -1.0f, 20, b, codes);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (uint8_t)(codes[64 * c + l] | (codes[64 * c + l + 32] << 4));
}

static void enc_q5_k(const float *x, uint8_t *b) {
    uint8_t codes[256];
    k4_scales(x, 31, -0.5f, 15, b, codes);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = codes[64 * c + l], hi = codes[64 * c + l + 32];
            if (lo > 15) { lo -= 16; qh[l] |= (uint8_t)(1 << (2 * c)); }
            if (hi > 15) { hi -= 16; qh[l] |= (uint8_t)(2 << (2 * c)); }
            qs[32 * c + l] = (uint8_t)(lo | (hi << 4));
        }
}

static void enc_q6_k(const float *x, uint8_t *b) {
    int8_t codes[256];
    float group_scales[16], max_scale = 0.0f, max_abs = 0.0f;
    for (int g = 0; g < 16; g++) {
        group_scales[g] = symmetric_codes(16, 32, x + 16 * g, codes + 16 * g);
        if (fabsf(group_scales[g]) > max_abs) { max_abs = fabsf(group_scales[g]); max_scale = group_scales[g]; }
    }
    if (max_abs < 1e-15f) {
        memset(b, 0, 210);
        return;
    }
    int8_t *scales = (int8_t *)(b + 192);
    float iscale = -128.0f / max_scale;
    float d = half_round_trip(1.0f / iscale, b + 208);
    for (int g = 0; g < 16; g++) {
        int l = nearest(iscale * group_scales[g]);
        scales[g] = (int8_t)(l > 127 ? 127 : l);
    }
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)scales[g];
        if (dl == 0.0f) continue;
        for (int i = 0; i < 16; i++) codes[16 * g + i] = (int8_t)(clampi(nearest(x[16 * g + i] / dl), -32, 31) + 32);
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int8_t *c = codes + 128 * h + l;
            ql[64 * h + l] = (uint8_t)((c[0] & 0x0F) | ((c[64] & 0x0F) << 4));
            ql[64 * h + l + 32] = (uint8_t)((c[32] & 0x0F) | ((c[96] & 0x0F) << 4));
            qh[32 * h + l] = (uint8_t)((c[0] >> 4) | ((c[32] >> 4) << 2) | ((c[64] >> 4) << 4) | ((c[96] >> 4) << 6));
        }
}

/* Every block type this file codes: its ggml id, bytes and elements per block, decoder and encoder. */
typedef struct block_codec {
    uint32_t type;
    size_t bytes, elements;
    void (*decode)(const uint8_t *, float *);
    void (*encode)(const float *, uint8_t *);
} block_codec;

static const block_codec codecs[] = {
    {2, 18, 32, q4_0, enc_q4_0},     {3, 20, 32, q4_1, enc_q4_1},     {6, 22, 32, q5_0, enc_q5_0},
    {7, 24, 32, q5_1, enc_q5_1},     {8, 34, 32, q8_0, enc_q8_0},     {10, 84, 256, q2_k, enc_q2_k},
    {11, 110, 256, q3_k, enc_q3_k},  {12, 144, 256, q4_k, enc_q4_k},  {13, 176, 256, q5_k, enc_q5_k},
    {14, 210, 256, q6_k, enc_q6_k},  {34, 54, 256, tq1_0, enc_tq1_0}, {35, 66, 256, tq2_0, enc_tq2_0},
};

static const block_codec *codec_for(uint32_t type) {
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i].type == type) return &codecs[i];
    return NULL;
}

int bfq_gguf_dequantize(uint32_t type, const uint8_t *src, float *dst, size_t blocks) {
    const block_codec *codec = codec_for(type);
    if (!codec) return -1;
    for (size_t i = 0; i < blocks; i++) codec->decode(src + i * codec->bytes, dst + i * codec->elements);
    return 0;
}

int bfq_gguf_quantize(uint32_t type, const float *src, uint8_t *dst, size_t blocks) {
    const block_codec *codec = codec_for(type);
    if (!codec) return -1;
    for (size_t i = 0; i < blocks; i++) codec->encode(src + i * codec->elements, dst + i * codec->bytes);
    return 0;
}
