#include "AffinityKernels.h"
#include "prefetch.h"

// Triples ahead whose rows are prefetched.
#define AFFINITY_BPR_AHEAD 4

#include "multiversion.h"

AFFINITY_MULTIVERSION
void affinity_bpr_forward(const float *user_table, const float *item_table, const int32_t *users,
                          const int32_t *pos, const int32_t *neg, int32_t n, int32_t d, float *diff) {
    for (int32_t k = 0; k < n; k++) {
        if (k + AFFINITY_BPR_AHEAD < n) {
            affinity_prefetch_row(user_table + (int64_t)users[k + AFFINITY_BPR_AHEAD] * d, d);
            affinity_prefetch_row(item_table + (int64_t)pos[k + AFFINITY_BPR_AHEAD] * d, d);
            affinity_prefetch_row(item_table + (int64_t)neg[k + AFFINITY_BPR_AHEAD] * d, d);
        }
        const float *u = user_table + (int64_t)users[k] * d;
        const float *i = item_table + (int64_t)pos[k] * d;
        const float *j = item_table + (int64_t)neg[k] * d;
        // ⟨u, i − j⟩ with 16 explicit lanes (vectorises; same order in every clone).
        float acc[16] = {0};
        int32_t c = 0;
        for (; c + 16 <= d; c += 16)
            for (int32_t l = 0; l < 16; l++) acc[l] += u[c + l] * (i[c + l] - j[c + l]);
        float s = 0.0f;
        for (int32_t l = 0; l < 16; l++) s += acc[l];
        for (; c < d; c++) s += u[c] * (i[c] - j[c]);
        diff[k] = s;
    }
}

AFFINITY_MULTIVERSION
void affinity_bpr_backward(const float *user_table, const float *item_table, const int32_t *users,
                           const int32_t *pos, const int32_t *neg, int32_t n, int32_t d, const float *coef,
                           float *du, float *dpos, float *dneg) {
    for (int32_t k = 0; k < n; k++) {
        if (k + AFFINITY_BPR_AHEAD < n) {
            affinity_prefetch_row(user_table + (int64_t)users[k + AFFINITY_BPR_AHEAD] * d, d);
            affinity_prefetch_row(item_table + (int64_t)pos[k + AFFINITY_BPR_AHEAD] * d, d);
            affinity_prefetch_row(item_table + (int64_t)neg[k + AFFINITY_BPR_AHEAD] * d, d);
        }
        const float *u = user_table + (int64_t)users[k] * d;
        const float *i = item_table + (int64_t)pos[k] * d;
        const float *j = item_table + (int64_t)neg[k] * d;
        const float a = coef[k];
        float *gu = du + (int64_t)k * d, *gi = dpos + (int64_t)k * d, *gj = dneg + (int64_t)k * d;
        for (int32_t c = 0; c < d; c++) {
            gu[c] = a * (i[c] - j[c]);
            gi[c] = a * u[c];
            gj[c] = -a * u[c];
        }
    }
}
