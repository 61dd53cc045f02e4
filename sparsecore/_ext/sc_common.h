/*
 * sc_common.h -- shared definitions for the sparsecore C kernels.
 *
 * Kernels are plain C99 on raw pointers. They trust their inputs (the Python
 * layer validates shapes, dtypes, index ranges and sortedness once) and report
 * failures through an int status: SC_OK or a negative SC_ERR_* code.
 */
#ifndef SPARSECORE_SC_COMMON_H
#define SPARSECORE_SC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SC_OK 0
#define SC_ERR_NOMEM (-1)      /* a workspace allocation failed */
#define SC_ERR_OVERFLOW (-2)   /* a count does not fit the index type */
#define SC_ERR_VALUE (-3)      /* an argument the caller should have checked */
#define SC_ERR_INTERRUPTED (-4)

/* Type codes shared with the Cython bindings (sparsecore/_ext/_kernels.pxd). */
enum sc_index_type { SC_INT32 = 0, SC_INT64 = 1 };
enum sc_value_type {
    SC_FLOAT32 = 0,
    SC_FLOAT64 = 1,
    SC_COMPLEX64 = 2,
    SC_COMPLEX128 = 3,
    SC_UINT64 = 4,  /* integer arithmetic modulo 2**64; every numpy integer type maps here */
    SC_UINT8 = 5    /* booleans (0 or 1), for the lor_land semiring */
};

typedef struct { float re, im; } sc_complex64;
typedef struct { double re, im; } sc_complex128;

/* Names of template instances: SC_NAME3(spgemm_masked, i32, f64) is
 * spgemm_masked_i32_f64, after the arguments are expanded (so they may be
 * the macros a template is instantiated with: ISFX, VSFX, ...). */
#define SC_CAT_(a, b) a##b
#define SC_CAT(a, b) SC_CAT_(a, b)
#define SC_NAME2(a, b) SC_CAT(a, SC_CAT(_, b))
#define SC_NAME3(a, b, c) SC_NAME2(SC_NAME2(a, b), c)
#define SC_NAME4(a, b, c, d) SC_NAME2(SC_NAME3(a, b, c), d)

#if defined(__GNUC__) || defined(__clang__)
#define SC_RESTRICT __restrict__
#define SC_INLINE static inline __attribute__((always_inline))
#define SC_LIKELY(x) __builtin_expect(!!(x), 1)
#define SC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SC_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)  /* read, keep */
#define SC_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3) /* to write */
#define SC_PREFETCH_L2(p) __builtin_prefetch((const void *)(p), 0, 2) /* read, to L2 */
#else
#define SC_RESTRICT
#define SC_INLINE static inline
#define SC_LIKELY(x) (x)
#define SC_UNLIKELY(x) (x)
#define SC_PREFETCH(p) ((void)0)
#define SC_PREFETCH_W(p) ((void)0)
#define SC_PREFETCH_L2(p) ((void)0)
#endif

/* A function compiled twice, for the portable baseline and for AVX2+FMA; the
 * loader picks one for this CPU at run time. ("avx2,fma" would be two clones,
 * AVX2 without FMA and FMA without AVX2: the x86-64-v3 level has both.) */
#if defined(SC_HAVE_TARGET_CLONES_V3)
#define SC_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(SC_HAVE_TARGET_CLONES)
#define SC_TARGET_CLONES __attribute__((target_clones("avx2,fma", "default")))
#else
#define SC_TARGET_CLONES
#endif

#ifdef _OPENMP
#define SC_OMP_THREAD_NUM() omp_get_thread_num()
#else
#define SC_OMP_THREAD_NUM() 0
#endif

/* Cooperative interruption. Long kernels poll from their row loops with
 * SC_POLL(poll, i); on thread 0, at most every SC_POLL_SECONDS, that calls the
 * check registered by the bindings (which takes the GIL and runs Python's
 * signal handlers, so Ctrl-C reaches a running kernel). Once it reports an
 * interrupt every thread stops at its next poll and the kernel returns
 * SC_ERR_INTERRUPTED. */
typedef int (*sc_check_fn)(void);
void sc_set_interrupt_check(sc_check_fn fn);

typedef struct {
    int stop;        /* read and written with omp atomics */
    double next;     /* thread 0 only: when to call the check next */
} sc_poll_t;

#define SC_POLL_SECONDS 0.05
#define SC_POLL_ROWS 255   /* poll every 256 rows (a mask) */

void sc_poll_init(sc_poll_t *p);
/* 1 when the kernel should stop (call it from every thread). */
int sc_poll(sc_poll_t *p);
#define SC_POLL(p, i) (((i) & SC_POLL_ROWS) == 0 && sc_poll(p))

/* malloc for a large output written front to back: aligned to 2 MiB and
 * advised to use huge pages (sc_advise_huge) when big enough, otherwise
 * plain malloc. Free with free(); realloc works on it. */
void *sc_alloc_room(size_t nbytes);

/* Advise Linux to back the 2 MiB pages wholly inside [p, p + nbytes) with
 * huge pages, for a block of at least 4 MiB about to be written for the
 * first time (one fault per 2 MiB instead of per 4 KiB; numpy advises its own
 * large arrays the same way). Nothing outside the block changes; the advice
 * stays on those pages after the call. Only in THP "madvise" mode and unless
 * SPARSECORE_HUGE_PAGES=0; elsewhere a no-op. */
void sc_advise_huge(void *p, size_t nbytes);

/* memmove(dst, src, nbytes) for dst <= src inside a private anonymous
 * allocation (sc_alloc_room), handing the source's pages back to the system
 * as they are read, so moving data down never holds two copies of it. */
void sc_move_down(char *dst, char *src, size_t nbytes);

/* 1 when the CPU running us has AVX2 and FMA (what the fast clones use). */
int sc_cpu_has_avx2_fma(void);
/* 1 when the CPU has AVX-512 F, BW, DQ and VL (the x86-64-v4 level) and the
 * OS saves its registers. */
int sc_cpu_has_avx512(void);
/* 1 when the CPU has AVX-512 but runs 512-bit operations as two 256-bit
 * halves (AMD family 19h: Zen 4). */
int sc_cpu_avx512_split(void);
/* 1 when the build carries AVX2+FMA clones of the hot loops. */
int sc_build_has_target_clones(void);

#endif
