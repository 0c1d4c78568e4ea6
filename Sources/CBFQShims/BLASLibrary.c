/* OpenBLAS loaded at run time, after OPENBLAS_CORETYPE is set from the CPU's features (see BFQBLAS.h). */
#include "include/BFQBLAS.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIBRARY "libopenblas.so.0"
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_function)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                               float *, int);
typedef void (*set_threads_function)(int);
typedef char *(*text_function)(void);
typedef void (*potrf_function)(const char *, const int *, float *, const int *, int *, size_t);
typedef void (*trtri_function)(const char *, const char *, const int *, float *, const int *, int *, size_t, size_t);

static bfq_blas_state state;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static sgemm_function sgemm;
static potrf_function spotrf;
static trtri_function strtri;

static void copy(char *destination, size_t capacity, const char *source) {
    snprintf(destination, capacity, "%s", source ? source : "");
}

/* A variable set for the load and put back after it as it was: absent, or present and empty. */
typedef struct {
    const char *name;
    int changed, was_present;
} temporary_setting;

/* Sets `name` to `value` unless the environment gives it a nonempty value. */
static void set_unless_present(temporary_setting *setting, const char *name, const char *value) {
    const char *present = getenv(name);
    setting->name = name;
    setting->changed = 0;
    if (present && *present) return;
    setting->was_present = present != NULL;
    setting->changed = setenv(name, value, 1) == 0;
}

static void restore(const temporary_setting *setting) {
    if (!setting->changed) return;
    if (setting->was_present) setenv(setting->name, "", 1);
    else unsetenv(setting->name);
}

static void *find(void *handle, const char *symbol) {
    void *address = dlsym(handle, symbol);
    if (!address && !state.error[0])
        snprintf(state.error, sizeof state.error, "%s has no function %s: not an OpenBLAS with LAPACK", LIBRARY,
                 symbol);
    return address;
}

static void load(void) {
    copy(state.library, sizeof state.library, LIBRARY);
    bfq_cpu_identity cpu;
    bfq_read_cpu_identity(&cpu);
    copy(state.cpu, sizeof state.cpu, cpu.brand);
    const char *suggested = bfq_openblas_core_for(&cpu, state.features, sizeof state.features);
    copy(state.suggested, sizeof state.suggested, suggested);
    copy(state.environment, sizeof state.environment, getenv("OPENBLAS_CORETYPE"));

    void *handle = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    state.already_loaded = handle != NULL;
    if (!handle) {
        /* OpenBLAS runs whatever kernels it is told to: ones the CPU lacks the instructions for end in SIGILL. */
        if (suggested && state.environment[0] && bfq_cpu_runs_core(&cpu, state.environment) == 0) {
            snprintf(state.error, sizeof state.error,
                     "OPENBLAS_CORETYPE=%s in the environment asks for kernels this CPU cannot run (it has %s): unset "
                     "it, or name a core type up to %s", state.environment, state.features, suggested);
            return;
        }
        temporary_setting core = {0}, threads = {0};
        if (!state.environment[0] && suggested) {
            set_unless_present(&core, "OPENBLAS_CORETYPE", suggested);
            if (core.changed) copy(state.chosen, sizeof state.chosen, suggested);
        }
        /* bfq runs OpenBLAS on one thread: spare it starting a pool of threads that would never work. */
        set_unless_present(&threads, "OPENBLAS_NUM_THREADS", "1");
        handle = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            const char *reason = dlerror();
            snprintf(state.error, sizeof state.error, "cannot load %s (OpenBLAS, Debian package libopenblas0): %s",
                     LIBRARY, reason ? reason : "unknown reason");
        }
        restore(&core);
        restore(&threads);
    }
    if (!handle) return;
    sgemm = (sgemm_function)find(handle, "cblas_sgemm");
    spotrf = (potrf_function)find(handle, "spotrf_");
    strtri = (trtri_function)find(handle, "strtri_");
    set_threads_function set_num_threads = (set_threads_function)find(handle, "openblas_set_num_threads");
    text_function corename = (text_function)find(handle, "openblas_get_corename");
    text_function config = (text_function)find(handle, "openblas_get_config");
    if (state.error[0]) return;
    set_num_threads(1);
    copy(state.corename, sizeof state.corename, corename());
    copy(state.config, sizeof state.config, config());
    state.loaded = 1;
}

const bfq_blas_state *bfq_blas_load(void) {
    pthread_once(&once, load);
    return &state;
}

void bfq_sgemm(int transpose_a, int transpose_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    sgemm(CBLAS_ROW_MAJOR, transpose_a ? CBLAS_TRANS : CBLAS_NO_TRANS, transpose_b ? CBLAS_TRANS : CBLAS_NO_TRANS, m,
          n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* LAPACK's Fortran convention: the trailing lengths are the hidden lengths of the character arguments, which
   gfortran-built LAPACKs read and OpenBLAS's own C implementations ignore. */
int bfq_spotrf_lower(int n, float *a, int lda) {
    int info = 0;
    spotrf("L", &n, a, &lda, &info, 1);
    return info;
}

int bfq_strtri_lower(int n, float *a, int lda) {
    int info = 0;
    strtri("L", "N", &n, a, &lda, &info, 1, 1);
    return info;
}
