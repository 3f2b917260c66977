#include "AffinityKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "exp.h"
#include "multiversion.h"

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
