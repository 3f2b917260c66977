// Affinity's direct tall-by-small kernel (Sources/AffinityKernels/gemm.c) against OpenBLAS's cblas_sgemm on one
// thread, same operands, best of REPEATS each: the single-threaded figures in docs/notes/kernels.md.
// Build: clang -O2 -ISources/AffinityKernels/include $(pkg-config --cflags openblas) Benchmarks/gemm_direct_kernel.c \
//          Sources/AffinityKernels/gemm.c $(pkg-config --libs openblas) -lm -o gemm_direct_kernel
// Usage: taskset -c 1 /tmp/gemm_direct_kernel M N K REPEATS      (C[M, N] = A[M, K]·B[K, N])
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "AffinityKernels.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
extern void openblas_set_num_threads(int);

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s M N K REPEATS\n", argv[0]); return 2; }
    const int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), repeats = atoi(argv[4]);
    if (!affinity_gemm_direct_available()) { fprintf(stderr, "this CPU does not run the direct kernel\n"); return 1; }
    openblas_set_num_threads(1);
    const int n16 = (n + 15) / 16 * 16;
    float *a = malloc(4L * m * k), *b = malloc(4L * k * n), *panels = malloc(4L * k * n16);
    float *c_blas = malloc(4L * m * n), *c_direct = malloc(4L * m * n);
    srand(1);
    for (long i = 0; i < (long)m * k; i++) a[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < (long)k * n; i++) b[i] = rand() / (float)RAND_MAX - 0.5f;
    double best_blas = 1e9, best_direct = 1e9;
    for (int r = 0; r < repeats; r++) {
        double s = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c_blas, n);
        s = now() - s; if (s < best_blas) best_blas = s;
        s = now();
        affinity_gemm_pack_panels(b, n, 0, k, n, panels);
        affinity_sgemm_direct_rows(0, m, n, k, 1, a, k, panels, 0, c_direct, n);
        s = now() - s; if (s < best_direct) best_direct = s;
    }
    double worst = 0;
    for (long i = 0; i < (long)m * n; i++) worst = fmax(worst, fabs(c_blas[i] - c_direct[i]));
    printf("{\"m\": %d, \"n\": %d, \"k\": %d, \"openblas_s\": %.6f, \"direct_s\": %.6f, \"ratio\": %.3f, \"max_diff\": %.2e, \"blas_core\": \"%s\"}\n",
           m, n, k, best_blas, best_direct, best_direct / best_blas, worst, openblas_get_corename());
    return 0;
}
