#include "AffinityKernels.h"
#include <math.h>

#include "multiversion.h"

// "a is worse than b": lower score, or equal score and higher index (so lower indices win ties).
static inline int worse(float sa, int32_t ia, float sb, int32_t ib) {
    return sa < sb || (sa == sb && ia > ib);
}

// Min-heap on `worse`: the root is the worst kept candidate.
static inline void sift_down(float *hs, int32_t *hi, int32_t size, int32_t pos) {
    for (;;) {
        int32_t l = 2 * pos + 1, r = l + 1, m = pos;
        if (l < size && worse(hs[l], hi[l], hs[m], hi[m])) m = l;
        if (r < size && worse(hs[r], hi[r], hs[m], hi[m])) m = r;
        if (m == pos) return;
        float ts = hs[pos]; hs[pos] = hs[m]; hs[m] = ts;
        int32_t ti = hi[pos]; hi[pos] = hi[m]; hi[m] = ti;
        pos = m;
    }
}

static inline void sift_up(float *hs, int32_t *hi, int32_t pos) {
    while (pos > 0) {
        int32_t p = (pos - 1) / 2;
        if (!worse(hs[pos], hi[pos], hs[p], hi[p])) return;
        float ts = hs[pos]; hs[pos] = hs[p]; hs[p] = ts;
        int32_t ti = hi[pos]; hi[pos] = hi[p]; hi[p] = ti;
        pos = p;
    }
}

// Scans in index order, so a later item with a score equal to the threshold is worse than every
// kept item: a strict `>` against the threshold is exactly the tie rule.
static inline void offer(float s, int32_t j, int32_t k, float *hs, int32_t *hi,
                         int32_t *size, float *threshold) {
    if (*size < k) {
        hs[*size] = s; hi[*size] = j; sift_up(hs, hi, *size); (*size)++;
        if (*size == k) *threshold = hs[0];
    } else {
        hs[0] = s; hi[0] = j; sift_down(hs, hi, k, 0);
        *threshold = hs[0];
    }
}

AFFINITY_MULTIVERSION
int32_t affinity_topk_row(const float *scores, int32_t n, int32_t k,
                          int32_t *out_index, float *out_score) {
    if (k <= 0 || n <= 0) return 0;
    // The heap lives in the output buffers; they are sorted in place at the end.
    float *hs = out_score;
    int32_t *hi = out_index;
    int32_t size = 0;
    float threshold = -INFINITY;
    const int32_t block = 32;
    int32_t j = 0;
    for (; j + block <= n; j += block) {
        // Branch-free test of a whole block: vectorises to a few compares and one mask test.
        int any = 0;
        for (int32_t t = 0; t < block; t++) any |= scores[j + t] > threshold;
        if (!any) continue;
        for (int32_t t = 0; t < block; t++) {
            float s = scores[j + t];
            if (s > threshold) offer(s, j + t, k, hs, hi, &size, &threshold);
        }
    }
    for (; j < n; j++) {
        float s = scores[j];
        if (s > threshold) offer(s, j, k, hs, hi, &size, &threshold);
    }
    // Heap sort: repeatedly move the worst to the back, giving best-first order.
    for (int32_t end = size - 1; end > 0; end--) {
        float ts = hs[0]; hs[0] = hs[end]; hs[end] = ts;
        int32_t ti = hi[0]; hi[0] = hi[end]; hi[end] = ti;
        sift_down(hs, hi, end, 0);
    }
    return size;
}
