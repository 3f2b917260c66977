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

// out[0..D) = G·v for the symmetric D × D gramian G (row-major): Σ_k v[k]·G[k, :], so that the accumulator
// runs along contiguous rows of G.
#define IALS_GRAMIAN_TIMES(D, out, v)                                                                   \
    for (int32_t c = 0; c < D; c++) out[c] = 0.0f;                                                      \
    for (int32_t k = 0; k < D; k++) {                                                                   \
        const float vk = v[k];                                                                          \
        const float *g = gramian + (int64_t)k * D;                                                      \
        for (int32_t c = 0; c < D; c++) out[c] += vk * g[c];                                            \
    }

// One row's conjugate-gradient solve, started from the row's current x (a warm start: after the first
// iterations a few steps suffice, as in Takács et al. 2011 and the `implicit` library). With D a compile-time
// constant the row's vectors stay in registers; A·v is never formed as a matrix:
//     A·v = G·v + λ v + Σ_p (c_p − α0)⟨y_p, v⟩ y_p.
#define AFFINITY_IALS_CG_FIXED(D)                                                                       \
    static inline __attribute__((always_inline)) void ials_cg_rows_##D(                                \
        const affinity_ials_problem *pr, float *x, int64_t row_begin, int64_t row_end, double *row_loss) { \
        const int64_t *row_start = pr->row_start;                                                       \
        const int32_t *col = pr->col;                                                                   \
        const float *conf = pr->confidence, *other = pr->other, *gramian = pr->gramian;                 \
        const float a0 = pr->unobserved;                                                                \
        for (int64_t r = row_begin; r < row_end; r++) {                                                 \
            float *xr = x + r * D;                                                                      \
            const int64_t lo = row_start[r], hi = row_start[r + 1];                                     \
            const float lambda = pr->regularization[r];                                                 \
            float xv[D], res[D], dir[D], ad[D];                                                         \
            for (int32_t c = 0; c < D; c++) xv[c] = xr[c];                                              \
            /* res = b − A·x, the items' part in one pass: Σ_p (c_p − (c_p − α0)⟨y_p, x⟩) y_p. */        \
            for (int32_t c = 0; c < D; c++) res[c] = 0.0f;                                              \
            for (int64_t p = lo; p < hi; p++) {                                                         \
                if (p + AFFINITY_IALS_PREFETCH_AHEAD < hi)                                              \
                    affinity_prefetch_row(other + (int64_t)col[p + AFFINITY_IALS_PREFETCH_AHEAD] * D, D); \
                const float *y = other + (int64_t)col[p] * D;                                           \
                const float s = affinity_dot(y, xv, D);                                                 \
                const float coef = conf[p] - (conf[p] - a0) * s;                                        \
                for (int32_t c = 0; c < D; c++) res[c] += coef * y[c];                                  \
            }                                                                                           \
            IALS_GRAMIAN_TIMES(D, ad, xv)                                                               \
            for (int32_t c = 0; c < D; c++) res[c] -= ad[c] + lambda * xv[c];                           \
            for (int32_t c = 0; c < D; c++) dir[c] = res[c];                                            \
            float rs = affinity_dot(res, res, D);                                                       \
            for (int32_t step = 0; step < pr->cg_steps && rs > 1e-20f; step++) {                        \
                IALS_GRAMIAN_TIMES(D, ad, dir)                                                          \
                for (int32_t c = 0; c < D; c++) ad[c] += lambda * dir[c];                               \
                for (int64_t p = lo; p < hi; p++) {                                                     \
                    const float *y = other + (int64_t)col[p] * D;                                       \
                    const float coef = (conf[p] - a0) * affinity_dot(y, dir, D);                        \
                    for (int32_t c = 0; c < D; c++) ad[c] += coef * y[c];                               \
                }                                                                                       \
                const float curvature = affinity_dot(dir, ad, D);                                       \
                if (!(curvature > 0.0f)) break;                                                         \
                const float step_size = rs / curvature;                                                 \
                for (int32_t c = 0; c < D; c++) {                                                       \
                    xv[c] += step_size * dir[c];                                                        \
                    res[c] -= step_size * ad[c];                                                        \
                }                                                                                       \
                const float rs_next = affinity_dot(res, res, D);                                        \
                const float beta = rs_next / rs;                                                        \
                for (int32_t c = 0; c < D; c++) dir[c] = res[c] + beta * dir[c];                        \
                rs = rs_next;                                                                           \
            }                                                                                           \
            for (int32_t c = 0; c < D; c++) xr[c] = xv[c];                                              \
            if (row_loss) row_loss[r] = ials_row_loss(pr, xv, D, lo, hi, lambda);           \
        }                                                                                               \
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

AFFINITY_IALS_CG_FIXED(16)
AFFINITY_IALS_CG_FIXED(32)
AFFINITY_IALS_CG_FIXED(64)
AFFINITY_IALS_CG_FIXED(128)

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
    switch (problem->d) {
    case 16: ials_cg_rows_16(problem, x, row_begin, row_end, row_loss); break;
    case 32: ials_cg_rows_32(problem, x, row_begin, row_end, row_loss); break;
    case 64: ials_cg_rows_64(problem, x, row_begin, row_end, row_loss); break;
    case 128: ials_cg_rows_128(problem, x, row_begin, row_end, row_loss); break;
    default: ials_cg_rows_any(problem, x, row_begin, row_end, row_loss, workspace); break;
    }
    return 0;
}
