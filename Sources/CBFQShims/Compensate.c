#include "BFQCompensate.h"
#include <math.h>

/// The nearest level of `x` and its code.
static inline float nearest(const bfq_compensate_params *p, float x, const float *values, uint32_t scale, uint16_t *code) {
    if (!p->palette) {
        float s = values[scale];
        if (s == 0.0f) {
            *code = (uint16_t)p->half;
            return 0.0f;
        }
        float q = rintf(x / s);
        if (q < (float)-p->half) q = (float)-p->half;
        if (q > (float)p->qmax) q = (float)p->qmax;
        *code = (uint16_t)((int32_t)q + p->half);
        return s * q + 0.0f;
    }
    // First entry >= x, then the nearer of it and the one below (ties to the lower).
    uint32_t lo = 0, hi = p->levels;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (values[mid] < x) lo = mid + 1; else hi = mid;
    }
    uint32_t k = lo;
    if (k == p->levels) k = p->levels - 1;
    else if (k > 0 && x - values[k - 1] <= values[k] - x) k -= 1;
    *code = (uint16_t)k;
    return values[k];
}

int bfq_compensate_row(const bfq_compensate_params *params, float *w, const float *u, size_t ldu, size_t count,
                       const float *values, const uint32_t *scale_index, uint16_t *codes, float *errors) {
    for (size_t i = 0; i < count; i++) {
        const float *ui = u + i * ldu;
        float pivot = ui[i];
        if (!isfinite(w[i]) || !(pivot > 0.0f) || !isfinite(pivot)) return -1;
        float level = nearest(params, w[i], values, scale_index ? scale_index[i] : 0, &codes[i]);
        float e = (w[i] - level) / pivot;
        errors[i] = e;
        for (size_t j = i + 1; j < count; j++) w[j] -= e * ui[j];
    }
    return 0;
}
