// Multi-head scaled dot-product attention over short sequences (Tensor.multiHeadAttention states the math).
// The heads are narrow (AutoInt: 7 fields × 8 columns; SASRec: 50 positions × 32–64), so the loops are laid out
// to vectorise without reassociating any sum: scores ⟨q_i, k_j⟩ are accumulated column by column into a row of
// L keys from the keys transposed into `scratch` (one vector op per column instead of a horizontal sum per
// key), and the products with V run along a head's columns. Every sum runs in the same order in every clone and
// for any split of the sequences over threads.
#include "AffinityKernels.h"
#include <math.h>
#include "exp.h"
#include "multiversion.h"

enum { LANES = 16, COLUMNS = 8 };

static inline __attribute__((always_inline)) int64_t affinity_attention_padded(int64_t length) {
    return (length + LANES - 1) / LANES * LANES;
}

int64_t affinity_attention_scratch(int64_t length, int64_t head_width) {
    return (head_width + 4) * affinity_attention_padded(length);
}

// transposed[c · padded + j] = rows[(s · length + j) · d + column + c] for j < length, 0 for length ≤ j < padded:
// one head's keys (or values) of sequence s, so that a row of scores is built 16 keys per vector op.
static inline __attribute__((always_inline)) void affinity_transpose_head(const float *restrict rows, int64_t s, int64_t length,
                                                                          int64_t padded, int64_t d, int64_t column,
                                                                          int64_t width, float *restrict transposed) {
    for (int64_t c = 0; c < width; c++)
        for (int64_t j = length; j < padded; j++) transposed[c * padded + j] = 0.0f;
    for (int64_t j = 0; j < length; j++) {
        const float *row = rows + (s * length + j) * d + column;
        for (int64_t c = 0; c < width; c++) transposed[c * padded + j] = row[c];
    }
}

// row[j] = Σ_c x[c] · transposed[c · padded + j] for j < padded: 16 keys per vector op, in registers, with four
// partial sums over c (c ≡ 0, 1, 2, 3 mod 4, added pairwise at the end) so that consecutive multiply-adds do not
// wait on each other.
static inline __attribute__((always_inline)) void affinity_row_times_transposed(const float *restrict x, const float *restrict transposed,
                                                                                int64_t width, int64_t padded, float *restrict row) {
    for (int64_t jb = 0; jb < padded; jb += LANES) {
        float acc0[LANES] = {0}, acc1[LANES] = {0}, acc2[LANES] = {0}, acc3[LANES] = {0};
        int64_t c = 0;
        for (; c + 4 <= width; c += 4) {
            const float *t = transposed + c * padded + jb;
            for (int64_t l = 0; l < LANES; l++) {
                acc0[l] += x[c] * t[l];
                acc1[l] += x[c + 1] * t[padded + l];
                acc2[l] += x[c + 2] * t[2 * padded + l];
                acc3[l] += x[c + 3] * t[3 * padded + l];
            }
        }
        for (; c < width; c++)
            for (int64_t l = 0; l < LANES; l++) acc0[l] += x[c] * transposed[c * padded + jb + l];
        for (int64_t l = 0; l < LANES; l++) row[jb + l] = (acc0[l] + acc1[l]) + (acc2[l] + acc3[l]);
    }
}

// y[c] += Σ_{j < count} a[j] · rows[j · d + c] for c < width: 8 columns per vector op, in registers, with four
// partial sums over j (j ≡ 0, 1, 2, 3 mod 4, added pairwise at the end).
static inline __attribute__((always_inline)) void affinity_combine_rows(const float *restrict a, const float *restrict rows, int64_t count,
                                                                        int64_t d, int64_t width, float *restrict y) {
    int64_t c = 0;
    for (; c + COLUMNS <= width; c += COLUMNS) {
        float acc0[COLUMNS] = {0}, acc1[COLUMNS] = {0}, acc2[COLUMNS] = {0}, acc3[COLUMNS] = {0};
        int64_t j = 0;
        for (; j + 4 <= count; j += 4) {
            const float *r = rows + j * d + c;
            for (int64_t l = 0; l < COLUMNS; l++) {
                acc0[l] += a[j] * r[l];
                acc1[l] += a[j + 1] * r[d + l];
                acc2[l] += a[j + 2] * r[2 * d + l];
                acc3[l] += a[j + 3] * r[3 * d + l];
            }
        }
        for (; j < count; j++)
            for (int64_t l = 0; l < COLUMNS; l++) acc0[l] += a[j] * rows[j * d + c + l];
        for (int64_t l = 0; l < COLUMNS; l++) y[c + l] += (acc0[l] + acc1[l]) + (acc2[l] + acc3[l]);
    }
    for (; c < width; c++) {
        float acc = 0.0f;
        for (int64_t j = 0; j < count; j++) acc += a[j] * rows[j * d + c];
        y[c] += acc;
    }
}

// y[c] += a · x[c] for c < width, 8 columns per vector op.
static inline __attribute__((always_inline)) void affinity_head_axpy(float a, const float *restrict x, float *restrict y, int64_t width) {
    int64_t c = 0;
    for (; c + COLUMNS <= width; c += COLUMNS)
        for (int64_t l = 0; l < COLUMNS; l++) y[c + l] += a * x[c + l];
    for (; c < width; c++) y[c] += a * x[c];
}

AFFINITY_MULTIVERSION
void affinity_attention_forward(const float *restrict q, const float *restrict k, const float *restrict v, int64_t d,
                                int64_t length, int64_t heads, int32_t causal, const _Bool *key_padding,
                                const float *restrict keep, int64_t sequence_begin, int64_t sequence_end,
                                float *restrict weights, float *restrict out, float *restrict scratch) {
    const int64_t width = d / heads, padded = affinity_attention_padded(length);
    const float scale = 1.0f / __builtin_sqrtf((float)width);
    float *restrict keys = scratch, *restrict row = scratch + width * padded, *restrict allowed = row + padded;
    float *restrict unpadded = allowed + padded;
    for (int64_t s = sequence_begin; s < sequence_end; s++) {
        for (int64_t r = s * length * d; r < (s + 1) * length * d; r++) out[r] = 0.0f;
        for (int64_t j = 0; j < padded; j++) unpadded[j] = j < length && !(key_padding && key_padding[s * length + j]) ? 1.0f : 0.0f;
        for (int64_t h = 0; h < heads; h++) {
            const int64_t column = h * width;
            affinity_transpose_head(k, s, length, padded, d, column, width, keys);
            for (int64_t i = 0; i < length; i++) {
                const int64_t visible = causal ? i + 1 : length;
                float any = 0.0f;
                for (int64_t j = 0; j < padded; j++) {
                    allowed[j] = j < visible ? unpadded[j] : 0.0f;
                    any += allowed[j];
                }
                float *wi = weights + ((s * heads + h) * length + i) * length;
                if (any == 0.0f) {   // no key visible: zero weights and a zero output row
                    for (int64_t j = 0; j < length; j++) wi[j] = 0.0f;
                    continue;
                }
                affinity_row_times_transposed(q + (s * length + i) * d + column, keys, width, padded, row);
                // Softmax over the allowed keys: 16 partial maxima and sums, the same order in every clone.
                float lane_max[LANES], lane_sum[LANES];
                for (int64_t l = 0; l < LANES; l++) { lane_max[l] = -INFINITY; lane_sum[l] = 0.0f; }
                for (int64_t jb = 0; jb < padded; jb += LANES)
                    for (int64_t l = 0; l < LANES; l++) {
                        const float x = row[jb + l] * scale;
                        row[jb + l] = x;
                        const float candidate = allowed[jb + l] != 0.0f ? x : -INFINITY;
                        lane_max[l] = candidate > lane_max[l] ? candidate : lane_max[l];
                    }
                float maximum = lane_max[0];
                for (int64_t l = 1; l < LANES; l++) maximum = lane_max[l] > maximum ? lane_max[l] : maximum;
                for (int64_t jb = 0; jb < padded; jb += LANES)
                    for (int64_t l = 0; l < LANES; l++) {
                        // A hidden key may score above the maximum: its argument is clipped to 0 before the 0 weight.
                        const float shifted = row[jb + l] - maximum;
                        const float e = affinity_exp_nonpositive(shifted < 0.0f ? shifted : 0.0f) * allowed[jb + l];
                        row[jb + l] = e;
                        lane_sum[l] += e;
                    }
                float total = 0.0f;
                for (int64_t l = 0; l < LANES; l++) total += lane_sum[l];
                const float inverse = 1.0f / total;
                const float *ki = keep ? keep + ((s * heads + h) * length + i) * length : 0;
                for (int64_t j = 0; j < length; j++) {
                    wi[j] = row[j] * inverse;
                    row[j] = ki ? wi[j] * ki[j] : wi[j];   // P̃: the weights the values are mixed with
                }
                affinity_combine_rows(row, v + s * length * d + column, visible, d, width, out + (s * length + i) * d + column);
            }
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_attention_backward(const float *restrict g, const float *restrict q, const float *restrict k,
                                 const float *restrict v, const float *restrict weights, const float *restrict keep,
                                 int64_t d, int64_t length, int64_t heads, int64_t sequence_begin, int64_t sequence_end,
                                 float *restrict dq, float *restrict dk, float *restrict dv, float *restrict scratch) {
    const int64_t width = d / heads, padded = affinity_attention_padded(length);
    const float scale = 1.0f / __builtin_sqrtf((float)width);
    float *restrict values = scratch, *restrict d_weights = scratch + width * padded, *restrict d_scores = d_weights + padded;
    for (int64_t s = sequence_begin; s < sequence_end; s++) {
        for (int64_t r = s * length * d; r < (s + 1) * length * d; r++) { dq[r] = 0.0f; dk[r] = 0.0f; dv[r] = 0.0f; }
        for (int64_t h = 0; h < heads; h++) {
            const int64_t column = h * width;
            affinity_transpose_head(v, s, length, padded, d, column, width, values);
            for (int64_t i = 0; i < length; i++) {
                const float *gi = g + (s * length + i) * d + column;
                const float *wi = weights + ((s * heads + h) * length + i) * length;
                const float *ki = keep ? keep + ((s * heads + h) * length + i) * length : 0;
                // dP̃_ij = ⟨g_i, v_j⟩, then through the dropout: dP_ij = dP̃_ij · keep_ij.
                affinity_row_times_transposed(gi, values, width, padded, d_weights);
                if (ki) for (int64_t j = 0; j < length; j++) d_weights[j] *= ki[j];
                float weighted = 0.0f;
                for (int64_t j = 0; j < length; j++) weighted += wi[j] * d_weights[j];
                const float *qi = q + (s * length + i) * d + column;
                for (int64_t j = 0; j < length; j++) {
                    d_scores[j] = wi[j] * (d_weights[j] - weighted) * scale;   // softmax backward, then 1/√(d/H)
                    if (wi[j] == 0.0f) continue;   // masked key (or a zero row): no gradient flows
                    const float dropped = ki ? wi[j] * ki[j] : wi[j];
                    affinity_head_axpy(dropped, gi, dv + (s * length + j) * d + column, width);
                    affinity_head_axpy(d_scores[j], qi, dk + (s * length + j) * d + column, width);
                }
                affinity_combine_rows(d_scores, k + s * length * d + column, length, d, width, dq + (s * length + i) * d + column);
            }
        }
    }
}
