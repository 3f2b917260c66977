#ifndef AFFINITY_EXP_H
#define AFFINITY_EXP_H
#include <stdint.h>
#include <string.h>

// exp(x) for x <= 0 (softmax arguments after subtracting the row maximum), written so the compiler can
// vectorise it (libm's expf is a call per element). Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
// polynomial for e^r (relative error < 2e-7 on that interval), and 2^n assembled in the exponent bits.
// Arguments below -87 give 0 (as expf underflows there).
static inline __attribute__((always_inline)) float affinity_exp_nonpositive(float x) {
    if (x < -87.0f) x = -87.0f;
    const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;        // ln2 split in two for an exact product with n
    r = r - n * -2.12194440e-4f;
    float p = 1.3888889e-3f;               // 1/720 … Horner down to 1
    p = p * r + 8.3333333e-3f;
    p = p * r + 4.1666667e-2f;
    p = p * r + 1.6666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
