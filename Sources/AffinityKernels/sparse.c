#include "AffinityKernels.h"
#include "prefetch.h"
#include "dot.h"

#include "multiversion.h"

// Nonzeros ahead whose X rows are prefetched (8 and 16 measured alike on Gowalla).
#define AFFINITY_PREFETCH_AHEAD 16

// acc[0..D) = Σ values[p] · X[col[p]] over the nonzeros p of row r whose column is not masked out, with the
// X rows prefetched a few nonzeros ahead.
#define AFFINITY_SPMM_ACCUMULATE_ROW(D, r, mask)                                                        \
    for (int32_t c = 0; c < D; c++) acc[c] = 0.0f;                                                      \
    for (int64_t p = row_start[r], end = row_start[(r) + 1]; p < end; p++) {                            \
        if (mask && !mask[col[p]]) continue;                                                            \
        if (p + AFFINITY_PREFETCH_AHEAD < end)                                                          \
            affinity_prefetch_row(x + (int64_t)col[p + AFFINITY_PREFETCH_AHEAD] * D, D);                 \
        const float w = values[p];                                                                      \
        const float *in = x + (int64_t)col[p] * D;                                                      \
        for (int32_t c = 0; c < D; c++) acc[c] += w * in[c];                                            \
    }

// With the width a compile-time constant, a row's accumulator lives in registers across all of the row's
// nonzeros (4 zmm for d = 64), instead of a load and store of the output row per nonzero. `mask` (skip
// columns whose X row is zero) and `sum` (also add the output row into it) serve graph propagation.
#define AFFINITY_SPMM_FIXED(D)                                                                          \
    static inline __attribute__((always_inline)) void spmm_rows_##D(                                   \
                                     const int64_t *row_start, const int32_t *col, const float *values, \
                                     const float *x, float *y, int32_t row_begin, int32_t row_end,      \
                                     float beta, const uint8_t *mask, const float *addend, float *sum) {\
        for (int32_t r = row_begin; r < row_end; r++) {                                                 \
            float acc[D];                                                                               \
            AFFINITY_SPMM_ACCUMULATE_ROW(D, r, mask)                                                    \
            float *out = y + (int64_t)r * D;                                                            \
            if (addend) {                                                                               \
                const float *ad = addend + (int64_t)r * D;                                              \
                for (int32_t c = 0; c < D; c++) acc[c] += ad[c];                                        \
            }                                                                                           \
            if (beta != 0.0f) {                                                                         \
                for (int32_t c = 0; c < D; c++) acc[c] += beta * out[c];                                \
            }                                                                                           \
            for (int32_t c = 0; c < D; c++) out[c] = acc[c];                                            \
            if (sum) {                                                                                  \
                float *s = sum + (int64_t)r * D;                                                        \
                for (int32_t c = 0; c < D; c++) s[c] += acc[c];                                         \
            }                                                                                           \
        }                                                                                               \
    }
AFFINITY_SPMM_FIXED(16)
AFFINITY_SPMM_FIXED(32)
AFFINITY_SPMM_FIXED(64)
AFFINITY_SPMM_FIXED(128)

AFFINITY_MULTIVERSION
void affinity_row_dots(const float *a, const float *b, int32_t n, int32_t d, float *out) {
    for (int32_t i = 0; i < n; i++) out[i] = affinity_dot(a + (int64_t)i * d, b + (int64_t)i * d, d);
}

AFFINITY_MULTIVERSION
void affinity_axpy(int32_t n, float alpha, const float *x, float *y) {
    for (int32_t c = 0; c < n; c++) y[c] += alpha * x[c];
}

AFFINITY_MULTIVERSION
void affinity_axpby(int64_t n, float a, const float *x, float b, const float *y, float *out) {
    if (y) {
        for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + b * y[i];
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = a * x[i];
    }
}

AFFINITY_MULTIVERSION
void affinity_mul(int64_t n, const float *x, const float *y, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * y[i];
}

AFFINITY_MULTIVERSION
void affinity_spmm_rows_ex(const int64_t *row_start, const int32_t *col, const float *values,
                           const float *x, int32_t d, float *y, int32_t row_begin, int32_t row_end,
                           float beta, const uint8_t *mask, const float *addend, float *sum) {
    // Two inlined copies per width: the plain product (options constant-folded away, so the inner loop has
    // no mask test) and the one with options.
    const int plain = !mask && !addend && !sum;
#define AFFINITY_SPMM_CASE(D)                                                                             \
    case D:                                                                                               \
        if (plain) spmm_rows_##D(row_start, col, values, x, y, row_begin, row_end, beta, 0, 0, 0);        \
        else spmm_rows_##D(row_start, col, values, x, y, row_begin, row_end, beta, mask, addend, sum);    \
        return;
    switch (d) {
    AFFINITY_SPMM_CASE(16)
    AFFINITY_SPMM_CASE(32)
    AFFINITY_SPMM_CASE(64)
    AFFINITY_SPMM_CASE(128)
    default: break;
    }
#undef AFFINITY_SPMM_CASE
    for (int32_t r = row_begin; r < row_end; r++) {
        float *restrict out = y + (int64_t)r * d;
        if (beta == 0.0f) {
            for (int32_t c = 0; c < d; c++) out[c] = 0.0f;
        } else if (beta != 1.0f) {
            for (int32_t c = 0; c < d; c++) out[c] *= beta;
        }
        for (int64_t p = row_start[r]; p < row_start[r + 1]; p++) {
            if (mask && !mask[col[p]]) continue;
            const float w = values[p];
            const float *restrict in = x + (int64_t)col[p] * d;
            for (int32_t c = 0; c < d; c++) out[c] += w * in[c];
        }
        if (addend) {
            const float *restrict ad = addend + (int64_t)r * d;
            for (int32_t c = 0; c < d; c++) out[c] += ad[c];
        }
        if (sum) {
            float *restrict s = sum + (int64_t)r * d;
            for (int32_t c = 0; c < d; c++) s[c] += out[c];
        }
    }
}

// out row i = row rows[i] of A·X, into a compact [count, D] output.
#define AFFINITY_SPMM_GATHER_FIXED(D)                                                                   \
    static inline __attribute__((always_inline)) void spmm_gather_##D(                                 \
                                       const int64_t *row_start, const int32_t *col, const float *values,\
                                       const float *x, const int32_t *rows, int32_t count, float *out) { \
        const uint8_t *no_mask = 0;                                                                     \
        for (int32_t i = 0; i < count; i++) {                                                           \
            float acc[D];                                                                               \
            AFFINITY_SPMM_ACCUMULATE_ROW(D, rows[i], no_mask)                                           \
            for (int32_t c = 0; c < D; c++) out[(int64_t)i * D + c] = acc[c];                           \
        }                                                                                               \
    }
AFFINITY_SPMM_GATHER_FIXED(16)
AFFINITY_SPMM_GATHER_FIXED(32)
AFFINITY_SPMM_GATHER_FIXED(64)
AFFINITY_SPMM_GATHER_FIXED(128)

AFFINITY_MULTIVERSION
void affinity_spmm_gather(const int64_t *row_start, const int32_t *col, const float *values,
                          const float *x, int32_t d, const int32_t *rows, int32_t count, float *out) {
    switch (d) {
    case 16: spmm_gather_16(row_start, col, values, x, rows, count, out); return;
    case 32: spmm_gather_32(row_start, col, values, x, rows, count, out); return;
    case 64: spmm_gather_64(row_start, col, values, x, rows, count, out); return;
    case 128: spmm_gather_128(row_start, col, values, x, rows, count, out); return;
    default: break;
    }
    for (int32_t i = 0; i < count; i++) {
        float *o = out + (int64_t)i * d;
        for (int32_t c = 0; c < d; c++) o[c] = 0.0f;
        for (int64_t p = row_start[rows[i]]; p < row_start[rows[i] + 1]; p++) {
            const float w = values[p];
            const float *in = x + (int64_t)col[p] * d;
            for (int32_t c = 0; c < d; c++) o[c] += w * in[c];
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_nonzero_rows(const float *x, int32_t d, int32_t begin, int32_t end, uint8_t *mask) {
    for (int32_t r = begin; r < end; r++) {
        const float *row = x + (int64_t)r * d;
        int any = 0;
        for (int32_t c = 0; c < d; c++) any |= row[c] != 0.0f;
        mask[r] = (uint8_t)any;
    }
}

void affinity_spmm_rows(const int64_t *row_start, const int32_t *col, const float *values,
                        const float *x, int32_t d, float *y, int32_t row_begin, int32_t row_end,
                        float beta) {
    affinity_spmm_rows_ex(row_start, col, values, x, d, y, row_begin, row_end, beta, 0, 0, 0);
}

AFFINITY_MULTIVERSION
void affinity_sddmm_rows(const int64_t *row_start, const int32_t *col, const float *left, const float *right,
                         int32_t d, int32_t row_begin, int32_t row_end, float *out) {
    for (int32_t r = row_begin; r < row_end; r++) {
        const float *lr = left + (int64_t)r * d;
        for (int64_t p = row_start[r], end = row_start[r + 1]; p < end; p++) {
            if (p + AFFINITY_PREFETCH_AHEAD < end) affinity_prefetch_row(right + (int64_t)col[p + AFFINITY_PREFETCH_AHEAD] * d, d);
            out[p] = affinity_dot(lr, right + (int64_t)col[p] * d, d);
        }
    }
}
