// Row passes of fused layer ops (see Tensor.ngcfLayer): the elementwise work around a layer's products, done
// in one sweep over each row instead of one sweep over the whole table per op.
#include "AffinityKernels.h"
#include "dot.h"
#include <stdint.h>

#include "multiversion.h"

AFFINITY_MULTIVERSION
void affinity_sum_product_rows(const float *x, const float *s, int32_t d, int64_t row_begin, int64_t row_end,
                               float *features) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *xr = x + r * d, *sr = s + r * d;
        float *sum = features + r * 2 * d, *product = sum + d;
        for (int32_t c = 0; c < d; c++) {
            sum[c] = xr[c] + sr[c];
            product[c] = xr[c] * sr[c];
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_ngcf_forward_rows(float *z, const float *bias, const float *mask, float slope, float epsilon, int32_t d,
                                int64_t row_begin, int64_t row_end, float *y, float *norms) {
    for (int64_t r = row_begin; r < row_end; r++) {
        float *zr = z + r * d, *yr = y + r * d;
        if (mask) {
            const float *mr = mask + r * d;
            for (int32_t c = 0; c < d; c++) {
                const float pre = zr[c] + bias[c];
                zr[c] = pre;
                yr[c] = (pre > 0 ? pre : slope * pre) * mr[c];
            }
        } else {
            for (int32_t c = 0; c < d; c++) {
                const float pre = zr[c] + bias[c];
                zr[c] = pre;
                yr[c] = pre > 0 ? pre : slope * pre;
            }
        }
        float length = __builtin_sqrtf(affinity_dot(yr, yr, d));
        if (length < epsilon) length = epsilon;
        norms[r] = length;
        const float inverse = 1.0f / length;
        for (int32_t c = 0; c < d; c++) yr[c] *= inverse;
    }
}

AFFINITY_MULTIVERSION
void affinity_ngcf_backward_rows(const float *g, const float *y, const float *z, const float *mask, const float *norms,
                                 float slope, float epsilon, int32_t d, int64_t row_begin, int64_t row_end, float *gz) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *gr = g + r * d, *yr = y + r * d, *zr = z + r * d;
        float *out = gz + r * d;
        // Below epsilon the normalisation is the linear map h / epsilon: only the direct term remains.
        const float dot = norms[r] == epsilon ? 0.0f : affinity_dot(gr, yr, d);
        const float inverse = 1.0f / norms[r];
        if (mask) {
            const float *mr = mask + r * d;
            for (int32_t c = 0; c < d; c++) {
                const float v = (gr[c] - yr[c] * dot) * inverse * mr[c];
                out[c] = zr[c] > 0 ? v : slope * v;
            }
        } else {
            for (int32_t c = 0; c < d; c++) {
                const float v = (gr[c] - yr[c] * dot) * inverse;
                out[c] = zr[c] > 0 ? v : slope * v;
            }
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_sum_product_grad_rows(const float *g_features, const float *x, const float *s, int32_t d,
                                    int64_t row_begin, int64_t row_end, float *gx, float *gs) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const float *g_sum = g_features + r * 2 * d, *g_product = g_sum + d;
        const float *xr = x + r * d, *sr = s + r * d;
        if (gx) {
            float *out = gx + r * d;
            for (int32_t c = 0; c < d; c++) out[c] = g_sum[c] + g_product[c] * sr[c];
        }
        if (gs) {
            float *out = gs + r * d;
            for (int32_t c = 0; c < d; c++) out[c] = g_sum[c] + g_product[c] * xr[c];
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_bias_activation_rows(float *m, int64_t row_begin, int64_t row_end, int64_t cols, const float *bias, int32_t relu) {
    for (int64_t r = row_begin; r < row_end; r++) {
        float *row = m + r * cols;
        if (relu) {
            for (int64_t c = 0; c < cols; c++) { const float x = row[c] + (bias ? bias[c] : 0.0f); row[c] = x > 0.0f ? x : 0.0f; }
        } else if (bias) {
            for (int64_t c = 0; c < cols; c++) row[c] += bias[c];
        }
    }
}

AFFINITY_MULTIVERSION
void affinity_relu_mask(float *g, const float *y, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) g[i] = y[i] > 0.0f ? g[i] : 0.0f;
}
