#include "CBFQShims.h"
#include "CPUFeatures.h"
#include <string.h>
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float half_to_float_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static uint16_t float_to_half_scalar(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t absu = u & 0x7FFFFFFFu;
    if (absu >= 0x7F800000u) { /* Inf or NaN: keep the top payload bits, quiet NaNs as F16C does */
        if (absu == 0x7F800000u) return sign | 0x7C00;
        return sign | 0x7E00 | (uint16_t)((absu >> 13) & 0x3FF);
    }
    if (absu >= 0x477FF000u) return sign | 0x7C00; /* rounds to >= 65536: overflow */
    if (absu < 0x38800000u) { /* result is subnormal or zero */
        float a = bits_f32(absu);
        /* adding 0.5 (2^-1) aligns the f16 subnormal step 2^-24 with the f32 ulp of 2^-1 and rounds to even */
        float r = a + 0.5f;
        return sign | (uint16_t)(f32_bits(r) - 0x3F000000u);
    }
    uint32_t mant_odd = (absu >> 13) & 1;
    absu += 0xC8000FFFu + mant_odd; /* rebias exponent (-112 << 23) and round to nearest even */
    return sign | (uint16_t)(absu >> 13);
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c")))
static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = half_to_float_scalar(src[i]);
}

__attribute__((target("avx,f16c")))
static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(src + i);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) dst[i] = float_to_half_scalar(src[i]);
}

#endif

void bfq_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if defined(__x86_64__)
    if (bfq_has_f16c()) { f16_to_f32_f16c(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = half_to_float_scalar(src[i]);
}

void bfq_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__)
    if (bfq_has_f16c()) { f32_to_f16_f16c(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = float_to_half_scalar(src[i]);
}

void bfq_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    uint32_t *out = (uint32_t *)dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)src[i] << 16;
        memcpy(out + i, &v, 4);
    }
}

void bfq_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) { dst[i] = 0xFFFF; continue; } /* NaN, as ATen's vectorised CPU path */
        u += 0x7FFFu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

void bfq_f64_to_f32(const double *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static float f8_value(uint8_t b, int e5m2) {
    int sign = b >> 7;
    float v;
    if (e5m2) {
        int exp = (b >> 2) & 0x1F, man = b & 3;
        if (exp == 0x1F) v = man ? NAN : INFINITY;
        else if (exp == 0) v = ldexpf((float)man, -16);
        else v = ldexpf(1.0f + man / 4.0f, exp - 15);
    } else { /* e4m3fn: no infinities, S.1111.111 is NaN */
        int exp = (b >> 3) & 0xF, man = b & 7;
        if (exp == 0xF && man == 7) v = NAN;
        else if (exp == 0) v = ldexpf((float)man, -9);
        else v = ldexpf(1.0f + man / 8.0f, exp - 7);
    }
    return sign ? -v : v;
}

void bfq_f8_to_f32(const uint8_t *src, float *dst, size_t n, int e5m2) {
    float table[256];
    for (int b = 0; b < 256; b++) table[b] = f8_value((uint8_t)b, e5m2);
    for (size_t i = 0; i < n; i++) dst[i] = table[src[i]];
}
