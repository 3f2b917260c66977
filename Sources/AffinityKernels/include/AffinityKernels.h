// Hot loops whose speed depends on SIMD width. Written in C so that each can be compiled for
// several instruction sets at once (GCC/Clang `target_clones`) and picked at load time: the Swift
// side needs no `-target-cpu` flag, and the package stays usable as a dependency.
#pragma once
#include <stdint.h>

/// Top-k selection over one row of scores.
///
/// Writes at most `k` item indices into `out_index` and their scores into `out_score`, ordered by
/// score descending with ties broken by the lower index first. Entries equal to -infinity (the
/// evaluator's mark for excluded items) and NaN are never selected. Returns how many were written.
/// - Complexity: O(n + m log k) where m is the number of times the running threshold is beaten.
int32_t affinity_topk_row(const float *scores, int32_t n, int32_t k,
                          int32_t *out_index, float *out_score);
