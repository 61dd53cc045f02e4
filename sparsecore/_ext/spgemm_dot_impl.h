/*
 * Template: the masked product C<M> = A (+.*) B by dot products ("dot3" in
 * SuiteSparse:GraphBLAS; Davis, ACM TOMS 45(4), 2019, and "Algorithm 1037",
 * ACM TOMS 49(3), 2023): for each mask entry (i, j), C(i, j) is the merge of
 * row i of A with column j of B (a row of B^T). Its cost is per mask entry,
 * |A(i,:)| + |B(:,j)|, not per multiply, so it wins over the saxpy method
 * (spgemm_mask_impl.h) when the mask is much sparser than the product, as
 * in triangle counting on graphs with long rows.
 *
 * Define IDX/ISFX, VAL/VSFX, V_MUL, V_ADD, V_IS_ZERO as for
 * spgemm_mask_impl.h (included first: this file uses its row close-up).
 *
 * Rows of A must be strictly increasing (sorted, no duplicates). B may hold
 * duplicates: B^T is built here by a counting sort that keeps B's order, and
 * a matched A entry is multiplied with every B entry of its index, so the
 * products of C(i, j) are added in increasing k, in the same order as the
 * saxpy method: both methods give bit-identical results.
 */
#define DOT(name) SC_NAME3(name, ISFX, VSFX)

/* SC_GALLOP (spgemm_internal.h) chooses between merging and binary search. */

/* C(i, j) from A's row [a, a1) and B^T's row [b, b1): 1 and *out if some
 * index is shared, else 0. */
SC_INLINE int DOT(sc_dot_entry)(const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
                                IDX a, const IDX a1,
                                const IDX *SC_RESTRICT Tj, const VAL *SC_RESTRICT Tx,
                                IDX b, const IDX b1, VAL *out)
{
    if (a == a1 || b == b1) return 0;
    if (Aj[a1 - 1] < Tj[b] || Tj[b1 - 1] < Aj[a]) return 0;
    int found = 0;
    VAL acc = (VAL)0;
#define SC_DOT_ADD(pa, pb)                                       \
    do {                                                         \
        const VAL t_ = V_MUL(Ax[pa], Tx[pb]);                    \
        acc = found ? V_ADD(acc, t_) : t_;                       \
        found = 1;                                               \
    } while (0)
    const int64_t la = (int64_t)(a1 - a), lb = (int64_t)(b1 - b);
    if (la > SC_GALLOP * lb) {
        /* few B entries: find each in A's row */
        for (; b < b1; b++) {
            const IDX kb = Tj[b];
            IDX lo = a, hi = a1;
            while (lo < hi) {
                const IDX mid = lo + (hi - lo) / 2;
                if (Aj[mid] < kb) lo = mid + 1;
                else hi = mid;
            }
            a = lo;
            if (a == a1) break;
            if (Aj[a] == kb) SC_DOT_ADD(a, b);
        }
    } else if (lb > SC_GALLOP * la) {
        /* few A entries: find each in B's column */
        for (; a < a1; a++) {
            const IDX ka = Aj[a];
            IDX lo = b, hi = b1;
            while (lo < hi) {
                const IDX mid = lo + (hi - lo) / 2;
                if (Tj[mid] < ka) lo = mid + 1;
                else hi = mid;
            }
            b = lo;
            for (; b < b1 && Tj[b] == ka; b++) SC_DOT_ADD(a, b);
            if (b == b1) break;
        }
    } else {
        while (a < a1 && b < b1) {
            const IDX ka = Aj[a], kb = Tj[b];
            if (ka == kb) SC_DOT_ADD(a, b);
            /* on a match only b moves: B's duplicates of ka follow */
            a += (ka < kb);
            b += (kb <= ka);
        }
    }
#undef SC_DOT_ADD
    if (found) *out = acc;
    return found;
}

/* B (k x n CSR) transposed into Tp/Tj/Tx; colptr[0..n] are the prefix sums of
 * B's column counts. Rows of B^T come out in increasing row of B. */
static int DOT(sc_dot_transpose)(int64_t k, int64_t n,
                                 const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj,
                                 const VAL *SC_RESTRICT Bx, const int64_t *SC_RESTRICT colptr,
                                 IDX *SC_RESTRICT Tp, IDX *SC_RESTRICT Tj, VAL *SC_RESTRICT Tx)
{
    int64_t *next = (int64_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (next == NULL) return SC_ERR_NOMEM;
    for (int64_t j = 0; j <= n; j++) Tp[j] = (IDX)colptr[j];
    if (n > 0) memcpy(next, colptr, (size_t)n * sizeof(int64_t));
    for (int64_t r = 0; r < k; r++) {
        const IDX b1 = Bp[r + 1];
        for (IDX b = Bp[r]; b < b1; b++) {
            const int64_t q = next[Bj[b]]++;
            Tj[q] = (IDX)r;
            Tx[q] = Bx[b];
        }
    }
    free(next);
    return SC_OK;
}

SC_TARGET_CLONES
static int DOT(spgemm_masked_dot)(
    int64_t m, int64_t k, int64_t n,
    const IDX *SC_RESTRICT Ap, const IDX *SC_RESTRICT Aj, const VAL *SC_RESTRICT Ax,
    const IDX *SC_RESTRICT Bp, const IDX *SC_RESTRICT Bj, const VAL *SC_RESTRICT Bx,
    const int64_t *SC_RESTRICT colptr,
    const IDX *SC_RESTRICT Mp, const IDX *SC_RESTRICT Mj,
    const int64_t *SC_RESTRICT room, int ntasks, const int64_t *bounds, int nt,
    IDX *SC_RESTRICT Cp, IDX *SC_RESTRICT Cj, VAL *SC_RESTRICT Cx, int64_t *nnz_out)
{
    const int64_t bnnz = colptr[n];
    IDX *Tp = (IDX *)malloc((size_t)(n + 1) * sizeof(IDX));
    IDX *Tj = (IDX *)malloc((size_t)(bnnz > 0 ? bnnz : 1) * sizeof(IDX));
    VAL *Tx = (VAL *)malloc((size_t)(bnnz > 0 ? bnnz : 1) * sizeof(VAL));
    int status = SC_OK;
    if (Tp == NULL || Tj == NULL || Tx == NULL) status = SC_ERR_NOMEM;
    else status = DOT(sc_dot_transpose)(k, n, Bp, Bj, Bx, colptr, Tp, Tj, Tx);
    if (status != SC_OK) {
        free(Tp);
        free(Tj);
        free(Tx);
        return status;
    }

    sc_poll_t poll;
    sc_poll_init(&poll);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int failed = 0;
        #pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntasks; t++) {
            if (failed) continue;
            for (int64_t i = bounds[t]; i < bounds[t + 1]; i++) {
                IDX *SC_RESTRICT oj = Cj + room[i];
                VAL *SC_RESTRICT ox = Cx + room[i];
                const IDX a0 = Ap[i], a1 = Ap[i + 1];
                const IDX m1 = Mp[i + 1];
                int64_t w = 0;
                if (a0 < a1) {
                    for (IDX p = Mp[i]; p < m1; p++) {
                        /* a row can be long work: poll every 256 mask entries */
                        if (SC_POLL(&poll, p)) { failed = 2; break; }
                        const IDX j = Mj[p];
                        VAL v;
                        if (DOT(sc_dot_entry)(Aj, Ax, a0, a1, Tj, Tx, Tp[j], Tp[j + 1], &v)
                            && !V_IS_ZERO(v)) {
                            oj[w] = j;
                            ox[w] = v;
                            w++;
                        }
                    }
                }
                Cp[i + 1] = (IDX)w;
                if (failed) break;
            }
        }
        if (failed) {
            #pragma omp critical(sc_spgemm_status)
            if (status == SC_OK) status = SC_ERR_INTERRUPTED;
        }
    }
    free(Tp);
    free(Tj);
    free(Tx);
    if (status != SC_OK) return status;
    SC_NAME3(spgemm_close_rows, ISFX, VSFX)(m, room, Cp, Cj, Cx, nnz_out);
    return SC_OK;
}

#undef DOT
