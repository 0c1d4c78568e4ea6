/* Unnamed files (CBFQShims.h). */
#define _GNU_SOURCE
#include "CBFQShims.h"
#include <errno.h>
#include <fcntl.h>

int bfq_open_unnamed(const char *directory) {
#ifdef O_TMPFILE
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
    (void)directory;
    errno = EOPNOTSUPP;
    return -1;
#endif
}
