/* The bit allocator's knapsack step (BFQAllocate.h). */
#include "BFQAllocate.h"
#include <math.h>

void bfq_knapsack_step(const double *best, double *next, uint8_t *pick, size_t first, size_t end, const int64_t *cost,
                       const double *value, size_t count) {
    for (size_t s = first; s < end; s++) {
        double least = INFINITY;
        uint8_t which = 0;
        for (size_t k = 0; k < count; k++) {
            if (cost[k] > (int64_t)s) continue;
            const double v = best[s - (size_t)cost[k]] + value[k];
            if (v < least) least = v, which = (uint8_t)k;
        }
        next[s] = least;
        pick[s] = which;
    }
}
