/*
 * Per-row top-k of a sparse product, for recommending the k best items of
 * every user from sparse user and item embeddings (scores = U @ V^T).
 *
 * Each thread owns a dense accumulator over the n columns, reused row after
 * row (Gustavson's sparse accumulator): a row is scattered into it, the
 * candidates clearing a bar (a lower bound of the k-th best value) are
 * collected, and the best k are selected. Two paths:
 *  - one row at a time: rows whose multiplies reach n / SC_TOPK_DENSE_DIV
 *    scan every column of the accumulator; sparser rows record the columns
 *    they touch and scan only those, then fill up with implicit zeros;
 *  - SC_TOPK_LANES rows at a time (when most rows touch many columns): the
 *    accumulator holds a lane per row, so every B entry updates all rows of
 *    the block with one SIMD multiply-add, and the bars and the candidate
 *    scan run over the lanes together.
 * Both paths sum every row in the same order, in the operands' precision,
 * without fused multiply-adds, so results do not depend on the path or on
 * the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"
#include "sc_sort.h"

#ifndef SC_TOPK_DENSE_DIV
#define SC_TOPK_DENSE_DIV 4
#endif
/* Rows handled together by the blocked path (one SIMD register of floats
 * with AVX2). */
#define SC_TOPK_LANES 8

typedef struct {
    double v;
    int64_t i;
} sc_cand;

/* a ranks before b: larger value, then smaller column */
SC_INLINE int sc_better(double av, int64_t ai, double bv, int64_t bi)
{
    return av > bv || (av == bv && ai < bi);
}

/* min-heap of the k best so far: heap[0] is the worst of them */
SC_INLINE void sc_sift_down(sc_cand *h, int64_t len, int64_t pos)
{
    sc_cand x = h[pos];
    for (;;) {
        int64_t c = 2 * pos + 1;
        if (c >= len) break;
        if (c + 1 < len && sc_better(h[c].v, h[c].i, h[c + 1].v, h[c + 1].i)) c++;
        if (!sc_better(x.v, x.i, h[c].v, h[c].i)) break;
        h[pos] = h[c];
        pos = c;
    }
    h[pos] = x;
}

SC_INLINE void sc_sift_up(sc_cand *h, int64_t pos)
{
    sc_cand x = h[pos];
    while (pos > 0) {
        int64_t p = (pos - 1) / 2;
        if (!sc_better(h[p].v, h[p].i, x.v, x.i)) break;
        h[pos] = h[p];
        pos = p;
    }
    h[pos] = x;
}

/* offer a candidate to a full or filling heap; returns 1 if it was kept */
SC_INLINE int sc_offer(sc_cand *h, int64_t *len, int64_t k, double v, int64_t i)
{
    if (v != v) v = -INFINITY; /* an overflowing sum (inf - inf) ranks last */
    if (*len < k) {
        h[*len].v = v;
        h[*len].i = i;
        sc_sift_up(h, (*len)++);
        return 1;
    }
    if (!sc_better(v, i, h[0].v, h[0].i)) return 0;
    h[0].v = v;
    h[0].i = i;
    sc_sift_down(h, k, 0);
    return 1;
}

/* Reorder a[0..n) so that a[0..k) are its k best entries and a[k-1] the
 * worst of them (Hoare's FIND, after Wirth); keys are distinct (columns). */
static void sc_select(sc_cand *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    const int64_t target = k - 1;
    while (hi > lo) {
        const sc_cand pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (sc_better(a[i].v, a[i].i, pivot.v, pivot.i)) i++;
            while (sc_better(pivot.v, pivot.i, a[j].v, a[j].i)) j--;
            if (i <= j) {
                const sc_cand t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else break;
    }
}

/* The k-th largest of a[0..n) (1 <= k <= n), reordering a. */
static double sc_kth_largest(double *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    const int64_t target = k - 1;
    while (hi > lo) {
        const double pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (pivot > a[j]) j--;
            if (i <= j) {
                const double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else break;
    }
    return a[target];
}

/* Chunks whose maxima bound the k-th best value from below: the k-th
 * largest of the maxima of SC_TOPK_CHUNKS_PER_K * k disjoint chunks is at
 * most the k-th largest entry (k chunks hold an entry at least that large),
 * and close to it when the best entries are spread over the chunks. */
#define SC_TOPK_CHUNKS_PER_K 4
SC_INLINE int64_t sc_topk_chunks(int64_t n, int64_t k)
{
    const int64_t c = SC_TOPK_CHUNKS_PER_K * k;
    return c < n ? c : n;
}

/* Candidates are gathered in a buffer of `cap` > k entries; when it is full
 * the k best are selected and the worst of them becomes the bar a new
 * candidate must clear (amortised O(1) per candidate, against O(log k) for
 * a heap). Returns the new number of buffered entries. */
SC_INLINE int64_t sc_buffer_push(sc_cand *buf, int64_t nb, int64_t cap, int64_t k,
                                 double v, int64_t i, double *bar)
{
    if (v != v) v = -INFINITY;
    buf[nb].v = v;
    buf[nb].i = i;
    if (++nb == cap) {
        sc_select(buf, nb, k);
        nb = k;
        *bar = buf[k - 1].v;
    }
    return nb;
}

/* Turn the (at most k) buffered entries into a heap with the worst on top. */
SC_INLINE int64_t sc_heapify(sc_cand *buf, int64_t nb, int64_t k)
{
    if (nb > k) {
        sc_select(buf, nb, k);
        nb = k;
    }
    for (int64_t p = nb / 2 - 1; p >= 0; p--) sc_sift_down(buf, nb, p);
    return nb;
}

#include "sc_index_i32.h"
#define VAL float
#define VINT int32_t
#define VSFX f32
#include "topk_impl.h"
#undef VAL
#undef VINT
#undef VSFX
#define VAL double
#define VINT int64_t
#define VSFX f64
#include "topk_impl.h"
#undef VAL
#undef VINT
#undef VSFX
#include "sc_index_end.h"

#include "sc_index_i64.h"
#define VAL float
#define VINT int32_t
#define VSFX f32
#include "topk_impl.h"
#undef VAL
#undef VINT
#undef VSFX
#define VAL double
#define VINT int64_t
#define VSFX f64
#include "topk_impl.h"
#undef VAL
#undef VINT
#undef VSFX
#include "sc_index_end.h"

int sc_topk_product(int itype, int vtype, int64_t m, int64_t d, int64_t n, int64_t k,
                    int blocked, const void *Ap, const void *Aj, const void *Ax,
                    const void *Bp, const void *Bj, const void *Bx,
                    const void *Ep, const void *Ej,
                    int n_threads, int64_t *out_idx, void *out_val)
{
#define SC_TK_ARGS m, d, n, k, blocked, Ap, Aj, Ax, Bp, Bj, Bx, Ep, Ej, n_threads, out_idx, out_val
    if (itype == SC_INT32) {
        if (vtype == SC_FLOAT32) return sc_topk_i32_f32(SC_TK_ARGS);
        if (vtype == SC_FLOAT64) return sc_topk_i32_f64(SC_TK_ARGS);
    } else if (itype == SC_INT64) {
        if (vtype == SC_FLOAT32) return sc_topk_i64_f32(SC_TK_ARGS);
        if (vtype == SC_FLOAT64) return sc_topk_i64_f64(SC_TK_ARGS);
    }
#undef SC_TK_ARGS
    return SC_ERR_VALUE;
}

int64_t sc_topk_product_flops(int itype, int64_t m, const void *Ap, const void *Aj,
                              const void *Bp)
{
    int64_t total = 0;
    if (itype == SC_INT32) {
        const int32_t *ap = Ap, *aj = Aj, *bp = Bp;
        for (int64_t p = 0; p < ap[m]; p++) total += bp[aj[p] + 1] - bp[aj[p]];
    } else {
        const int64_t *ap = Ap, *aj = Aj, *bp = Bp;
        for (int64_t p = 0; p < ap[m]; p++) total += bp[aj[p] + 1] - bp[aj[p]];
    }
    return total;
}
