#ifndef AFFINITY_MULTIVERSION_H
#define AFFINITY_MULTIVERSION_H

// Swift's default x86-64 target has no AVX, so every hot loop is compiled several times and the loader picks
// the best clone for the CPU it runs on. The AVX2 machines need "arch=x86-64-v3" (AVX2 *and* FMA): a plain
// "avx2" clone has no FMA, so each multiply-add is two instructions. "avx2" stays as the fallback for
// hypervisors that expose AVX2 but hide another v3 feature; "avx512f" includes FMA.
#if defined(__x86_64__) && defined(__ELF__) && !defined(__APPLE__)
#define AFFINITY_MULTIVERSION __attribute__((target_clones("avx512f", "arch=x86-64-v3", "avx2", "default")))
#else
#define AFFINITY_MULTIVERSION
#endif

#endif
