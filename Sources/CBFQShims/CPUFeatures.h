#ifndef BFQ_CPU_FEATURES_H
#define BFQ_CPU_FEATURES_H
/* Runtime CPU feature checks shared by the kernels (internal; not part of the module's headers). The answers are
   cached in relaxed atomics: threads may ask at the same moment, and they all compute the same value. */
#include <stdatomic.h>

/* 1 when `requested` is nonzero and the CPU runs AVX2 code, else 0 (always 0 off x86_64). */
static inline int bfq_use_avx2(int requested) {
#if defined(__x86_64__)
    static atomic_int cached = -1;
    int value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return requested && value;
#else
    (void)requested;
    return 0;
#endif
}

/* 1 when the CPU converts between f16 and f32 in hardware (F16C with AVX), else 0 (always 0 off x86_64). */
static inline int bfq_has_f16c(void) {
#if defined(__x86_64__)
    static atomic_int cached = -1;
    int value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx") ? 1 : 0;
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return value;
#else
    return 0;
#endif
}

#endif
