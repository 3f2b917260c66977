#include "AffinityKernels.h"
#include "prefetch.h"
#include "dot.h"

#include "multiversion.h"

// iALS row solves (Hu, Koren & Volinsky, ICDM 2008; Rendle et al., RecSys 2022). Row r of X minimises
//     Σ_{p ∈ row r} c_p (1 − ⟨x, y_p⟩)²  +  α0 Σ_{j ∉ row r} ⟨x, y_j⟩²  +  λ_r ‖x‖²
// whose normal equations are (Hu et al., eq. 4, with the unobserved weight α0 in place of 1)
//     A x = b,  A = α0·YᵀY + Σ_p (c_p − α0) y_p y_pᵀ + λ_r I,  b = Σ_p c_p y_p.
// The caller passes gramian = α0·YᵀY, computed once per half-step; a row then costs O(d² + n_r·d) per
// product with A (conjugate gradient) or O(n_r·d² + d³) to form and factor A (Cholesky).

// Nonzeros ahead whose Y rows are prefetched in a row's first pass (later passes find them in L1/L2).
#define AFFINITY_IALS_PREFETCH_AHEAD 8
// Nonzeros of the next row whose Y rows are prefetched while a row is solved.
#define AFFINITY_IALS_PREFETCH_NEXT_ROW 64

// The fixed widths (d = 16, 32, 64, 128, 256) work on the row's vectors as d/16 vectors of 16 floats (GCC/Clang
// vector extensions): each clone maps them onto its registers (one zmm, two ymm or four xmm each), and the
// accumulators of a row's passes stay in registers instead of being stored and reloaded per nonzero.
// The helpers taking and returning these vectors are always inlined, so the calling-convention warning for
// 64-byte vectors in the clones without AVX-512 concerns no real call.
#pragma clang diagnostic ignored "-Wpsabi"
typedef float ials_v16 __attribute__((vector_size(64)));
typedef float ials_v16_unaligned __attribute__((vector_size(64), aligned(4)));
typedef float ials_v8 __attribute__((vector_size(32)));
typedef float ials_v4 __attribute__((vector_size(16)));
#define IALS_MAX_BLOCKS 16  // d = 256

static inline __attribute__((always_inline)) ials_v16 ials_load(const float *p) { return *(const ials_v16_unaligned *)p; }
static inline __attribute__((always_inline)) void ials_store(float *p, ials_v16 v) { *(ials_v16_unaligned *)p = v; }

// The sum of the 16 lanes by halving (8 + 8, 4 + 4, …): a short dependency chain, the same order in every clone.
static inline __attribute__((always_inline)) float ials_sum(ials_v16 v) {
    const ials_v8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                      __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const ials_v4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    return (q[0] + q[2]) + (q[1] + q[3]);
}

// ⟨y, v⟩ for a row y in memory and v in `blocks` vectors: two independent multiply-add chains.
static inline __attribute__((always_inline)) float ials_dot_row(const float *y, const ials_v16 *v, int32_t blocks) {
    ials_v16 even = ials_load(y) * v[0], odd = {0};
    for (int32_t q = 1; q < blocks; q++) {
        if (q & 1) odd += ials_load(y + 16 * q) * v[q];
        else even += ials_load(y + 16 * q) * v[q];
    }
    return ials_sum(even + odd);
}

static inline __attribute__((always_inline)) float ials_dot_blocks(const ials_v16 *a, const ials_v16 *b, int32_t blocks) {
    ials_v16 acc = a[0] * b[0];
    for (int32_t q = 1; q < blocks; q++) acc += a[q] * b[q];
    return ials_sum(acc);
}

// out = G·v + λ·v for the symmetric gramian G (row-major): Σ_k v[k]·G[k, :], so that the accumulators run along
// contiguous rows of G; even and odd k go to separate accumulators (twice the independent chains).
static inline __attribute__((always_inline)) void ials_gramian_times(const float *gramian, const ials_v16 *v,
                                                                     float lambda, int32_t blocks, ials_v16 *out) {
    float scalars[16 * IALS_MAX_BLOCKS];
    ials_v16 even[IALS_MAX_BLOCKS], odd[IALS_MAX_BLOCKS];
    for (int32_t q = 0; q < blocks; q++) {
        ials_store(scalars + 16 * q, v[q]);
        even[q] = lambda * v[q];
        odd[q] = (ials_v16){0};
    }
    const int32_t d = 16 * blocks;
    for (int32_t k = 0; k < d; k += 2) {
        const float *g0 = gramian + (int64_t)k * d, *g1 = g0 + d;
        const float v0 = scalars[k], v1 = scalars[k + 1];
        for (int32_t q = 0; q < blocks; q++) {
            even[q] += v0 * ials_load(g0 + 16 * q);
            odd[q] += v1 * ials_load(g1 + 16 * q);
        }
    }
    for (int32_t q = 0; q < blocks; q++) out[q] = even[q] + odd[q];
}

// Rows [row_begin, row_end) by conjugate gradient, d = 16·blocks, started from each row's current x (a warm
// start: after the first iterations a few steps suffice, as in Takács et al. 2011 and the `implicit` library).
// A·v is never formed as a matrix:  A·v = G·v + λ v + Σ_p (c_p − α0)⟨y_p, v⟩ y_p.
// The scores s_p = ⟨x, y_p⟩ are kept up to date in `scores` as x moves (s_p += step·⟨dir, y_p⟩, from the
// products each step computes anyway), so the row's share of the objective needs no further pass.
static inline __attribute__((always_inline)) void ials_cg_rows_fixed(const int32_t blocks, const affinity_ials_problem *pr,
                                                                     float *x, int64_t row_begin, int64_t row_end,
                                                                     double *row_loss, float *scores, float *directions) {
    const int32_t d = 16 * blocks;
    const int64_t *row_start = pr->row_start;
    const float *other = pr->other;
    const float a0 = pr->unobserved;
    for (int64_t r = row_begin; r < row_end; r++) {
        float *xr = x + r * d;
        const int64_t lo = row_start[r], n = row_start[r + 1] - lo;
        const int32_t *cols = pr->col + lo;
        const float *conf = pr->confidence + lo;
        const float lambda = pr->regularization[r];
        // The next row's Y rows into L2 while this row is solved (its own first pass then finds them near), the
        // first few into L1: that pass reaches them before its own prefetches do.
        if (r + 1 < row_end) {
            const int64_t next = row_start[r + 1], next_end = row_start[r + 2];
            for (int64_t p = next; p < next_end && p < next + AFFINITY_IALS_PREFETCH_NEXT_ROW; p++) {
                const float *y = other + (int64_t)pr->col[p] * d;
                if (p < next + AFFINITY_IALS_PREFETCH_AHEAD) affinity_prefetch_row(y, d);
                else for (int32_t c = 0; c < d; c += 16) __builtin_prefetch(y + c, 0, 2);
            }
        }
        ials_v16 xv[IALS_MAX_BLOCKS], res[IALS_MAX_BLOCKS], dir[IALS_MAX_BLOCKS], ad[IALS_MAX_BLOCKS];
        for (int32_t q = 0; q < blocks; q++) { xv[q] = ials_load(xr + 16 * q); res[q] = (ials_v16){0}; }
        // res = b − A·x, the items' part in one pass: Σ_p (c_p − (c_p − α0)⟨y_p, x⟩) y_p.
        for (int64_t p = 0; p < n; p++) {
            if (p + AFFINITY_IALS_PREFETCH_AHEAD < n)
                affinity_prefetch_row(other + (int64_t)cols[p + AFFINITY_IALS_PREFETCH_AHEAD] * d, d);
            const float *y = other + (int64_t)cols[p] * d;
            const float s = ials_dot_row(y, xv, blocks);
            scores[p] = s;
            const float coef = conf[p] - (conf[p] - a0) * s;
            for (int32_t q = 0; q < blocks; q++) res[q] += coef * ials_load(y + 16 * q);
        }
        ials_gramian_times(pr->gramian, xv, lambda, blocks, ad);
        for (int32_t q = 0; q < blocks; q++) { res[q] -= ad[q]; dir[q] = res[q]; }
        float rs = ials_dot_blocks(res, res, blocks);
        for (int32_t step = 0; step < pr->cg_steps && rs > 1e-20f; step++) {
            ials_gramian_times(pr->gramian, dir, lambda, blocks, ad);
            for (int64_t p = 0; p < n; p++) {
                const float *y = other + (int64_t)cols[p] * d;
                const float t = ials_dot_row(y, dir, blocks);
                directions[p] = t;
                const float coef = (conf[p] - a0) * t;
                for (int32_t q = 0; q < blocks; q++) ad[q] += coef * ials_load(y + 16 * q);
            }
            const float curvature = ials_dot_blocks(dir, ad, blocks);
            if (!(curvature > 0.0f)) break;
            const float step_size = rs / curvature;
            for (int32_t q = 0; q < blocks; q++) {
                xv[q] += step_size * dir[q];
                res[q] -= step_size * ad[q];
            }
            for (int64_t p = 0; p < n; p++) scores[p] += step_size * directions[p];
            const float rs_next = ials_dot_blocks(res, res, blocks);
            const float beta = rs_next / rs;
            for (int32_t q = 0; q < blocks; q++) dir[q] = res[q] + beta * dir[q];
            rs = rs_next;
        }
        for (int32_t q = 0; q < blocks; q++) ials_store(xr + 16 * q, xv[q]);
        if (row_loss) {
            float loss = 0.0f;
            for (int64_t p = 0; p < n; p++) loss += conf[p] * (1.0f - scores[p]) * (1.0f - scores[p]) - a0 * scores[p] * scores[p];
            row_loss[r] = (double)loss + (double)lambda * ials_dot_blocks(xv, xv, blocks);
        }
    }
}

// The row's share of the objective at its new x: Σ_p [c_p (1 − s_p)² − α0 s_p²] + λ‖x‖², s_p = ⟨x, y_p⟩. The
// caller adds α0·Σ_r xᵣᵀ(YᵀY)xᵣ = α0·⟨XᵀX, YᵀY⟩ for the all-pairs term.
static inline __attribute__((always_inline)) double ials_row_loss(const affinity_ials_problem *pr, const float *x,
                                                                  int32_t d, int64_t lo, int64_t hi, float lambda) {
    double loss = (double)lambda * affinity_dot(x, x, d);
    for (int64_t p = lo; p < hi; p++) {
        const double s = affinity_dot(pr->other + (int64_t)pr->col[p] * d, x, d);
        const double c = pr->confidence[p];
        loss += c * (1.0 - s) * (1.0 - s) - (double)pr->unobserved * s * s;
    }
    return loss;
}


// Any other width: the same steps on vectors in the workspace.
static inline __attribute__((always_inline)) void ials_cg_rows_any(const affinity_ials_problem *pr, float *x,
                                                                   int64_t row_begin, int64_t row_end,
                                                                   double *row_loss, float *workspace) {
    const int32_t d = pr->d;
    const float *gramian = pr->gramian, *other = pr->other, *conf = pr->confidence;
    const float a0 = pr->unobserved;
    float *res = workspace, *dir = workspace + d, *ad = workspace + 2 * d;
    for (int64_t r = row_begin; r < row_end; r++) {
        float *xv = x + r * d;
        const int64_t lo = pr->row_start[r], hi = pr->row_start[r + 1];
        const float lambda = pr->regularization[r];
        for (int32_t c = 0; c < d; c++) res[c] = 0.0f;
        for (int64_t p = lo; p < hi; p++) {
            const float *y = other + (int64_t)pr->col[p] * d;
            const float coef = conf[p] - (conf[p] - a0) * affinity_dot(y, xv, d);
            for (int32_t c = 0; c < d; c++) res[c] += coef * y[c];
        }
        for (int32_t c = 0; c < d; c++) ad[c] = 0.0f;
        for (int32_t k = 0; k < d; k++) {
            const float vk = xv[k];
            for (int32_t c = 0; c < d; c++) ad[c] += vk * gramian[(int64_t)k * d + c];
        }
        for (int32_t c = 0; c < d; c++) res[c] -= ad[c] + lambda * xv[c];
        for (int32_t c = 0; c < d; c++) dir[c] = res[c];
        float rs = affinity_dot(res, res, d);
        for (int32_t step = 0; step < pr->cg_steps && rs > 1e-20f; step++) {
            for (int32_t c = 0; c < d; c++) ad[c] = lambda * dir[c];
            for (int32_t k = 0; k < d; k++) {
                const float vk = dir[k];
                for (int32_t c = 0; c < d; c++) ad[c] += vk * gramian[(int64_t)k * d + c];
            }
            for (int64_t p = lo; p < hi; p++) {
                const float *y = other + (int64_t)pr->col[p] * d;
                const float coef = (conf[p] - a0) * affinity_dot(y, dir, d);
                for (int32_t c = 0; c < d; c++) ad[c] += coef * y[c];
            }
            const float curvature = affinity_dot(dir, ad, d);
            if (!(curvature > 0.0f)) break;
            const float step_size = rs / curvature;
            for (int32_t c = 0; c < d; c++) {
                xv[c] += step_size * dir[c];
                res[c] -= step_size * ad[c];
            }
            const float rs_next = affinity_dot(res, res, d);
            const float beta = rs_next / rs;
            for (int32_t c = 0; c < d; c++) dir[c] = res[c] + beta * dir[c];
            rs = rs_next;
        }
        if (row_loss) row_loss[r] = ials_row_loss(pr, xv, d, lo, hi, lambda);
    }
}

// Exact solves: A formed in the workspace (lower triangle; rank-one updates per nonzero), factored A = L·Lᵀ in
// double precision, then two triangular solves. Returns 0, or 1 + r for the first row whose A is not
// (numerically) positive definite, which regularisation rules out.
static inline __attribute__((always_inline)) int64_t ials_cholesky_rows(const affinity_ials_problem *pr, float *x,
                                                                        int64_t row_begin, int64_t row_end,
                                                                        double *row_loss, float *workspace) {
    const int32_t d = pr->d;
    const float a0 = pr->unobserved;
    float *a = workspace, *b = workspace + (int64_t)d * d;
    // The doubles start 8-byte aligned after a·b (the header's workspace size leaves room for it).
    double *l = (double *)(((uintptr_t)(workspace + (int64_t)d * d + d) + 7) & ~(uintptr_t)7);
    double *z = l + (int64_t)d * d;
    for (int64_t r = row_begin; r < row_end; r++) {
        const int64_t lo = pr->row_start[r], hi = pr->row_start[r + 1];
        const float lambda = pr->regularization[r];
        for (int64_t e = 0; e < (int64_t)d * d; e++) a[e] = pr->gramian[e];
        for (int32_t j = 0; j < d; j++) { a[(int64_t)j * d + j] += lambda; b[j] = 0.0f; }
        for (int64_t p = lo; p < hi; p++) {
            const float *y = pr->other + (int64_t)pr->col[p] * d;
            const float c = pr->confidence[p], w = c - a0;
            for (int32_t j = 0; j < d; j++) {
                b[j] += c * y[j];
                const float wy = w * y[j];
                float *aj = a + (int64_t)j * d;
                for (int32_t k = 0; k <= j; k++) aj[k] += wy * y[k];
            }
        }
        // Cholesky–Banachiewicz: row i of L from the rows above it.
        for (int32_t i = 0; i < d; i++) {
            for (int32_t j = 0; j <= i; j++) {
                double s = a[(int64_t)i * d + j];
                const double *li = l + (int64_t)i * d, *lj = l + (int64_t)j * d;
                for (int32_t k = 0; k < j; k++) s -= li[k] * lj[k];
                if (i == j) {
                    // A pivot lost to rounding (below float precision of the diagonal) means A is singular.
                    if (!(s > 1e-6 * a[(int64_t)i * d + i])) return 1 + r;
                    l[(int64_t)i * d + i] = __builtin_sqrt(s);
                } else {
                    l[(int64_t)i * d + j] = s / lj[j];
                }
            }
        }
        for (int32_t i = 0; i < d; i++) {  // L z = b
            double s = b[i];
            for (int32_t k = 0; k < i; k++) s -= l[(int64_t)i * d + k] * z[k];
            z[i] = s / l[(int64_t)i * d + i];
        }
        for (int32_t i = d - 1; i >= 0; i--) {  // Lᵀ x = z
            double s = z[i];
            for (int32_t k = i + 1; k < d; k++) s -= l[(int64_t)k * d + i] * z[k];
            z[i] = s / l[(int64_t)i * d + i];
        }
        float *xr = x + r * d;
        for (int32_t c = 0; c < d; c++) xr[c] = (float)z[c];
        if (row_loss) row_loss[r] = ials_row_loss(pr, xr, d, lo, hi, lambda);
    }
    return 0;
}

AFFINITY_MULTIVERSION
int64_t affinity_ials_solve_rows(const affinity_ials_problem *problem, float *x, int64_t row_begin, int64_t row_end,
                                 double *row_loss, float *workspace) {
    if (problem->exact) return ials_cholesky_rows(problem, x, row_begin, row_end, row_loss, workspace);
    // The fixed widths keep the row's scores and direction products after the Cholesky-sized workspace.
    float *scores = workspace + 3 * (int64_t)problem->d * problem->d + 4 * problem->d + 8;
    float *directions = scores + problem->longest_row;
    switch (problem->d) {
    case 16: ials_cg_rows_fixed(1, problem, x, row_begin, row_end, row_loss, scores, directions); break;
    case 32: ials_cg_rows_fixed(2, problem, x, row_begin, row_end, row_loss, scores, directions); break;
    case 64: ials_cg_rows_fixed(4, problem, x, row_begin, row_end, row_loss, scores, directions); break;
    case 128: ials_cg_rows_fixed(8, problem, x, row_begin, row_end, row_loss, scores, directions); break;
    case 256: ials_cg_rows_fixed(16, problem, x, row_begin, row_end, row_loss, scores, directions); break;
    default: ials_cg_rows_any(problem, x, row_begin, row_end, row_loss, workspace); break;
    }
    return 0;
}

// The Gramian Σ_r x_r x_rᵀ of rows [row_begin, row_end), four rows at a time so that each pass over the
// accumulator serves four rank-one updates. Only the upper triangle is needed (the caller mirrors it): row i of
// the accumulator is updated from the 16-column block that holds the diagonal on, so the vector loop stays whole.
#define AFFINITY_GRAMIAN_FIXED(D)                                                                       \
    static inline __attribute__((always_inline)) void gramian_upper_##D(const float *x, int64_t row_begin, \
                                                                       int64_t row_end, float *out) {   \
        for (int64_t e = 0; e < (int64_t)D * D; e++) out[e] = 0.0f;                                     \
        int64_t r = row_begin;                                                                          \
        for (; r + 4 <= row_end; r += 4) {                                                              \
            const float *x0 = x + r * D, *x1 = x0 + D, *x2 = x1 + D, *x3 = x2 + D;                      \
            for (int32_t i = 0; i < D; i++) {                                                           \
                const float a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];                             \
                float *g = out + (int64_t)i * D;                                                        \
                for (int32_t j = i & ~15; j < D; j++) g[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j]; \
            }                                                                                           \
        }                                                                                               \
        for (; r < row_end; r++) {                                                                      \
            const float *x0 = x + r * D;                                                                \
            for (int32_t i = 0; i < D; i++) {                                                           \
                const float a0 = x0[i];                                                                 \
                float *g = out + (int64_t)i * D;                                                        \
                for (int32_t j = i & ~15; j < D; j++) g[j] += a0 * x0[j];                               \
            }                                                                                           \
        }                                                                                               \
    }

AFFINITY_GRAMIAN_FIXED(16)
AFFINITY_GRAMIAN_FIXED(32)
AFFINITY_GRAMIAN_FIXED(64)
AFFINITY_GRAMIAN_FIXED(128)
AFFINITY_GRAMIAN_FIXED(256)

AFFINITY_MULTIVERSION
void affinity_gramian_upper_rows(const float *x, int32_t d, int64_t row_begin, int64_t row_end, float *out) {
    switch (d) {
    case 16: gramian_upper_16(x, row_begin, row_end, out); return;
    case 32: gramian_upper_32(x, row_begin, row_end, out); return;
    case 64: gramian_upper_64(x, row_begin, row_end, out); return;
    case 128: gramian_upper_128(x, row_begin, row_end, out); return;
    case 256: gramian_upper_256(x, row_begin, row_end, out); return;
    default: break;
    }
    for (int64_t e = 0; e < (int64_t)d * d; e++) out[e] = 0.0f;
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *x0 = x + r * d;
        for (int32_t i = 0; i < d; i++) {
            const float a0 = x0[i];
            float *g = out + (int64_t)i * d;
            for (int32_t j = i; j < d; j++) g[j] += a0 * x0[j];
        }
    }
}
