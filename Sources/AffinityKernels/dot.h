#ifndef AFFINITY_DOT_H
#define AFFINITY_DOT_H
#include <stdint.h>

// Σ_c a[c]·b[c] with 16 explicit partial sums: vectorises without -ffast-math, and every target clone adds in
// the same order (clones with FMA round each product-sum once, so the last bits may differ between instruction
// sets). Always inlined: an out-of-line copy is compiled for the default target, so the AVX clones calling it
// ran its SSE loop.
static inline __attribute__((always_inline)) float affinity_dot(const float *a, const float *b, int32_t d) {
    float acc[16] = {0};
    int32_t c = 0;
    for (; c + 16 <= d; c += 16)
        for (int32_t j = 0; j < 16; j++) acc[j] += a[c + j] * b[c + j];
    float s = 0.0f;
    for (int32_t j = 0; j < 16; j++) s += acc[j];
    for (; c < d; c++) s += a[c] * b[c];
    return s;
}

#endif
