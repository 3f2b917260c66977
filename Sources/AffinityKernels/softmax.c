#include "AffinityKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "multiversion.h"

// exp(x) for x <= 0 (softmax arguments after subtracting the row maximum), written so the compiler can
// vectorise it (libm's expf is a call per element). Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
// polynomial for e^r (relative error < 2e-7 on that interval), and 2^n assembled in the exponent bits.
// Arguments below -87 give 0 (as expf underflows there).
static inline float affinity_exp_nonpositive(float x) {
    if (x < -87.0f) x = -87.0f;
    const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;        // ln2 split in two for an exact product with n
    r = r - n * -2.12194440e-4f;
    float p = 1.3888889e-3f;               // 1/720 … Horner down to 1
    p = p * r + 8.3333333e-3f;
    p = p * r + 4.1666667e-2f;
    p = p * r + 1.6666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

AFFINITY_MULTIVERSION
void affinity_softmax_rows(float *logits, int64_t rows, int64_t cols, float scale, const int32_t *targets, double *row_loss) {
    for (int64_t i = 0; i < rows; i++) {
        float *row = logits + i * cols;
        // 16 partial maxima and sums: vectorisable without reassociation flags, and the same order on every
        // instruction set.
        float pm[16], ps[16];
        for (int k = 0; k < 16; k++) { pm[k] = -INFINITY; ps[k] = 0.0f; }
        int64_t j = 0;
        for (; j + 16 <= cols; j += 16)
            for (int k = 0; k < 16; k++) { row[j + k] *= scale; pm[k] = row[j + k] > pm[k] ? row[j + k] : pm[k]; }
        for (; j < cols; j++) { row[j] *= scale; pm[0] = row[j] > pm[0] ? row[j] : pm[0]; }
        float mx = pm[0];
        for (int k = 1; k < 16; k++) mx = pm[k] > mx ? pm[k] : mx;
        const float target = targets ? row[targets[i]] : 0.0f;
        for (j = 0; j < cols; j++) row[j] = affinity_exp_nonpositive(row[j] - mx);
        for (j = 0; j + 16 <= cols; j += 16)
            for (int k = 0; k < 16; k++) ps[k] += row[j + k];
        for (; j < cols; j++) ps[0] += row[j];
        float s = 0.0f;
        for (int k = 0; k < 16; k++) s += ps[k];
        // loss_i = log Σ_j exp(l_ij) − l_{i,target}; the row keeps the softmax for the backward pass.
        if (row_loss) row_loss[i] = (double)mx + log((double)s) - (double)target;
        const float inv = 1.0f / s;
        for (int64_t j = 0; j < cols; j++) row[j] *= inv;
    }
}
