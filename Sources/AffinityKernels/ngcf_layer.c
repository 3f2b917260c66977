// One NGCF layer (see Tensor.ngcfLayer) swept in chunks of rows, each chunk's work done while it sits in L2:
// build [x + s | x ⊙ s], multiply by the packed weights with the direct kernel, draw the dropout mask, apply the
// epilogue; backward, the chunk's mask again, its ∂z, its share of ∂W and ∂b, and ∂x, ∂s. The table-wide path
// materialises [n, 2d] features and their gradient, and OpenBLAS copies every block of them into packed buffers:
// on Gowalla's 70,839 nodes the products took 56% of a layer's time and those passes most of the rest.
#include "AffinityKernels.h"
#include <stdlib.h>

// On AVX-512 CPUs too: measured on AMD Zen 4, which runs 512-bit FMAs as two 256-bit halves, so the AVX2 kernel
// loses nothing to OpenBLAS's zmm kernel there (a layer 0.82–0.86 of the table-wide path's time). Intel CPUs with
// two 512-bit FMA ports are not measured; AFFINITY_CHUNKED_LAYERS=0 selects the table-wide path.
int32_t affinity_ngcf_layer_direct_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if defined(__x86_64__)

// Rows per chunk, a multiple of the direct kernel's 6-row blocks: 192 rows of features (2·d = 128 floats) are
// 96 KB, and with the chunk's other buffers they stay within a 1 MB L2.
#define AFFINITY_NGCF_CHUNK 192

static int64_t min_rows(int64_t a, int64_t b) { return a < b ? a : b; }

// The chunk's rows of the layer's dropout mask, or NULL when there is no dropout.
static const float *chunk_mask(uint64_t seed, float rate, int64_t r0, int64_t r1, int32_t d_out, float *buffer) {
    if (rate <= 0.0f) return NULL;
    affinity_dropout_mask(seed, rate, r0 * d_out, r1 * d_out, buffer);
    return buffer;
}

void affinity_ngcf_layer_forward_rows(const float *x, const float *s, int32_t d, int32_t d_out,
                                      const float *weight_panels, const float *bias, uint64_t dropout_seed,
                                      float dropout_rate, float slope, float epsilon, int64_t row_begin,
                                      int64_t row_end, float *y, float *norms) {
    float *features = malloc(sizeof(float) * AFFINITY_NGCF_CHUNK * 2 * (size_t)d);
    float *mask = malloc(sizeof(float) * AFFINITY_NGCF_CHUNK * (size_t)d_out);
    float *z = malloc(sizeof(float) * AFFINITY_NGCF_CHUNK * (size_t)d_out);   // pre-activations: the chunk's only
    for (int64_t r0 = row_begin; r0 < row_end; r0 += AFFINITY_NGCF_CHUNK) {
        const int64_t r1 = min_rows(r0 + AFFINITY_NGCF_CHUNK, row_end), rows = r1 - r0;
        affinity_sum_product_rows(x + r0 * d, s + r0 * d, d, 0, rows, features);
        affinity_sgemm_direct_rows(0, rows, d_out, 2 * d, 1.0f, features, 2 * d, weight_panels, 0.0f, z, d_out);
        affinity_ngcf_forward_rows(z, bias, chunk_mask(dropout_seed, dropout_rate, r0, r1, d_out, mask), slope, epsilon,
                                   d_out, 0, rows, y + r0 * d_out, norms + r0);
    }
    free(features);
    free(mask);
    free(z);
}

__attribute__((target("avx2,fma")))
void affinity_ngcf_layer_backward_rows(const float *g, const float *y, uint64_t dropout_seed,
                                       float dropout_rate, const float *norms, float slope, float epsilon,
                                       const float *x, const float *s,
                                       int32_t d, int32_t d_out, const float *transposed_weight_panels,
                                       int64_t row_begin, int64_t row_end, float *weight_grad, float *bias_grad,
                                       float *gx, float *gs) {
    const int64_t width = 2 * (int64_t)d, padded_out = (d_out + 15) / 16 * 16, chunk = AFFINITY_NGCF_CHUNK;
    float *gz = malloc(sizeof(float) * chunk * d_out);
    float *features = malloc(sizeof(float) * chunk * width);
    float *gz_panels = malloc(sizeof(float) * chunk * padded_out);
    float *g_features = malloc(sizeof(float) * chunk * width);
    float *mask = malloc(sizeof(float) * chunk * d_out);
    for (int64_t r0 = row_begin; r0 < row_end; r0 += chunk) {
        const int64_t r1 = min_rows(r0 + chunk, row_end), rows = r1 - r0;
        // The activation's slope needs only the sign of z, which y has wherever the mask keeps the entry (LeakyReLU,
        // the mask's scale and the norm are all positive); where it drops it, the gradient is 0 either way.
        affinity_ngcf_backward_rows(g + r0 * d_out, y + r0 * d_out, y + r0 * d_out,
                                    chunk_mask(dropout_seed, dropout_rate, r0, r1, d_out, mask), norms + r0, slope,
                                    epsilon, d_out, 0, rows, gz);
        for (int64_t r = 0; r < rows; r++)
            for (int32_t c = 0; c < d_out; c++) bias_grad[c] += gz[r * d_out + c];
        if (weight_grad) {
            // ∂W += featuresᵀ · ∂z, the chunk's rows being the product's depth.
            affinity_sum_product_rows(x + r0 * d, s + r0 * d, d, 0, rows, features);
            affinity_gemm_pack_panels(gz, d_out, 0, (int32_t)rows, d_out, gz_panels);
            affinity_sgemm_direct_transposed_rows(0, width, d_out, (int32_t)rows, 1.0f, features, width, gz_panels,
                                                  1.0f, weight_grad, d_out);
        }
        if (gx || gs) {
            affinity_sgemm_direct_rows(0, rows, (int32_t)width, d_out, 1.0f, gz, d_out, transposed_weight_panels, 0.0f,
                                       g_features, width);
            affinity_sum_product_grad_rows(g_features, x + r0 * d, s + r0 * d, d, 0, rows, gx ? gx + r0 * d : NULL,
                                           gs ? gs + r0 * d : NULL);
        }
    }
    free(gz);
    free(features);
    free(gz_panels);
    free(g_features);
    free(mask);
}

#endif
