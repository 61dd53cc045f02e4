/*
 * spgemm_internal.h -- helpers shared by the SpGEMM kernels (spgemm.c, the
 * plus-times product, and spgemm_semiring.c, the other semirings and the
 * masked products): accumulator thresholds, hashing, prefetching, and the
 * row span (multiplies and reachable column range of a row of C).
 * Private to the C core.
 */
#ifndef SPARSECORE_SPGEMM_INTERNAL_H
#define SPARSECORE_SPGEMM_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include "sc_common.h"
#include "sc_sort.h"

#define SC_EMPTY (-1)

/* How a row is accumulated (the same choice in both passes, and made from
 * the row alone, never from the thread):
 *  - at most SC_TINY_MAX multiplies: a linear search in the output slot
 *    (no workspace touched);
 *  - a column range (first to last column the row can reach) of at most
 *    SC_WINDOW columns: a dense accumulator over that window, reused by every
 *    row, which stays in cache, needs no probing and reads back in order
 *    through a two-level bitmap;
 *  - a row dense in a wide matrix (more than 1/16 of its columns): a dense
 *    accumulator over all n columns;
 *  - otherwise a hash table sized from the row. */
#define SC_TINY_MAX 8
#ifndef SC_WINDOW
#define SC_WINDOW (1 << 15)
#endif
/* The count pass keeps only a 4-byte mark per column: a wider window fits. */
#ifndef SC_SYM_WINDOW
#define SC_SYM_WINDOW (1 << 17)
#endif

/* Hashed rows longer than this use the ordered hash (sorted readback). */
#define SC_SHORT_ROW 32

SC_INLINE int sc_ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int t = 0;
    while (!(x & 1)) { x >>= 1; t++; }
    return t;
#endif
}

/* log2 of the hash table size for up to `len` keys: load factor <= 1/2. */
SC_INLINE int sc_table_bits(int64_t len)
{
    int bits = 4;
    while (((int64_t)1 << bits) < 2 * len) bits++;
    return bits;
}

/* Prefetch the B row needed SC_AHEAD A entries from now (possibly in a later
 * row of the same task): B rows are scattered, and a row-wise product spends
 * most of its time waiting for them. */
#define SC_AHEAD 4

/* One side more than SC_GALLOP times longer than the other: look the short
 * side's indices up by binary search instead of merging. */
#ifndef SC_GALLOP
#define SC_GALLOP 16
#endif

/* Fibonacci hashing: every bit of the key reaches the slot. */
SC_INLINE uint64_t sc_hash(int64_t key, int bits)
{
    return ((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - bits);
}

/* ---- row span, per index type ---- */
#include "sc_index_i32.h"
#include "spgemm_span_impl.h"
#include "sc_index_end.h"

#include "sc_index_i64.h"
#include "spgemm_span_impl.h"
#include "sc_index_end.h"

#endif
