// OpenBLAS's CBLAS interface plus the few LAPACK routines Affinity calls (Fortran ABI; OpenBLAS
// exports them). Declared here so no LAPACKE header is needed.
#pragma once
#include <cblas.h>

void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info);
void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info);
