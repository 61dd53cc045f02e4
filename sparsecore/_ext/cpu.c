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
