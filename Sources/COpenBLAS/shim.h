#ifndef BFQ_COPENBLAS_SHIM_H
#define BFQ_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
