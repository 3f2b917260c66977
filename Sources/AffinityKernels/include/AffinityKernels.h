// Hot loops whose speed depends on SIMD width. Written in C so that each can be compiled for
// several instruction sets at once (GCC/Clang `target_clones`) and picked at load time: the Swift
// side needs no `-target-cpu` flag, and the package stays usable as a dependency.
#pragma once
#include <stdint.h>

/// Top-k selection over one row of scores.
///
/// Writes at most `k` item indices into `out_index` and their scores into `out_score`, ordered by
/// score descending with ties broken by the lower index first. Entries equal to -infinity (the
/// evaluator's mark for excluded items) and NaN are never selected. Returns how many were written.
/// - Complexity: O(n + m log k) where m is the number of times the running threshold is beaten.
int32_t affinity_topk_row(const float *scores, int32_t n, int32_t k,
                          int32_t *out_index, float *out_score);

/// Sparse (CSR) × dense product for output rows [row_begin, row_end):
/// Y[r, :] = beta · Y[r, :] + Σ_p values[p] · X[col[p], :] over row r's entries. X and Y are row-major
/// with `d` columns. Rows are independent, so callers split row ranges across threads.
/// - Complexity: O(nnz(rows) · d).
void affinity_spmm_rows(const int64_t *row_start, const int32_t *col, const float *values,
                        const float *x, int32_t d, float *y, int32_t row_begin, int32_t row_end,
                        float beta);

/// out[i] = Σ_c a[i·d + c] · b[i·d + c] for i in [0, n): row-wise dot products.
void affinity_row_dots(const float *a, const float *b, int32_t n, int32_t d, float *out);
/// Scores of `user_count` users (rows of `users`, d wide) against an item table stored in transposed panels of 16
/// items (see scoring.c); row u of `out` (stride ld_out >= panel_count * 16) receives user u's scores.
void affinity_score_panels(const float *panels, int64_t panel_count, int32_t d, const float *users, int32_t user_count,
                           float *out, int64_t ld_out);
/// Row-wise softmax of `scale * logits` in place; with `targets`, row_loss[i] = logsumexp − logit at targets[i].
void affinity_softmax_rows(float *logits, int64_t rows, int64_t cols, float scale, const int32_t *targets, double *row_loss);

/// Floats of scratch one thread needs for the attention kernels below.
int64_t affinity_attention_scratch(int64_t length, int64_t head_width);
/// Multi-head attention forward for sequences [sequence_begin, sequence_end) (Tensor.multiHeadAttention): q, k, v
/// and out are `[sequences · length, d]`, head h on columns h·d/heads ..< (h+1)·d/heads. Writes the softmax weights
/// P to `weights` ([sequence, head, query, key]) and out_i = Σ_j P_ij·keep_ij·v_j (keep: inverted-dropout
/// multipliers in the layout of `weights`, or NULL). Query i sees key j when j ≤ i (if `causal`) and
/// key_padding[s·length + j] is false (key_padding may be NULL); a query that sees no key gets zero weights and a
/// zero output row. `scratch` holds `affinity_attention_scratch(length, d / heads)` floats. Sequences are independent.
void affinity_attention_forward(const float *q, const float *k, const float *v, int64_t d, int64_t length, int64_t heads,
                                int32_t causal, const _Bool *key_padding, const float *keep, int64_t sequence_begin,
                                int64_t sequence_end, float *weights, float *out, float *scratch);
/// Its backward from the output gradient g: overwrites rows of sequences [sequence_begin, sequence_end) of dq, dk
/// and dv with the gradients of q, k and v.
void affinity_attention_backward(const float *g, const float *q, const float *k, const float *v, const float *weights,
                                 const float *keep, int64_t d, int64_t length, int64_t heads, int64_t sequence_begin,
                                 int64_t sequence_end, float *dq, float *dk, float *dv, float *scratch);

/// Rows [row_begin, row_end) of the [*, cols] matrix m: m[r, c] += bias[c] (bias may be NULL), then ReLU if `relu`.
void affinity_bias_activation_rows(float *m, int64_t row_begin, int64_t row_end, int64_t cols, const float *bias, int32_t relu);
/// ReLU's backward over entries [begin, end): g[i] = 0 where y[i] <= 0 (y the ReLU's output).
void affinity_relu_mask(float *g, const float *y, int64_t begin, int64_t end);

/// y[c] += alpha · x[c] for c in [0, n).
void affinity_axpy(int32_t n, float alpha, const float *x, float *y);

/// Adam hyper-parameters for one step (bias corrections already folded in).
typedef struct {
    float beta1, beta2, epsilon;
    float step_size;      // lr / (1 − β1^t)
    float correction2;    // 1 − β2^t
    float learning_rate;  // for decoupled weight decay
    float weight_decay;
    int32_t decoupled;    // 0: L2 added to the gradient (PyTorch Adam); 1: AdamW
} affinity_adam_params;

/// One Adam step on rows of a `[*, d]` parameter. The moments are interleaved per row: `mv` row r holds
/// m (d floats) then v (d floats), so one touched row is two contiguous regions (x and mv), not three.
/// With `rows` non-null, row `rows[k]` is updated from `grads[k·d …]` for k in [0, count); with `rows`
/// null, rows [first, first + count) are updated from `grads[(r − first)·d …]`.
void affinity_adam_rows(float *x, float *mv, const int32_t *rows, int32_t first, const float *grads,
                        int32_t count, int32_t d, affinity_adam_params p);

/// Fused BPR-MF forward for n triples: diff[k] = ⟨U[users[k]], I[pos[k]]⟩ − ⟨U[users[k]], I[neg[k]]⟩.
void affinity_bpr_forward(const float *user_table, const float *item_table, const int32_t *users,
                          const int32_t *pos, const int32_t *neg, int32_t n, int32_t d, float *diff);

/// Fused BPR-MF backward: with coef[k] = ∂loss/∂diff[k], writes the gradient rows
/// du[k] = coef·(I[pos] − I[neg]), dpos[k] = coef·U[user], dneg[k] = −coef·U[user] (each [n, d]).
void affinity_bpr_backward(const float *user_table, const float *item_table, const int32_t *users,
                           const int32_t *pos, const int32_t *neg, int32_t n, int32_t d, const float *coef,
                           float *du, float *dpos, float *dneg);


/// One SGD step on rows: x[rows[k]] −= lr · (grads[k·d …] + weight_decay · x[rows[k]]).
void affinity_sgd_rows(float *x, const int32_t *rows, const float *grads, int32_t count, int32_t d,
                       float learning_rate, float weight_decay);

/// SGD without weight decay straight from uncoalesced gradient rows (repeats allowed): for each k in order
/// whose row lies in [row_begin, row_end), x[rows[k]] −= lr · grads[k·d …]. Threads owning disjoint row
/// ranges can run it over the same list; each row's updates land in list order whatever the thread count.
void affinity_sgd_scatter(float *x, const int32_t *rows, const float *grads, int32_t count, int32_t d,
                          float learning_rate, int32_t row_begin, int32_t row_end);

/// out[i] = a·x[i] + b·y[i] for i in [0, n) (y may be NULL: out = a·x). out may alias x or y.
void affinity_axpby(int64_t n, float a, const float *x, float b, const float *y, float *out);

/// out[i] = x[i] · y[i] for i in [0, n). out may alias x or y.
void affinity_mul(int64_t n, const float *x, const float *y, float *out);

/// Like `affinity_spmm_rows`, with three options: entries whose column has mask[col] == 0 are skipped
/// (their X rows are known to be zero), when `mask` is non-null; row r of `addend` is added to output row r,
/// when `addend` is non-null; and each finished output row is also added into `sum`, when `sum` is non-null.
void affinity_spmm_rows_ex(const int64_t *row_start, const int32_t *col, const float *values,
                           const float *x, int32_t d, float *y, int32_t row_begin, int32_t row_end,
                           float beta, const uint8_t *mask, const float *addend, float *sum);

/// Rows of A·X gathered: out[i·d …] = row rows[i] of A·X, for i in [0, count) (repeats allowed).
void affinity_spmm_gather(const int64_t *row_start, const int32_t *col, const float *values,
                          const float *x, int32_t d, const int32_t *rows, int32_t count, float *out);

/// Sampled dense–dense product: out[p] = ⟨left[r], right[col[p]]⟩ for the nonzeros p of rows [row_begin, row_end).
void affinity_sddmm_rows(const int64_t *row_start, const int32_t *col, const float *left, const float *right,
                         int32_t d, int32_t row_begin, int32_t row_end, float *out);

/// mask[r] = 1 if row r of the [rows, d] matrix x has a non-zero entry, else 0, for r in [begin, end).
void affinity_nonzero_rows(const float *x, int32_t d, int32_t begin, int32_t end, uint8_t *mask);

/// glibc: keep freed memory in the process (no mmap per large block, no trimming). No-op elsewhere.
void affinity_keep_freed_memory(void);

/// Rows [row_begin, row_end) of features = [x + s | x ⊙ s] (x, s: d columns; features: 2·d columns).
void affinity_sum_product_rows(const float *x, const float *s, int32_t d, int64_t row_begin, int64_t row_end,
                               float *features);
/// NGCF layer epilogue for rows [row_begin, row_end) of d columns: z ← z + bias (kept: the activation's input),
/// y = h / max(‖h‖, epsilon) with h = LeakyReLU(z; slope) ⊙ mask (mask may be NULL), norms[r] = max(‖h‖, epsilon).
void affinity_ngcf_forward_rows(float *z, const float *bias, const float *mask, float slope, float epsilon, int32_t d,
                                int64_t row_begin, int64_t row_end, float *y, float *norms);
/// Its backward: gz = LeakyReLU'(z) ⊙ mask ⊙ (g − y⟨g, y⟩) / norm per row (the ⟨g, y⟩ term dropped when the norm
/// was clamped to epsilon).
void affinity_ngcf_backward_rows(const float *g, const float *y, const float *z, const float *mask, const float *norms,
                                 float slope, float epsilon, int32_t d, int64_t row_begin, int64_t row_end, float *gz);
/// Its backward for rows [row_begin, row_end), from g_features = [g_sum | g_product]: gx = g_sum + g_product ⊙ s,
/// gs = g_sum + g_product ⊙ x (either output may be NULL).
void affinity_sum_product_grad_rows(const float *g_features, const float *x, const float *s, int32_t d,
                                    int64_t row_begin, int64_t row_end, float *gx, float *gs);

/// 1 if this CPU runs `affinity_sgemm_direct_rows`'s AVX2/FMA kernel (x86-64 with AVX2 and FMA, without AVX-512,
/// where it was measured faster than OpenBLAS for tall products with a small right operand), else 0.
int32_t affinity_gemm_direct_available(void);
#if defined(__x86_64__)
/// Packs op(B), `k × n` (B stored `k × n`, or `n × k` when `transposed`, with row stride `ldb`), into panels of 16
/// columns: panel q holds k rows of 16 floats, zero past column n. `panels` holds ⌈n / 16⌉ · 16 · k floats.
void affinity_gemm_pack_panels(const float *b, int64_t ldb, int32_t transposed, int32_t k, int32_t n, float *panels);
/// C[r, 0:n] = alpha · A[r, 0:k] · B + beta · C[r, 0:n] for rows [row_begin, row_end), B packed by
/// `affinity_gemm_pack_panels`; C is not read when beta is 0. A row's result does not depend on the row range.
void affinity_sgemm_direct_rows(int64_t row_begin, int64_t row_end, int32_t n, int32_t k, float alpha,
                                const float *a, int64_t lda, const float *panels, float beta, float *c, int64_t ldc);
/// The same with Aᵀ: C[r, 0:n] = alpha · Σ_p A[p, r] · B[p, 0:n] + beta · C[r, 0:n], A stored `k × m` (row stride lda).
void affinity_sgemm_direct_transposed_rows(int64_t row_begin, int64_t row_end, int32_t n, int32_t k, float alpha,
                                           const float *a, int64_t lda, const float *panels, float beta, float *c,
                                           int64_t ldc);
#endif

/// Entries [begin, end) of the inverted-dropout mask drawn from `seed` into mask[0 ..< end − begin]: 0 with
/// probability `rate`, 1 / (1 − rate) otherwise. Entry i depends only on (seed, i).
void affinity_dropout_mask(uint64_t seed, float rate, int64_t begin, int64_t end, float *mask);

/// 1 if this CPU runs the chunked NGCF layer below (x86-64 with AVX2 and FMA: it is built on the direct kernel).
int32_t affinity_ngcf_layer_direct_available(void);
#if defined(__x86_64__)
/// An NGCF layer's forward pass for rows [row_begin, row_end) in L2-sized chunks: z = [x + s | x ⊙ s]·W, then
/// `affinity_ngcf_forward_rows` (y and norms as there; z is not kept, the backward pass reads its sign off y) with the dropout
/// mask `affinity_dropout_mask(dropout_seed, dropout_rate, …)` over the [n, d_out] output (none at rate 0).
/// W ([2d, d_out]) is packed by `affinity_gemm_pack_panels`.
void affinity_ngcf_layer_forward_rows(const float *x, const float *s, int32_t d, int32_t d_out,
                                      const float *weight_panels, const float *bias, uint64_t dropout_seed,
                                      float dropout_rate, float slope, float epsilon, int64_t row_begin,
                                      int64_t row_end, float *y, float *norms);
/// Its backward for rows [row_begin, row_end): gz as `affinity_ngcf_backward_rows`, then bias_grad += Σ gz,
/// weight_grad ([2d, d_out]; may be NULL) += featuresᵀ·gz, and gx, gs (either may be NULL) as
/// `affinity_sum_product_grad_rows` from gz·Wᵀ, with Wᵀ ([d_out, 2d]) packed by `affinity_gemm_pack_panels`.
/// The sums into weight_grad and bias_grad run over the rows in order, chunk by chunk.
void affinity_ngcf_layer_backward_rows(const float *g, const float *y, uint64_t dropout_seed,
                                       float dropout_rate, const float *norms, float slope, float epsilon,
                                       const float *x, const float *s,
                                       int32_t d, int32_t d_out, const float *transposed_weight_panels,
                                       int64_t row_begin, int64_t row_end, float *weight_grad, float *bias_grad,
                                       float *gx, float *gs);
#endif

/// One half-step of iALS (weighted matrix factorisation for implicit feedback): the rows of X to solve given the
/// other side's embeddings Y (ials.c states the objective and the normal equations).
typedef struct {
    const int64_t *row_start;      ///< CSR of the interactions, one row per row of X
    const int32_t *col;            ///< row of Y of each nonzero
    const float *confidence;       ///< c_p of each nonzero (1 + alpha · r_p)
    const float *other;            ///< Y, [*, d] row-major
    const float *gramian;          ///< α0 · YᵀY, [d, d] row-major
    const float *regularization;   ///< λ_r of each row of X
    float unobserved;              ///< α0, the weight of every unobserved pair
    int32_t d;
    int32_t cg_steps;              ///< conjugate-gradient steps from the current x (when not exact)
    int32_t exact;                 ///< nonzero: solve exactly (Cholesky) instead
    int64_t longest_row;           ///< the most nonzeros of any row
} affinity_ials_problem;

/// Solves rows [row_begin, row_end) of X ([*, d], updated in place). With `row_loss`, row_loss[r] receives row r's
/// share of the objective at its new x (ials.c). `workspace` holds at least 3·d·d + 4·d + 8 + 2·longest_row floats.
/// Rows are independent: callers split row ranges across threads, and a row's result does not depend on the split.
/// Returns 0, or 1 + r for a row whose exact system is not positive definite.
int64_t affinity_ials_solve_rows(const affinity_ials_problem *problem, float *x, int64_t row_begin, int64_t row_end,
                                 double *row_loss, float *workspace);

/// out ([d, d]) = Σ x_r x_rᵀ over rows [row_begin, row_end) of x ([*, d]), summed in row order; only the upper
/// triangle (j ≥ i) is defined, entries below the diagonal are left unspecified.
void affinity_gramian_upper_rows(const float *x, int32_t d, int64_t row_begin, int64_t row_end, float *out);
