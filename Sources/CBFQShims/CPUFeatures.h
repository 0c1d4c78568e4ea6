#ifndef BFQ_CPU_FEATURES_H
#define BFQ_CPU_FEATURES_H
/* Runtime CPU feature checks shared by the kernels (internal; not part of the module's headers). */

/* 1 when `requested` is nonzero and the CPU runs AVX2 code, else 0 (always 0 off x86_64). */
static inline int bfq_use_avx2(int requested) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2");
    }
    return requested && cached;
#else
    (void)requested;
    return 0;
#endif
}

#endif
