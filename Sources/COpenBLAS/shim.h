#ifndef BFQ_COPENBLAS_SHIM_H
#define BFQ_COPENBLAS_SHIM_H
#include <cblas.h>
#include <stddef.h>

// LAPACK, as OpenBLAS exports it (Fortran calling convention; the trailing lengths are the hidden lengths of the
// character arguments, which gfortran-built LAPACKs read and OpenBLAS's own C implementations ignore).
/// Cholesky factorisation of a symmetric positive definite matrix (column-major), in place.
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_length);
/// Inverse of a triangular matrix (column-major), in place.
void strtri_(const char *uplo, const char *diag, const int *n, float *a, const int *lda, int *info, size_t uplo_length,
             size_t diag_length);
#endif
