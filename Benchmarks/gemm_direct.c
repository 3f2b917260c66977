// OpenBLAS's cblas_sgemm called directly from C: the reference for `affinity-bench gemm` (same shapes,
// same library). Build: cc -O2 $(pkg-config --cflags openblas) gemm_direct.c $(pkg-config --libs openblas)
// Usage: gemm_direct M N K REPEATS
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int m = argc > 1 ? atoi(argv[1]) : 2048, n = argc > 2 ? atoi(argv[2]) : 40981, k = argc > 3 ? atoi(argv[3]) : 64;
    int repeats = argc > 4 ? atoi(argv[4]) : 20;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    srand(2);
    for (long i = 0; i < (long)m * k; i++) a[i] = rand() / (float)RAND_MAX;
    for (long i = 0; i < (long)k * n; i++) b[i] = rand() / (float)RAND_MAX;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    double *t = malloc(sizeof(double) * repeats);
    for (int r = 0; r < repeats; r++) {
        double s = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        t[r] = now() - s;
    }
    qsort(t, repeats, sizeof(double), cmp);
    double med = t[repeats / 2];
    printf("{\"bench\": \"gemm_direct_c\", \"m\": %d, \"n\": %d, \"k\": %d, \"median_s\": %.6f, \"gflops\": %.2f, \"blas_core\": \"%s\"}\n",
           m, n, k, med, 2.0 * m * n * k / med / 1e9, openblas_get_corename());
    return 0;
}
