#ifndef BFQ_BLAS_H
#define BFQ_BLAS_H
/// OpenBLAS, loaded at run time with its kernels chosen from the CPU's features, and the calls bfq makes into it.
///
/// OpenBLAS picks its kernels once, when it loads, from the CPU's model number (or OPENBLAS_CORETYPE): a CPU whose
/// model it does not know gets its SSE3 kernels whatever the CPU supports. bfq therefore does not link OpenBLAS: it
/// reads the CPU's features, sets OPENBLAS_CORETYPE to the kernel set they allow unless the environment already sets
/// it, and only then loads the library.
#include <stddef.h>
#include <stdint.h>

/// The x86-64 CPUID and XCR0 values the kernel choice reads (all zero elsewhere).
typedef struct bfq_cpu_identity {
    char vendor[13];     /// CPUID leaf 0, e.g. "GenuineIntel"
    char brand[49];      /// CPUID leaves 0x80000002-4, e.g. "Intel(R) Xeon(R) Processor", "" when absent
    uint32_t leaf1_ecx;  /// CPUID leaf 1: SSE3, SSSE3, FMA, SSE4.1/4.2, OSXSAVE, AVX
    uint32_t leaf7_ebx;  /// CPUID leaf 7 subleaf 0: AVX2, AVX-512 F/DQ/CD/BW/VL
    uint32_t leaf7_ecx;  /// CPUID leaf 7 subleaf 0: AVX-512 VNNI
    uint32_t leaf7_edx;  /// CPUID leaf 7 subleaf 0: AMX, AVX-512 FP16
    uint32_t leaf7_1_eax; /// CPUID leaf 7 subleaf 1: AVX-512 BF16
    uint32_t ext1_ecx;   /// CPUID leaf 0x80000001: SSE4a, FMA4 (AMD)
    uint64_t xcr0;       /// register state the operating system saves (XGETBV 0), 0 without OSXSAVE
} bfq_cpu_identity;

/// Reads this CPU's identity; returns 0 off x86-64 (and leaves `cpu` zeroed).
int bfq_read_cpu_identity(bfq_cpu_identity *cpu);

/// The OpenBLAS core type whose kernels the CPU's features and the operating system allow: "SkylakeX" (AVX-512 F, DQ,
/// CD, BW, VL with ZMM state saved), "Haswell" (AVX2 and FMA), "Sandybridge" (AVX), "Nehalem" (SSE4.2), "Prescott"
/// (SSE3), or NULL when there is nothing to choose (not x86-64). `features` receives the features the choice rests
/// on, e.g. "AVX2, FMA; no AVX-512".
const char *bfq_openblas_core_for(const bfq_cpu_identity *cpu, char *features, size_t capacity);

/// Whether the CPU has the instructions an OpenBLAS x86-64 core type's kernels use (name case ignored): 1 yes, 0 no,
/// -1 for a name bfq does not know (OpenBLAS 0.3.21 falls back to its own choice on names it does not know either).
/// SSE3 for Katmai .. Banias, SSE4.2 for Atom .. Nehalem, AVX (Sandybridge), AVX2 and FMA (Haswell, Zen), AVX-512
/// (SkylakeX), with BF16 (Cooperlake), with AMX and FP16 (SapphireRapids), SSE4a (Opteron .. Bobcat), FMA4
/// (Bulldozer .. Excavator), each with the register state the system saves.
int bfq_cpu_runs_core(const bfq_cpu_identity *cpu, const char *core);

/// What loading OpenBLAS did. Strings are empty when they do not apply.
typedef struct bfq_blas_state {
    int loaded;                 /// 1 when the library and every function bfq calls were found
    char error[512];            /// why not, when not
    char library[64];           /// the file loaded: "libopenblas.so.0"
    char chosen[32];            /// the core type bfq set in OPENBLAS_CORETYPE before loading
    char suggested[32];         /// the core type the CPU's features allow (also when the environment decided)
    char features[160];         /// the features the suggestion rests on
    char environment[64];       /// OPENBLAS_CORETYPE as the environment set it
    int already_loaded;         /// 1 when the process had loaded OpenBLAS before bfq asked (its kernels were chosen then)
    char corename[32];          /// the kernels OpenBLAS runs (openblas_get_corename)
    char config[160];           /// openblas_get_config, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
    char cpu[49];               /// the CPU's brand string
} bfq_blas_state;

/// Loads OpenBLAS once (later calls return the first call's outcome) and sets it to one thread: bfq splits products
/// into tiles of its own (MatrixProduct). Call it before other threads read the environment: it sets and restores
/// OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS around the load.
const bfq_blas_state *bfq_blas_load(void);

/// Row-major C = alpha op(A) op(B) + beta C (cblas_sgemm); requires a successful bfq_blas_load.
void bfq_sgemm(int transpose_a, int transpose_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/// LAPACK spotrf on the lower triangle of the column-major n x n `a` (Cholesky factor in place); returns info.
int bfq_spotrf_lower(int n, float *a, int lda);

/// LAPACK strtri on the lower, non-unit triangle of the column-major n x n `a` (inverse in place); returns info.
int bfq_strtri_lower(int n, float *a, int lda);
#endif
