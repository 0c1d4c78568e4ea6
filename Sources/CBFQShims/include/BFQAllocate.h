#ifndef BFQ_ALLOCATE_H
#define BFQ_ALLOCATE_H
/// The bit allocator's dynamic-programming step (a multiple-choice knapsack over a grid of cost units).
#include <stddef.h>
#include <stdint.h>

/// One layer of the knapsack for budgets s = first ..< end: next[s] = min over candidates k with cost[k] <= s of
/// best[s - cost[k]] + value[k] (the first k on ties), pick[s] = that k; INFINITY and pick 0 where none fits.
void bfq_knapsack_step(const double *best, double *next, uint8_t *pick, size_t first, size_t end, const int64_t *cost,
                       const double *value, size_t count);

#endif
