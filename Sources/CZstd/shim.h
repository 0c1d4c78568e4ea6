#ifndef BFQ_CZSTD_SHIM_H
#define BFQ_CZSTD_SHIM_H
#include <zstd.h>
#endif
