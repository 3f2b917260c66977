// Inverted-dropout masks from a counter-based generator: entry i of a mask is a hash of (seed, i), so any range
// of a mask can be drawn on its own, in parallel, in chunks, and drawn again in the backward pass instead of
// being kept.
#include "AffinityKernels.h"
#include "multiversion.h"

// MurmurHash3's 32-bit finaliser: a bijection whose output bits each depend on every input bit.
static inline uint32_t affinity_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

AFFINITY_MULTIVERSION
void affinity_dropout_mask(uint64_t seed, float rate, int64_t begin, int64_t end, float *mask) {
    const uint32_t low_seed = (uint32_t)seed, high_seed = (uint32_t)(seed >> 32);
    const float keep = 1.0f / (1.0f - rate), scale = 1.0f / 16777216.0f;
    for (int64_t i = begin; i < end; i++) {
        // Two rounds, the index's high half and the seed's other half entering the second.
        const uint32_t h = affinity_mix32(affinity_mix32((uint32_t)i ^ low_seed) ^ (uint32_t)((uint64_t)i >> 32) ^ high_seed);
        mask[i - begin] = (float)(int32_t)(h >> 8) * scale >= rate ? keep : 0.0f;   // a 24-bit uniform in [0, 1)
    }
}
