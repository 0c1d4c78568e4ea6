/* Allocator settings (CBFQShims.h). */
#include "CBFQShims.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void bfq_reuse_freed_blocks(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
