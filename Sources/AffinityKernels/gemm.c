// Direct (packing-free) products for tall, thin operands: C = α·A·B + β·C with A [m, k] read in place and B
// small ([k, n], k and n at most a few hundred), as in a graph layer's `[nodes, d]·[d, d']`. OpenBLAS copies
// every block of A into a packed buffer before its kernel runs; for these shapes that copy is a pass over A as
// long as the arithmetic itself. Here B is packed once (it is small) and each block of 6 rows of A is read
// straight from memory: 6 × 16 outputs in 12 AVX registers, one FMA per B vector and broadcast A element.
#include "AffinityKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

int32_t affinity_gemm_direct_available(void) {
#if defined(__x86_64__)
    // Measured against OpenBLAS on AVX2 machines only; where AVX-512 exists OpenBLAS's zmm kernels are used.
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !__builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

#if defined(__x86_64__)
void affinity_gemm_pack_panels(const float *b, int64_t ldb, int32_t transposed, int32_t k, int32_t n, float *panels) {
    if (!transposed && n % 16 == 0) {
        // Whole panels of a row-major B: 16 contiguous floats each (the chunked layers pack per chunk).
        for (int32_t j0 = 0; j0 < n; j0 += 16)
            for (int32_t p = 0; p < k; p++) memcpy(panels + (int64_t)j0 * k + p * 16, b + (int64_t)p * ldb + j0, 16 * sizeof(float));
        return;
    }
    for (int32_t j0 = 0; j0 < n; j0 += 16) {
        float *panel = panels + (int64_t)j0 * k;
        for (int32_t p = 0; p < k; p++)
            for (int32_t j = 0; j < 16; j++) {
                const int32_t col = j0 + j;
                panel[p * 16 + j] = col >= n ? 0.0f : transposed ? b[(int64_t)col * ldb + p] : b[(int64_t)p * ldb + col];
            }
    }
}

// Rows per chunk (a multiple of 6). 48, 96 and 192 measured alike; without chunks, [35k, 128]·[128, 64] took 1.6×
// as long, its four panels and the 6-row blocks of A evicting each other from L1.
#define AFFINITY_GEMM_CHUNK_ROWS 96
#define AFFINITY_AVX2_FMA __attribute__((target("avx2,fma")))

// Writes `rows` output rows of `count` (≤ 16) columns from acc[rows][16]: α·acc + β·C (C not read when β = 0).
static void store_block_scalar(float *c, int64_t ldc, const float *acc, int32_t rows, int32_t count, float alpha,
                               float beta) {
    for (int32_t i = 0; i < rows; i++, c += ldc, acc += 16) {
        if (beta == 0.0f)
            for (int32_t j = 0; j < count; j++) c[j] = alpha * acc[j];
        else
            for (int32_t j = 0; j < count; j++) c[j] = alpha * acc[j] + beta * c[j];
    }
}

// store_block_scalar with full 16-column rows in vectors. Not inlined into the row loop: there, its α and β
// vectors would take two of the sixteen registers the 6-row block needs, and the block would spill.
AFFINITY_AVX2_FMA __attribute__((noinline)) static void store_block(float *c, int64_t ldc, const float *acc, int32_t rows,
                                                                     int32_t count, float alpha, float beta) {
    if (count < 16) {
        store_block_scalar(c, ldc, acc, rows, count, alpha, beta);
        return;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int32_t i = 0; i < rows; i++, c += ldc, acc += 16) {
        __m256 lo = _mm256_mul_ps(va, _mm256_loadu_ps(acc)), hi = _mm256_mul_ps(va, _mm256_loadu_ps(acc + 8));
        if (beta != 0.0f) {
            lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
        }
        _mm256_storeu_ps(c, lo);
        _mm256_storeu_ps(c + 8, hi);
    }
}

// Σ_p A[r, p]·panel[p, 0:16] for 6 rows, into acc[6][16]. The twelve accumulators are spelled out: written as
// arrays with a loop over rows, clang splits the loop per row and each row's two FMA chains wait on latency.
#define AFFINITY_GEMM_ROW_STEP(i)                                                                       \
    x = _mm256_broadcast_ss(a + (i) * row_stride);                                                      \
    lo##i = _mm256_fmadd_ps(x, b0, lo##i);                                                              \
    hi##i = _mm256_fmadd_ps(x, b1, hi##i);
// A's entry (row i, depth p) is at a + i·row_stride + p·depth_stride: (lda, 1) for A, (1, lda) for Aᵀ.
AFFINITY_AVX2_FMA static inline void gemm_block_6(const float *a, int64_t row_stride, int64_t depth_stride,
                                                  const float *panel, int32_t k, float *acc) {
    __m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0, lo2 = lo0, hi2 = lo0,
           lo3 = lo0, hi3 = lo0, lo4 = lo0, hi4 = lo0, lo5 = lo0, hi5 = lo0;
    for (int32_t p = 0; p < k; p++, panel += 16, a += depth_stride) {
        const __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8);
        __m256 x;
        AFFINITY_GEMM_ROW_STEP(0) AFFINITY_GEMM_ROW_STEP(1) AFFINITY_GEMM_ROW_STEP(2)
        AFFINITY_GEMM_ROW_STEP(3) AFFINITY_GEMM_ROW_STEP(4) AFFINITY_GEMM_ROW_STEP(5)
    }
    _mm256_storeu_ps(acc, lo0);      _mm256_storeu_ps(acc + 8, hi0);
    _mm256_storeu_ps(acc + 16, lo1); _mm256_storeu_ps(acc + 24, hi1);
    _mm256_storeu_ps(acc + 32, lo2); _mm256_storeu_ps(acc + 40, hi2);
    _mm256_storeu_ps(acc + 48, lo3); _mm256_storeu_ps(acc + 56, hi3);
    _mm256_storeu_ps(acc + 64, lo4); _mm256_storeu_ps(acc + 72, hi4);
    _mm256_storeu_ps(acc + 80, lo5); _mm256_storeu_ps(acc + 88, hi5);
}
#undef AFFINITY_GEMM_ROW_STEP

// The same sums for one row (the last rows of a range): same order, so the same result as in a 6-row block.
AFFINITY_AVX2_FMA static inline void gemm_block_1(const float *a, int64_t depth_stride, const float *panel, int32_t k,
                                                  float *acc) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int32_t p = 0; p < k; p++, panel += 16, a += depth_stride) {
        const __m256 x = _mm256_broadcast_ss(a);
        lo = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel), lo);
        hi = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel + 8), hi);
    }
    _mm256_storeu_ps(acc, lo);
    _mm256_storeu_ps(acc + 8, hi);
}

// Touches every cache line of `rows` rows of `k` floats (stride lda), to L1.
AFFINITY_AVX2_FMA static inline void prefetch_rows(const float *a, int64_t lda, int32_t rows, int32_t k) {
    for (int32_t q = 0; q < rows; q++)
        for (int32_t c = 0; c < k; c += 16) _mm_prefetch((const char *)(a + q * lda + c), _MM_HINT_T0);
}

// Rows [row_begin, row_end) of C = α·op(A)·B + β·C, op(A)'s entry (r, p) at a + r·row_stride + p·depth_stride.
AFFINITY_AVX2_FMA static inline void direct_rows(int64_t row_begin, int64_t row_end, int32_t n, int32_t k, float alpha,
                                                 const float *a, int64_t row_stride, int64_t depth_stride,
                                                 const float *panels, float beta, float *c, int64_t ldc) {
    float acc[6 * 16];
    // Rows in chunks, panels outermost within a chunk: one panel (k × 16 floats, 8 KB at k = 128) stays in L1
    // while the chunk's rows of A stream past it.
    const int64_t blocked_end = row_begin + (row_end - row_begin) / 6 * 6;
    // Long rows: the first panel's pass fetches each block of A from memory, and the hardware prefetcher, seeing
    // six interleaved streams, falls behind. Fetching two blocks ahead took [35k, 128]·[128, 64] from 0.93 to
    // 0.77 of OpenBLAS's time (single thread); at k ≤ 64 it measured neutral to slightly worse. (Aᵀ's callers
    // hold it in cache.)
    const int prefetch = k >= 96 && depth_stride == 1;
    for (int64_t chunk = row_begin; chunk < blocked_end; chunk += AFFINITY_GEMM_CHUNK_ROWS) {
        const int64_t chunk_end =
            chunk + AFFINITY_GEMM_CHUNK_ROWS < blocked_end ? chunk + AFFINITY_GEMM_CHUNK_ROWS : blocked_end;
        for (int32_t j = 0; j < n; j += 16) {
            const float *panel = panels + (int64_t)j * k;
            for (int64_t r = chunk; r < chunk_end; r += 6) {
                if (prefetch && j == 0 && r + 12 < blocked_end) prefetch_rows(a + (r + 12) * row_stride, row_stride, 6, k);
                gemm_block_6(a + r * row_stride, row_stride, depth_stride, panel, k, acc);
                store_block(c + r * ldc + j, ldc, acc, 6, n - j < 16 ? n - j : 16, alpha, beta);
            }
        }
    }
    // The last rows one at a time: the same sums in the same order, so a row's result does not depend on the
    // block it fell in (nor on how callers split rows across threads).
    for (int64_t r = blocked_end; r < row_end; r++)
        for (int32_t j = 0; j < n; j += 16) {
            gemm_block_1(a + r * row_stride, depth_stride, panels + (int64_t)j * k, k, acc);
            store_block(c + r * ldc + j, ldc, acc, 1, n - j < 16 ? n - j : 16, alpha, beta);
        }
}

AFFINITY_AVX2_FMA
void affinity_sgemm_direct_rows(int64_t row_begin, int64_t row_end, int32_t n, int32_t k, float alpha,
                                const float *a, int64_t lda, const float *panels, float beta, float *c, int64_t ldc) {
    direct_rows(row_begin, row_end, n, k, alpha, a, lda, 1, panels, beta, c, ldc);
}

AFFINITY_AVX2_FMA
void affinity_sgemm_direct_transposed_rows(int64_t row_begin, int64_t row_end, int32_t n, int32_t k, float alpha,
                                           const float *a, int64_t lda, const float *panels, float beta, float *c,
                                           int64_t ldc) {
    direct_rows(row_begin, row_end, n, k, alpha, a, 1, lda, panels, beta, c, ldc);
}
#endif
