#include "AffinityKernels.h"

#include "multiversion.h"

// Catalogue scoring for serving. The item table is stored in panels of 16 items, transposed within the panel
// (panel p holds d rows of 16 floats: item p*16+j's coordinate c at [c*16 + j]). A user's scores for a panel are
// then 16 independent sums, one FMA lane each, with no horizontal reduction; scoring U users per pass reads
// each panel once for all of them, which is what makes batched serving cheap.
// 16 floats as one value: a zmm register with AVX-512, two ymm with AVX2, four xmm otherwise.
typedef float affinity_f16x __attribute__((vector_size(64), aligned(4)));

// One panel (d x 16 floats, 4 KB at d = 64) against U users: U accumulators of 16 lanes. U = 4 keeps the
// accumulators in registers with AVX2 as well as AVX-512 (8 ymm or 4 zmm).
#define AFFINITY_SCORE_PANEL(U)                                                                         \
    static inline __attribute__((always_inline)) void score_panel_##U(                                 \
        const float *q, int32_t d, const float *users, float *out, int64_t ld_out) {                   \
        affinity_f16x acc[U];                                                                          \
        for (int32_t u = 0; u < U; u++) acc[u] = (affinity_f16x){0};                                    \
        for (int32_t c = 0; c < d; c++) {                                                              \
            const affinity_f16x qc = *(const affinity_f16x *)(q + c * 16);                             \
            for (int32_t u = 0; u < U; u++) acc[u] += users[(int64_t)u * d + c] * qc;                  \
        }                                                                                              \
        for (int32_t u = 0; u < U; u++) *(affinity_f16x *)(out + (int64_t)u * ld_out) = acc[u];        \
    }

AFFINITY_SCORE_PANEL(1)
AFFINITY_SCORE_PANEL(2)
AFFINITY_SCORE_PANEL(4)

// Panels outermost: each panel is read from memory once and stays in L1 while every user of the batch is
// scored against it, so a batch costs one pass over the item table, not one per user.
AFFINITY_MULTIVERSION
void affinity_score_panels(const float *panels, int64_t panel_count, int32_t d, const float *users, int32_t user_count,
                           float *out, int64_t ld_out) {
    for (int64_t p = 0; p < panel_count; p++) {
        const float *q = panels + p * (int64_t)d * 16;
        float *o = out + p * 16;
        int32_t u = 0;
        for (; u + 4 <= user_count; u += 4) score_panel_4(q, d, users + (int64_t)u * d, o + u * ld_out, ld_out);
        for (; u + 2 <= user_count; u += 2) score_panel_2(q, d, users + (int64_t)u * d, o + u * ld_out, ld_out);
        for (; u < user_count; u++) score_panel_1(q, d, users + (int64_t)u * d, o + u * ld_out, ld_out);
    }
}
