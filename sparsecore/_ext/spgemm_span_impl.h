/*
 * Template over the index type: the multiplies of a row of C = A @ B and the
 * column range it can reach. Define IDX and ISFX.
 */

/* Multiplies of row i, and (when B rows are sorted) the first and last
 * column it can reach: the first and last entries of the B rows it draws on.
 * Without sorted B rows the range is the whole width. */
SC_INLINE int64_t SC_NAME2(row_span, ISFX)(
    IDX a0, IDX a1, const IDX *SC_RESTRICT Aj, const IDX *SC_RESTRICT Bp,
    const IDX *SC_RESTRICT Bj, int b_sorted, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t flops = 0;
    if (b_sorted) {
        int64_t l = n, h = -1;
        for (IDX a = a0; a < a1; a++) {
            const IDX k = Aj[a];
            const IDX b0 = Bp[k], b1 = Bp[k + 1];
            if (b1 > b0) {
                flops += b1 - b0;
                if (Bj[b0] < l) l = Bj[b0];
                if (Bj[b1 - 1] > h) h = Bj[b1 - 1];
            }
        }
        *lo = l;
        *hi = h;
    } else {
        for (IDX a = a0; a < a1; a++) flops += Bp[Aj[a] + 1] - Bp[Aj[a]];
        *lo = 0;
        *hi = n - 1;
    }
    return flops;
}

