#include "AffinityKernels.h"
#include <math.h>
#include "prefetch.h"

#include "multiversion.h"

// sqrt without errno semantics, so the loop vectorises without -fno-math-errno.
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
#define AFFINITY_SQRT(x) __builtin_elementwise_sqrt(x)
#endif
#endif
#ifndef AFFINITY_SQRT
#define AFFINITY_SQRT(x) sqrtf(x)
#endif

// Kingma & Ba (2015), Algorithm 1, with the bias corrections folded into step_size and correction2.
static inline void adam_span(float *restrict x, const float *restrict g, float *restrict m, float *restrict v,
                             int64_t n, affinity_adam_params p) {
    const float b1 = p.beta1, b2 = p.beta2, one_b1 = 1.0f - p.beta1, one_b2 = 1.0f - p.beta2;
    const float inv_c2 = 1.0f / p.correction2, wd = p.weight_decay, decay = p.learning_rate * p.weight_decay;
    for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        float grad = g[i];
        if (p.decoupled) xi -= decay * xi; else grad += wd * xi;
        float mi = b1 * m[i] + one_b1 * grad;
        float vi = b2 * v[i] + one_b2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        x[i] = xi - p.step_size * mi / (AFFINITY_SQRT(vi * inv_c2) + p.epsilon);
    }
}

AFFINITY_MULTIVERSION
void affinity_adam_rows(float *x, float *mv, const int32_t *rows, int32_t first, const float *grads,
                        int32_t count, int32_t d, affinity_adam_params p) {
    const int32_t ahead = 4;  // rows are scattered: fetch a few updates ahead
    for (int32_t k = 0; k < count; k++) {
        if (rows && k + ahead < count) {
            int64_t next = (int64_t)rows[k + ahead];
            affinity_prefetch_row_for_write(x + next * d, d);
            affinity_prefetch_row_for_write(mv + next * 2 * d, 2 * d);
        }
        int64_t r = rows ? (int64_t)rows[k] : (int64_t)first + k;
        float *m = mv + r * 2 * d;
        adam_span(x + r * d, grads + (int64_t)k * d, m, m + d, d, p);
    }
}

AFFINITY_MULTIVERSION
void affinity_sgd_rows(float *x, const int32_t *rows, const float *grads, int32_t count, int32_t d,
                       float learning_rate, float weight_decay) {
    for (int32_t k = 0; k < count; k++) {
        if (k + 4 < count) affinity_prefetch_row_for_write(x + (int64_t)rows[k + 4] * d, d);
        float *xr = x + (int64_t)rows[k] * d;
        const float *g = grads + (int64_t)k * d;
        for (int32_t c = 0; c < d; c++) xr[c] -= learning_rate * (g[c] + weight_decay * xr[c]);
    }
}

AFFINITY_MULTIVERSION
void affinity_sgd_scatter(float *x, const int32_t *rows, const float *grads, int32_t count, int32_t d,
                          float learning_rate, int32_t row_begin, int32_t row_end) {
    for (int32_t k = 0; k < count; k++) {
        const int32_t r = rows[k];
        if (r < row_begin || r >= row_end) continue;
        float *xr = x + (int64_t)r * d;
        const float *g = grads + (int64_t)k * d;
        for (int32_t c = 0; c < d; c++) xr[c] -= learning_rate * g[c];
    }
}

