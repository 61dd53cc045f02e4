"""Forest blocks and exact tree solves for sparse quadratics (private).

For f(x) = x^T A x / 2 - b^T x with A sparse symmetric positive definite (a
graph Laplacian block in label propagation), a block of nodes whose induced
subgraph is a forest is minimised exactly in time linear in its size by
Gaussian elimination from the leaves to the roots and back-substitution from
the roots: the message passing of Nutini, Laradji & Schmidt (JMLR 2022,
Section 5), done as the equivalent tree elimination.

A block is stored as its nodes in breadth-first order (``order``), for each
the position of its parent in that order (``ppos``, -1 for a root), the edge
value A[node, parent] (``edge``) and, after :func:`factor`, the elimination
pivots (``piv``). Several blocks are concatenated with offsets ``boff``.
``A`` comes as CSR arrays with the diagonal stored; right-hand sides and
solutions are (n, K) C-ordered (one row per node).
"""
from libc.math cimport sqrt
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.stdlib cimport malloc, free

import numpy as np

from sparsecore._ext._arrays cimport register_interrupt_check, raise_interrupt

cdef extern from "sc_common.h" nogil:
    ctypedef struct sc_poll_t:
        int stop
        double next
    void sc_poll_init(sc_poll_t *p)
    int sc_poll(sc_poll_t *p)

# Ctrl-C reaches the compiled loops: they poll once per epoch / iteration
register_interrupt_check()

ctypedef fused index_t:
    int32_t
    int64_t


cdef inline int64_t _find(int64_t *uf, int64_t i) noexcept nogil:
    cdef int64_t r = i, t
    while uf[r] != r:
        r = uf[r]
    while uf[i] != r:      # path compression
        t = uf[i]
        uf[i] = r
        i = t
    return r


def forest_partition(const index_t[::1] indptr, const index_t[::1] indices,
                     const int64_t[::1] visit, int64_t[::1] block):
    """Greedy partition of the nodes into forests ("TreePartitions"): visit
    the nodes in ``visit`` order and put each in the first block in which it
    closes no cycle (its neighbours already there are in distinct trees),
    opening a new block if none. Writes ``block`` (n,) and returns the number
    of blocks."""
    cdef int64_t n = indptr.shape[0] - 1
    cdef int64_t t, i, jj, j, k, nb = 0, r
    cdef int64_t *uf = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef int64_t *seen = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef int64_t stamp = 0
    cdef bint ok
    if uf == NULL or seen == NULL:
        free(uf)
        free(seen)
        raise MemoryError(f"forest_partition: workspace of {2 * n} int64 failed")
    with nogil:
        for i in range(n):
            uf[i] = i
            seen[i] = -1
            block[i] = -1
        for t in range(n):
            i = visit[t]
            k = 0
            while True:
                # neighbours of i inside block k must sit in distinct trees
                stamp += 1
                ok = True
                for jj in range(indptr[i], indptr[i + 1]):
                    j = indices[jj]
                    if j == i or block[j] != k:
                        continue
                    r = _find(uf, j)
                    if seen[r] == stamp:
                        ok = False
                        break
                    seen[r] = stamp
                if ok:
                    break
                k += 1
            block[i] = k
            if k + 1 > nb:
                nb = k + 1
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                if j != i and block[j] == k:
                    uf[_find(uf, j)] = _find(uf, i)
    free(uf)
    free(seen)
    return nb


def greedy_forest(const index_t[::1] indptr, const index_t[::1] indices,
                  const int64_t[::1] visit, int8_t[::1] inblock):
    """One forest grown greedily in ``visit`` order (the paper's GS-tree
    rules when ``visit`` sorts by a greedy score): a node joins unless two of
    its neighbours already in the forest share a tree. Writes ``inblock``
    and returns the forest's size."""
    cdef int64_t n = indptr.shape[0] - 1
    cdef int64_t t, i, jj, j, r, size = 0
    cdef int64_t *uf = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef int64_t *seen = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef bint ok
    if uf == NULL or seen == NULL:
        free(uf)
        free(seen)
        raise MemoryError(f"greedy_forest: workspace of {2 * n} int64 failed")
    with nogil:
        for i in range(n):
            uf[i] = i
            seen[i] = -1
            inblock[i] = 0
        for t in range(visit.shape[0]):
            i = visit[t]
            ok = True
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                if j == i or not inblock[j]:
                    continue
                r = _find(uf, j)
                if seen[r] == t:
                    ok = False
                    break
                seen[r] = t
            if not ok:
                continue
            inblock[i] = 1
            size += 1
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                if j != i and inblock[j]:
                    uf[_find(uf, j)] = _find(uf, i)
    free(uf)
    free(seen)
    return size


def forest_structure(const index_t[::1] indptr, const index_t[::1] indices,
                     const double[::1] data, const int64_t[::1] label,
                     const int64_t[::1] nodes, int64_t which,
                     int64_t[::1] order, int64_t[::1] ppos, double[::1] edge,
                     double[::1] diag):
    """Breadth-first order of the forest induced by ``label == which`` (the
    nodes listed in ``nodes``), with parent positions, parent edge values and
    the diagonal entries. ``order`` etc. have len(nodes) entries. Returns the
    number of nodes placed (len(nodes) unless the subgraph has a cycle, which
    is reported as -1)."""
    cdef int64_t m = nodes.shape[0], n = indptr.shape[0] - 1
    cdef int64_t head = 0, tail = 0, s, i, jj, j
    cdef int64_t *pos = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef bint cycle = False
    if pos == NULL:
        raise MemoryError(f"forest_structure: workspace of {n} int64 failed")
    with nogil:
        for s in range(m):
            pos[nodes[s]] = -1
        for s in range(m):
            if pos[nodes[s]] != -1:
                continue
            # new tree rooted at nodes[s]
            order[tail] = nodes[s]
            ppos[tail] = -1
            edge[tail] = 0.0
            pos[nodes[s]] = tail
            tail += 1
            while head < tail:
                i = order[head]
                diag[head] = 0.0
                for jj in range(indptr[i], indptr[i + 1]):
                    j = indices[jj]
                    if j == i:
                        diag[head] += data[jj]
                        continue
                    if label[j] != which:
                        continue
                    if pos[j] == -1:
                        order[tail] = j
                        ppos[tail] = head
                        edge[tail] = data[jj]
                        pos[j] = tail
                        tail += 1
                    elif pos[j] != ppos[head] and ppos[pos[j]] != head:
                        cycle = True
                head += 1
    free(pos)
    return -1 if cycle else tail


def factor(const int64_t[::1] boff, const int64_t[::1] ppos, const double[::1] edge,
           const double[::1] diag, double[::1] piv):
    """Elimination pivots of every block (leaves to roots). Returns 0, or 1
    when a pivot is not positive (the matrix is not positive definite)."""
    cdef int64_t nb = boff.shape[0] - 1, b, t, lo, hi, p
    cdef int bad = 0
    with nogil:
        for b in range(nb):
            lo = boff[b]
            hi = boff[b + 1]
            for t in range(lo, hi):
                piv[t] = diag[t]
            for t in range(hi - 1, lo - 1, -1):
                if piv[t] <= 0.0:
                    bad = 1
                    continue
                p = ppos[t]
                if p >= 0:
                    piv[lo + p] -= edge[t] * edge[t] / piv[t]
    return bad


def sweep(const index_t[::1] indptr, const index_t[::1] indices,
          const double[::1] data, const int64_t[::1] label,
          const int64_t[::1] boff, const int64_t[::1] order, const int64_t[::1] ppos,
          const double[::1] edge, const double[::1] piv,
          const int64_t[::1] blocks, const double[:, ::1] B, double[:, ::1] X,
          double[:, ::1] R):
    """Exact block updates, in the sequence ``blocks`` (block ids; label[i]
    is the block of node i): for each, x_b <- A_bb^{-1} (b_b - A_bc x_c) by
    tree elimination. ``R`` is (n, K) workspace."""
    if blocks.shape[0] == 0 or X.shape[0] == 0 or X.shape[1] == 0:
        return
    with nogil:
        _sweep_ptr(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                   &data[0] if data.shape[0] else NULL, &label[0], &boff[0],
                   &order[0] if order.shape[0] else NULL, &ppos[0] if ppos.shape[0] else NULL,
                   &edge[0] if edge.shape[0] else NULL, &piv[0] if piv.shape[0] else NULL,
                   &blocks[0], blocks.shape[0], &B[0, 0], &X[0, 0], &R[0, 0], X.shape[1])


def symv(const index_t[::1] indptr, const index_t[::1] indices, const double[::1] data,
         const double[:, ::1] X, double[:, ::1] Y):
    """Y = A X for CSR A and (n, K) C-ordered X, Y."""
    cdef int64_t n = indptr.shape[0] - 1, K = X.shape[1], i, jj, j, c
    cdef double a
    with nogil:
        for i in range(n):
            for c in range(K):
                Y[i, c] = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                a = data[jj]
                for c in range(K):
                    Y[i, c] += a * X[j, c]


cdef void _sweep_ptr(const index_t *indptr, const index_t *indices, const double *data,
                     const int64_t *label, const int64_t *boff, const int64_t *order,
                     const int64_t *ppos, const double *edge, const double *piv,
                     const int64_t *blocks, int64_t nseq, const double *B, double *X,
                     double *R, int64_t K) noexcept nogil:
    cdef int64_t q, b, lo, hi, t, i, jj, j, c, p
    cdef double f, s
    for q in range(nseq):
        b = blocks[q]
        lo = boff[b]
        hi = boff[b + 1]
        if K == 1:
            for t in range(lo, hi):
                i = order[t]
                s = B[i]
                for jj in range(indptr[i], indptr[i + 1]):
                    j = indices[jj]
                    if label[j] != b:
                        s -= data[jj] * X[j]
                R[i] = s
            for t in range(hi - 1, lo, -1):
                p = ppos[t]
                if p >= 0:
                    R[order[lo + p]] -= edge[t] / piv[t] * R[order[t]]
            for t in range(lo, hi):
                i = order[t]
                p = ppos[t]
                if p >= 0:
                    X[i] = (R[i] - edge[t] * X[order[lo + p]]) / piv[t]
                else:
                    X[i] = R[i] / piv[t]
            continue
        for t in range(lo, hi):
            i = order[t]
            for c in range(K):
                R[i * K + c] = B[i * K + c]
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                if label[j] == b:
                    continue
                f = data[jj]
                for c in range(K):
                    R[i * K + c] -= f * X[j * K + c]
        for t in range(hi - 1, lo, -1):
            p = ppos[t]
            if p >= 0:
                f = edge[t] / piv[t]
                i = order[t]
                j = order[lo + p]
                for c in range(K):
                    R[j * K + c] -= f * R[i * K + c]
        for t in range(lo, hi):
            i = order[t]
            p = ppos[t]
            if p >= 0:
                j = order[lo + p]
                for c in range(K):
                    X[i * K + c] = (R[i * K + c] - edge[t] * X[j * K + c]) / piv[t]
            else:
                for c in range(K):
                    X[i * K + c] = R[i * K + c] / piv[t]



cdef void _sweep_perm(const index_t *indptr, const index_t *indices, const double *data,
                      const int64_t *boff, const int64_t *ppos, const double *fac,
                      const double *edge, const double *ipiv, const int64_t *blocks,
                      int64_t nseq, const double *B, double *X, double *R,
                      int64_t K) noexcept nogil:
    """Exact block updates when the nodes are numbered block by block in
    breadth-first order: block b holds nodes boff[b] .. boff[b+1]-1, node t's
    parent is boff[b] + ppos[t]; fac = edge / pivot and ipiv = 1 / pivot."""
    cdef int64_t q, b, lo, hi, t, jj, j, c, p
    cdef double s, a
    for q in range(nseq):
        b = blocks[q]
        lo = boff[b]
        hi = boff[b + 1]
        if K == 1:
            for t in range(lo, hi):
                s = B[t]
                for jj in range(indptr[t], indptr[t + 1]):
                    j = indices[jj]
                    if j < lo or j >= hi:
                        s -= data[jj] * X[j]
                R[t] = s
            for t in range(hi - 1, lo, -1):
                p = ppos[t]
                if p >= 0:
                    R[lo + p] -= fac[t] * R[t]
            for t in range(lo, hi):
                p = ppos[t]
                if p >= 0:
                    X[t] = (R[t] - edge[t] * X[lo + p]) * ipiv[t]
                else:
                    X[t] = R[t] * ipiv[t]
            continue
        for t in range(lo, hi):
            for c in range(K):
                R[t * K + c] = B[t * K + c]
            for jj in range(indptr[t], indptr[t + 1]):
                j = indices[jj]
                if j < lo or j >= hi:
                    a = data[jj]
                    for c in range(K):
                        R[t * K + c] -= a * X[j * K + c]
        for t in range(hi - 1, lo, -1):
            p = ppos[t]
            if p >= 0:
                for c in range(K):
                    R[(lo + p) * K + c] -= fac[t] * R[t * K + c]
        for t in range(lo, hi):
            p = ppos[t]
            if p >= 0:
                for c in range(K):
                    X[t * K + c] = (R[t * K + c] - edge[t] * X[(lo + p) * K + c]) * ipiv[t]
            else:
                for c in range(K):
                    X[t * K + c] = R[t * K + c] * ipiv[t]


def sweep_perm(const index_t[::1] indptr, const index_t[::1] indices, const double[::1] data,
               const int64_t[::1] boff, const int64_t[::1] ppos, const double[::1] fac,
               const double[::1] edge, const double[::1] ipiv, const int64_t[::1] blocks,
               const double[:, ::1] B, double[:, ::1] X, double[:, ::1] R):
    """:func:`sweep` for a matrix renumbered block by block (see _sweep_perm)."""
    if blocks.shape[0] == 0 or X.shape[0] == 0 or X.shape[1] == 0:
        return
    with nogil:
        _sweep_perm(&indptr[0], &indices[0] if indices.shape[0] else NULL,
                    &data[0] if data.shape[0] else NULL, &boff[0], &ppos[0], &fac[0],
                    &edge[0], &ipiv[0], &blocks[0], blocks.shape[0], &B[0, 0], &X[0, 0],
                    &R[0, 0], X.shape[1])


cdef void _symv_ptr(const index_t *indptr, const index_t *indices, const double *data,
                    int64_t n, const double *X, double *Y, int64_t K) noexcept nogil:
    cdef int64_t i, jj, c
    cdef double s, a
    if K == 1:
        for i in range(n):
            s = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                s += data[jj] * X[indices[jj]]
            Y[i] = s
        return
    for i in range(n):
        for c in range(K):
            Y[i * K + c] = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            a = data[jj]
            for c in range(K):
                Y[i * K + c] += a * X[indices[jj] * K + c]


def pcg(const index_t[::1] indptr, const index_t[::1] indices, const double[::1] data,
        const int64_t[::1] boff, const int64_t[::1] ppos, const double[::1] fac,
        const double[::1] edge, const double[::1] ipiv,
        const int64_t[::1] seq, const double[:, ::1] B, double[:, ::1] X,
        double tol, int max_iter, double[::1] hist):
    """Conjugate gradients on A X = B (columns independent), preconditioned by
    the exact block updates in ``seq`` (a forward and a backward sweep over a
    forest partition: symmetric block Gauss-Seidel), on a matrix renumbered
    block by block (see _sweep_perm). Stops when
    ||B - A X||_F <= tol ||B||_F (checked on the recurrence residual, then
    confirmed). ``hist`` receives the relative residual of the first
    len(hist) iterations. Returns (iterations, relative residual)."""
    cdef int64_t n = X.shape[0], K = X.shape[1], nk = n * K, i, c, it = 0
    cdef double bnorm = 0.0, res, t, alpha, beta
    cdef double *R = <double *>malloc(max(nk, 1) * sizeof(double))
    cdef double *Z = <double *>malloc(max(nk, 1) * sizeof(double))
    cdef double *P = <double *>malloc(max(nk, 1) * sizeof(double))
    cdef double *Q = <double *>malloc(max(nk, 1) * sizeof(double))
    cdef double *Wk = <double *>malloc(max(nk, 1) * sizeof(double))
    cdef double *rz = <double *>malloc(max(K, 1) * sizeof(double))
    cdef double *tmp = <double *>malloc(max(K, 1) * sizeof(double))
    if R == NULL or Z == NULL or P == NULL or Q == NULL or Wk == NULL or rz == NULL or tmp == NULL:
        free(R); free(Z); free(P); free(Q); free(Wk); free(rz); free(tmp)
        raise MemoryError(f"pcg: workspace of {5 * nk} doubles failed")
    cdef const index_t *ip = &indptr[0]
    cdef const index_t *ix = &indices[0] if indices.shape[0] else NULL
    cdef const double *ad = &data[0] if data.shape[0] else NULL
    cdef const double *bp = &B[0, 0] if nk else NULL
    cdef double *xp = &X[0, 0] if nk else NULL
    cdef int64_t nseq = seq.shape[0]
    cdef int64_t nhist = hist.shape[0]
    cdef sc_poll_t poll
    cdef int stopped = 0
    sc_poll_init(&poll)
    with nogil:
        for i in range(nk):
            bnorm += bp[i] * bp[i]
        bnorm = sqrt(bnorm) if bnorm > 0 else 1.0
        _symv_ptr(ip, ix, ad, n, xp, Q, K)
        res = 0.0
        for i in range(nk):
            R[i] = bp[i] - Q[i]
            res += R[i] * R[i]
        res = sqrt(res) / bnorm
        if nhist > 0:
            hist[0] = res
        if res > tol and max_iter > 0:
            for i in range(nk):
                Z[i] = 0.0
            _sweep_perm(ip, ix, ad, &boff[0], &ppos[0], &fac[0], &edge[0], &ipiv[0],
                        &seq[0], nseq, R, Z, Wk, K)
            for c in range(K):
                rz[c] = 0.0
            for i in range(nk):
                P[i] = Z[i]
                rz[i % K] += R[i] * Z[i]
            while it < max_iter:
                if sc_poll(&poll):
                    stopped = 1
                    break
                _symv_ptr(ip, ix, ad, n, P, Q, K)
                for c in range(K):
                    tmp[c] = 0.0
                for i in range(nk):
                    tmp[i % K] += P[i] * Q[i]
                for c in range(K):
                    tmp[c] = rz[c] / tmp[c] if tmp[c] > 0 else 0.0
                res = 0.0
                for i in range(nk):
                    alpha = tmp[i % K]
                    xp[i] += alpha * P[i]
                    R[i] -= alpha * Q[i]
                    res += R[i] * R[i]
                res = sqrt(res) / bnorm
                it += 1
                if it < nhist:
                    hist[it] = res
                if res <= tol:
                    # confirm with the true residual; restart from it if not
                    _symv_ptr(ip, ix, ad, n, xp, Q, K)
                    res = 0.0
                    for i in range(nk):
                        R[i] = bp[i] - Q[i]
                        res += R[i] * R[i]
                    res = sqrt(res) / bnorm
                    if it < nhist:
                        hist[it] = res
                    if res <= tol:
                        break
                for i in range(nk):
                    Z[i] = 0.0
                _sweep_perm(ip, ix, ad, &boff[0], &ppos[0], &fac[0], &edge[0], &ipiv[0],
                            &seq[0], nseq, R, Z, Wk, K)
                for c in range(K):
                    tmp[c] = 0.0
                for i in range(nk):
                    tmp[i % K] += R[i] * Z[i]
                for c in range(K):
                    beta = tmp[c] / rz[c] if rz[c] > 0 else 0.0
                    rz[c] = tmp[c]
                    tmp[c] = beta
                for i in range(nk):
                    P[i] = Z[i] + tmp[i % K] * P[i]
    free(R); free(Z); free(P); free(Q); free(Wk); free(rz); free(tmp)
    if stopped:
        raise_interrupt()
    return it, res
