#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif
#include "sc_common.h"
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <cpuid.h>
#endif

int sc_cpu_has_avx2_fma(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int sc_cpu_has_avx512(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    /* __builtin_cpu_supports checks that the OS enabled the AVX-512 state */
    __builtin_cpu_init();
    return sc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int sc_cpu_avx512_split(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    /* found once: cpuid leaves a virtual machine for the hypervisor */
    static int split = -1;
    if (split < 0) {
        unsigned int a = 0, b, c, d, family = 0;
        __builtin_cpu_init();
        if (sc_cpu_has_avx512() && __builtin_cpu_is("amd") && __get_cpuid(1, &a, &b, &c, &d)) {
            const unsigned int base = (a >> 8) & 0xf;
            family = base == 0xf ? base + ((a >> 20) & 0xff) : base;
        }
        split = family == 0x19;
    }
    return split;
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
        sc_advise_huge(p, nbytes);
        return p;
    }
#endif
    return malloc(nbytes);
}

/* 1 when advice is how huge pages are had: THP in "madvise" mode (in
 * "always" they come unasked, in "never" not at all) and not turned off with
 * SPARSECORE_HUGE_PAGES=0. Read once. */
static int huge_advice_wanted(void)
{
    static int wanted = -1;
    if (wanted >= 0) return wanted;
    int w = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const char *env = getenv("SPARSECORE_HUGE_PAGES");
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        char mode[128] = {0};
        if (fgets(mode, sizeof mode, f)) w = strstr(mode, "[madvise]") != NULL;
        fclose(f);
    }
    if (env && strcmp(env, "0") == 0) w = 0;
#endif
    wanted = w;
    return w;
}

void sc_advise_huge(void *p, size_t nbytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (nbytes < 2 * huge || !huge_advice_wanted()) return;
    const uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    const uintptr_t hi = ((uintptr_t)p + nbytes) & ~(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);  /* advice only */
#else
    (void)p;
    (void)nbytes;
#endif
}

void sc_move_down(char *dst, char *src, size_t nbytes)
{
#if defined(__linux__) && defined(MADV_DONTNEED)
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t gap = (size_t)(src - dst);
    const size_t chunk = gap < ((size_t)1 << 20) ? gap : ((size_t)1 << 20);
    if (dst < src && chunk >= 4 * page && nbytes >= ((size_t)1 << 20)) {
        for (size_t k = 0; k < nbytes; k += chunk) {
            const size_t len = nbytes - k < chunk ? nbytes - k : chunk;
            memcpy(dst + k, src + k, len);  /* disjoint: len <= src - dst */
            /* The whole pages of the chunk just read lie above everything
             * written so far and below everything still to read. */
            const uintptr_t lo = ((uintptr_t)(src + k) + page - 1) & ~(uintptr_t)(page - 1);
            const uintptr_t hi = ((uintptr_t)(src + k + len)) & ~(uintptr_t)(page - 1);
            if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
        return;
    }
#endif
    memmove(dst, src, nbytes);
}

static sc_check_fn interrupt_check = NULL;

void sc_set_interrupt_check(sc_check_fn fn)
{
    interrupt_check = fn;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sc_poll_init(sc_poll_t *p)
{
    p->stop = 0;
    p->next = now_seconds() + SC_POLL_SECONDS;
}

int sc_poll(sc_poll_t *p)
{
    int stop;
    #pragma omp atomic read
    stop = p->stop;
    if (stop) return 1;
    if (SC_OMP_THREAD_NUM() != 0 || interrupt_check == NULL) return 0;
    const double t = now_seconds();
    if (t < p->next) return 0;
    p->next = t + SC_POLL_SECONDS;
    if (interrupt_check()) {
        #pragma omp atomic write
        p->stop = 1;
        return 1;
    }
    return 0;
}
