#define _GNU_SOURCE
#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include "sc_common.h"

int sc_cpu_has_avx2_fma(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int sc_build_has_target_clones(void)
{
#ifdef SC_HAVE_TARGET_CLONES
    return 1;
#else
    return 0;
#endif
}

void *sc_alloc_room(size_t nbytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    if (nbytes >= 2 * huge) {
        void *p = NULL;
        if (posix_memalign(&p, huge, nbytes) != 0) return NULL;
        madvise(p, nbytes, MADV_HUGEPAGE);  /* advice only: failure is harmless */
        return p;
    }
#endif
    return malloc(nbytes);
}
