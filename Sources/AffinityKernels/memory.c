#include "AffinityKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void affinity_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 1 << 28);
#endif
}
