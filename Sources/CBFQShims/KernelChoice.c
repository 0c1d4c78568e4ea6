/* Which OpenBLAS kernel set a CPU can run, from its features alone (never its model number). */
#include "include/BFQBLAS.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

enum {
    ECX1_SSE3 = 1u << 0, ECX1_SSSE3 = 1u << 9, ECX1_FMA = 1u << 12, ECX1_SSE41 = 1u << 19, ECX1_SSE42 = 1u << 20,
    ECX1_OSXSAVE = 1u << 27, ECX1_AVX = 1u << 28,
    EBX7_AVX2 = 1u << 5, EBX7_AVX512F = 1u << 16, EBX7_AVX512DQ = 1u << 17, EBX7_AVX512CD = 1u << 28,
    EBX7_AVX512BW = 1u << 30, EBX7_AVX512VL = 1u << 31,
};
#define EBX7_AVX512 (EBX7_AVX512F | EBX7_AVX512DQ | EBX7_AVX512CD | EBX7_AVX512BW | EBX7_AVX512VL)
#define EDX7_AMX_FP16 ((1u << 22) | (1u << 23) | (1u << 24) | (1u << 25)) /* AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
#define XCR0_AMX 0x60000u /* XTILECFG, XTILEDATA */
#define ECX1_SSE_ALL (ECX1_SSE3 | ECX1_SSSE3 | ECX1_SSE41 | ECX1_SSE42)
#define XCR0_YMM 0x6u   /* SSE and AVX state */
#define XCR0_ZMM 0xe6u  /* and opmask, ZMM0-15 upper halves, ZMM16-31 */

int bfq_read_cpu_identity(bfq_cpu_identity *cpu) {
    memset(cpu, 0, sizeof *cpu);
#if defined(__x86_64__)
    unsigned int eax, ebx, ecx, edx;
    __cpuid(0, eax, ebx, ecx, edx);
    const unsigned int highest = eax;
    memcpy(cpu->vendor, &ebx, 4);
    memcpy(cpu->vendor + 4, &edx, 4);
    memcpy(cpu->vendor + 8, &ecx, 4);
    if (highest >= 1) {
        __cpuid(1, eax, ebx, ecx, edx);
        cpu->leaf1_ecx = ecx;
    }
    if (highest >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        const unsigned int subleaves = eax;
        cpu->leaf7_ebx = ebx;
        cpu->leaf7_ecx = ecx;
        cpu->leaf7_edx = edx;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, eax, ebx, ecx, edx);
            cpu->leaf7_1_eax = eax;
        }
    }
    if (cpu->leaf1_ecx & ECX1_OSXSAVE) {
        unsigned int low, high;
        __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
        cpu->xcr0 = (uint64_t)high << 32 | low;
    }
    __cpuid(0x80000000u, eax, ebx, ecx, edx);
    const unsigned int extended = eax;
    if (extended >= 0x80000001u) {
        __cpuid(0x80000001u, eax, ebx, ecx, edx);
        cpu->ext1_ecx = ecx;
    }
    if (extended >= 0x80000004u) {
        unsigned int words[12];
        for (unsigned int leaf = 0; leaf < 3; leaf++)
            __cpuid(0x80000002u + leaf, words[4 * leaf], words[4 * leaf + 1], words[4 * leaf + 2], words[4 * leaf + 3]);
        memcpy(cpu->brand, words, 48);
        /* Brand strings are padded with spaces on either side. */
        size_t start = 0, end = strlen(cpu->brand);
        while (start < end && cpu->brand[start] == ' ') start++;
        while (end > start && cpu->brand[end - 1] == ' ') end--;
        memmove(cpu->brand, cpu->brand + start, end - start);
        cpu->brand[end - start] = 0;
    }
    return 1;
#else
    return 0;
#endif
}

const char *bfq_openblas_core_for(const bfq_cpu_identity *cpu, char *features, size_t capacity) {
    const uint32_t ecx1 = cpu->leaf1_ecx, ebx7 = cpu->leaf7_ebx;
    const int ymm = (ecx1 & ECX1_OSXSAVE) && (cpu->xcr0 & XCR0_YMM) == XCR0_YMM;
    const int zmm = ymm && (cpu->xcr0 & XCR0_ZMM) == XCR0_ZMM;
    const int avx = ymm && (ecx1 & ECX1_AVX);
    const int avx2_fma = avx && (ebx7 & EBX7_AVX2) && (ecx1 & ECX1_FMA);
    const int avx512_present = (ebx7 & EBX7_AVX512) == EBX7_AVX512;
    const char *core = NULL, *text = "not an x86-64 CPU";
    if (cpu->vendor[0] == 0) {
        /* no CPUID: nothing to choose */
    } else if (avx2_fma && avx512_present && zmm) {
        core = "SkylakeX", text = "AVX-512 F, DQ, CD, BW, VL; AVX2, FMA";
    } else if (avx2_fma) {
        core = "Haswell";
        text = avx512_present ? "AVX2, FMA; AVX-512 present but its registers not enabled by the operating system"
                              : "AVX2, FMA; no AVX-512";
    } else if (avx) {
        core = "Sandybridge";
        text = "AVX; no AVX2 or FMA";
    } else if ((ecx1 & ECX1_SSE42) && (ecx1 & ECX1_SSE41) && (ecx1 & ECX1_SSSE3)) {
        core = "Nehalem";
        text = (ecx1 & ECX1_AVX) ? "SSE4.2; AVX present but its registers not enabled by the operating system"
                                 : "SSE4.2; no AVX";
    } else if (ecx1 & ECX1_SSE3) {
        core = "Prescott", text = "SSE3; no SSE4.2";
    } else {
        text = "no SSE3";
    }
    if (features && capacity) snprintf(features, capacity, "%s", text);
    return core;
}

int bfq_cpu_runs_core(const bfq_cpu_identity *cpu, const char *core) {
    enum { SSE3, SSE42, AVX, AVX2, AVX512, AVX512_BF16, AVX512_AMX, SSE4A, FMA4 };
    static const struct { const char *name; int needs; } cores[] = {
        {"Katmai", SSE3}, {"Coppermine", SSE3}, {"Northwood", SSE3}, {"Prescott", SSE3}, {"Banias", SSE3},
        {"Atom", SSE42}, {"Core2", SSE42}, {"Penryn", SSE42}, {"Dunnington", SSE42}, {"Nano", SSE42},
        {"Nehalem", SSE42}, {"Sandybridge", AVX}, {"Haswell", AVX2}, {"Zen", AVX2}, {"SkylakeX", AVX512},
        {"Cooperlake", AVX512_BF16}, {"SapphireRapids", AVX512_AMX}, {"Athlon", SSE4A}, {"Opteron", SSE4A},
        {"Opteron_SSE3", SSE4A}, {"Barcelona", SSE4A}, {"Bobcat", SSE4A}, {"Bulldozer", FMA4}, {"Piledriver", FMA4},
        {"Steamroller", FMA4}, {"Excavator", FMA4},
    };
    int needs = -1;
    for (size_t i = 0; core && i < sizeof cores / sizeof cores[0]; i++)
        if (strcasecmp(core, cores[i].name) == 0) needs = cores[i].needs;
    if (needs < 0) return -1;
    const uint32_t ecx1 = cpu->leaf1_ecx, ebx7 = cpu->leaf7_ebx;
    const int ymm = (ecx1 & ECX1_OSXSAVE) && (cpu->xcr0 & XCR0_YMM) == XCR0_YMM;
    const int avx = ymm && (ecx1 & ECX1_AVX);
    const int avx2 = avx && (ebx7 & EBX7_AVX2) && (ecx1 & ECX1_FMA);
    const int avx512 = avx2 && (ebx7 & EBX7_AVX512) == EBX7_AVX512 && (cpu->xcr0 & XCR0_ZMM) == XCR0_ZMM;
    const int bf16 = avx512 && (cpu->leaf7_1_eax & (1u << 5));
    const int amx = bf16 && (cpu->leaf7_edx & EDX7_AMX_FP16) == EDX7_AMX_FP16 && (cpu->xcr0 & XCR0_AMX) == XCR0_AMX;
    switch (needs) {
    case SSE3: return (ecx1 & ECX1_SSE3) != 0;
    case SSE42: return (ecx1 & ECX1_SSE_ALL) == ECX1_SSE_ALL;
    case AVX: return avx;
    case AVX2: return avx2;
    case AVX512: return avx512;
    case AVX512_BF16: return bf16;
    case AVX512_AMX: return amx;
    case SSE4A: return (ecx1 & ECX1_SSE3) && (cpu->ext1_ecx & (1u << 6));
    default: return avx && (cpu->ext1_ecx & (1u << 16)); /* FMA4 */
    }
}
