"""Coverage-guided fuzzing of sparsecore's Python entry points with atheris:
spgemm (plus-times, every semiring, masked and complemented), spgemm_topk,
nm_prune / block_prune, spmm and sddmm.

    pip install atheris
    python .ci/fuzz_atheris.py -atheris_runs=100000 [corpus_dir]

The fuzzer's bytes become CSR operands (valid or malformed: any indptr,
indices and data), dense operands and arguments; each call must give the
right answer (checked against numpy) or raise ValueError, TypeError or
MemoryError, and must leave its inputs unchanged. Anything else (a wrong
value, another exception, a crash) stops the run and saves the input.
See docs/dev/hardening.rst.
"""
import sys
from pathlib import Path

import atheris

# the dense semiring reference shared with the tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "_support"))
from helpers import SEMIRING_OPS  # noqa: E402

with atheris.instrument_imports():
    import numpy as np
    import scipy.sparse as sp

    import sparsecore
    from sparsecore import ops
    from sparsecore.ops import SEMIRINGS

CLEAR = (ValueError, TypeError, MemoryError)
ITYPES = [np.int32, np.int64, np.dtype(">i4"), np.uint16]
VTYPES = [np.float32, np.float64, np.complex128, np.int64, np.dtype(">f8")]


def raw_csr(fdp, m, n):
    """A CSR matrix from fuzzer bytes, without scipy's validity checks."""
    itype = ITYPES[fdp.ConsumeIntInRange(0, len(ITYPES) - 1)]
    vtype = VTYPES[fdp.ConsumeIntInRange(0, len(VTYPES) - 1)]
    nnz = fdp.ConsumeIntInRange(0, 12)
    valid = fdp.ConsumeBool()
    if valid:
        counts = [fdp.ConsumeIntInRange(0, 3) for _ in range(m)]
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nnz = int(indptr[-1])
        indices = [fdp.ConsumeIntInRange(0, max(n - 1, 0)) for _ in range(nnz)] if n else []
        if not n:
            indptr[:] = 0
            nnz = 0
    else:
        indptr = [fdp.ConsumeIntInRange(-2, 14) for _ in range(m + fdp.ConsumeIntInRange(0, 2))]
        indices = [fdp.ConsumeIntInRange(-3, n + 3) for _ in range(nnz)]
    data = [fdp.ConsumeRegularFloat() for _ in range(len(indices) + (0 if valid else
                                                                      fdp.ConsumeIntInRange(-1, 1)))]
    try:
        ip = np.asarray(indptr, dtype=itype)
        ix = np.asarray(indices, dtype=itype)
    except OverflowError:
        ip = np.asarray(indptr, dtype=np.int64)
        ix = np.asarray(indices, dtype=np.int64)
    with np.errstate(all="ignore"):
        dt = np.asarray(data if data else [], dtype=np.float64).astype(vtype)
    A = sp.csr_array((m, n), dtype=np.float64)
    A.indptr, A.indices, A.data = ip, ix, dt
    return A, valid


def dense_meaning(A, absolute=False):
    """Dense complex A with duplicates summed (of their absolute values when
    ``absolute``), read entry by entry so no scipy routine sees the operand."""
    m, n = A.shape
    D = np.zeros((m, n), dtype=np.complex128)
    for i in range(m):
        for p in range(int(A.indptr[i]), int(A.indptr[i + 1])):
            v = complex(A.data[p])
            D[i, int(A.indices[p])] += abs(v) if absolute else v
    return D


def snapshot(*objs):
    out = []
    for o in objs:
        if sp.issparse(o):
            out.append((o.indptr.tobytes(), o.indices.tobytes(), o.data.tobytes(),
                        o.indptr.dtype.str, o.indices.dtype.str, o.data.dtype.str))
        else:
            out.append((o.tobytes(), o.dtype.str, o.shape, o.strides))
    return out


def check_spgemm(fdp):
    m, k, n = (fdp.ConsumeIntInRange(0, 6) for _ in range(3))
    A, va = raw_csr(fdp, m, k)
    B, vb = raw_csr(fdp, k, n)
    before = snapshot(A, B)
    try:
        with np.errstate(all="ignore"):
            C = sparsecore.spgemm(A, B, n_threads=fdp.ConsumeIntInRange(1, 2))
    except CLEAR:
        assert snapshot(A, B) == before
        # a valid, numeric pair must not be refused
        if va and vb and A.dtype != bool and B.dtype != bool:
            ok_dtype = np.result_type(A.dtype, B.dtype).newbyteorder("=")
            if ok_dtype.kind in "fc" and ok_dtype.itemsize >= 4:
                raise
        return
    assert snapshot(A, B) == before
    assert va or _well_formed(A) and _well_formed(B), "a malformed operand was accepted"
    with np.errstate(all="ignore"):
        want = dense_meaning(A) @ dense_meaning(B)
        # the kernel (like scipy) sums products term by term: where a term
        # overflows, inf - inf may give NaN although the summed duplicates
        # give a finite product; only entries with finite terms are compared
        bound = dense_meaning(A, absolute=True).real @ dense_meaning(B, absolute=True).real
    got = C.toarray().astype(np.complex128)
    fin = np.isfinite(want) & np.isfinite(bound)
    if C.dtype.kind in "fc":
        tol = 1e-3 if C.dtype in (np.float32, np.complex64) else 1e-9
        scale = 1.0 + np.abs(want[fin]).max(initial=0)
        assert np.allclose(got[fin], want[fin], rtol=tol, atol=tol * scale * 10), (got, want)


def _well_formed(A):
    m, n = A.shape
    p = np.asarray(A.indptr, dtype=np.int64)
    ix = np.asarray(A.indices, dtype=np.int64)
    return (p.shape == (m + 1,) and p[0] == 0 and np.all(np.diff(p) >= 0)
            and p[-1] <= len(ix) and len(ix) == len(A.data)
            and np.all((ix[:p[-1]] >= 0) & (ix[:p[-1]] < n)))


def check_dense_ops(fdp):
    which = fdp.ConsumeIntInRange(0, 3)
    rows = fdp.ConsumeIntInRange(0, 8)
    cols = fdp.ConsumeIntInRange(0, 12)
    dtype = [np.float32, np.float64][fdp.ConsumeIntInRange(0, 1)]
    W = np.array([fdp.ConsumeRegularFloat() for _ in range(rows * cols)], dtype=np.float64)
    with np.errstate(all="ignore"):
        W = W.reshape(rows, cols).astype(dtype)
    if fdp.ConsumeBool():
        W = np.asfortranarray(W)
    n_, m_ = fdp.ConsumeIntInRange(-1, 5), fdp.ConsumeIntInRange(-1, 9)
    before = snapshot(W)
    try:
        with np.errstate(all="ignore"):
            if which == 0:
                S = ops.nm_prune(W, n_, m_)
            elif which == 1:
                S = ops.block_prune(W, (max(n_, 0), max(m_, 0)), fdp.ConsumeFloat())
            else:
                S = ops.nm_prune(W, 2, 4) if which == 2 else ops.block_prune(W, (2, 2), 0.5)
                X = np.array([fdp.ConsumeRegularFloat() for _ in range(cols * 3)])
                X = X.reshape(cols, 3).astype(dtype)
                Y = ops.spmm(S, X)
                with np.errstate(all="ignore"):
                    want = S.toarray().astype(np.float64) @ X.astype(np.float64)
                fin = np.isfinite(want) & (np.abs(want) < 1e30)
                scale = 1 + np.abs(S.toarray()).sum() * np.abs(X).max(initial=0)
                if np.isfinite(scale):
                    assert np.allclose(Y[fin], want[fin], rtol=1e-3, atol=1e-4 * scale)
                G = np.ones((rows, 3), dtype=dtype)
                ops.sddmm(G, X, S)
    except CLEAR:
        pass
    assert snapshot(W) == before




def _pattern_and_values(A):
    """(present, values) of a well-formed CSR with duplicates summed, float64."""
    m, n = A.shape
    present = np.zeros((m, n), bool)
    vals = np.zeros((m, n))
    for i in range(m):
        for p in range(int(A.indptr[i]), int(A.indptr[i + 1])):
            present[i, int(A.indices[p])] = True
            vals[i, int(A.indices[p])] += float(np.real(A.data[p]))
    return present, vals


def check_semiring(fdp):
    """Semiring products, masked or not: the dense evaluation over the stored
    patterns, or a clear error for malformed operands, masks and dtypes."""
    m, k, n = (fdp.ConsumeIntInRange(0, 5) for _ in range(3))
    name = SEMIRINGS[fdp.ConsumeIntInRange(0, len(SEMIRINGS) - 1)]
    A, va = raw_csr(fdp, m, k)
    B, vb = raw_csr(fdp, k, n)
    use_mask = fdp.ConsumeIntInRange(0, 2)     # 0 none, 1 mask, 2 complement
    M, vm = raw_csr(fdp, max(m + fdp.ConsumeIntInRange(-1, 1), 0), n)   # maybe the wrong shape
    before = snapshot(A, B, M)
    kwargs = {} if use_mask == 0 else {"mask": M, "complement": use_mask == 2}
    try:
        with np.errstate(all="ignore"):
            C = sparsecore.spgemm(A, B, semiring=name, n_threads=fdp.ConsumeIntInRange(1, 2),
                                  **kwargs)
    except CLEAR:
        assert snapshot(A, B, M) == before
        return
    assert snapshot(A, B, M) == before
    assert (va or _well_formed(A)) and (vb or _well_formed(B)), "a malformed operand was accepted"
    if use_mask:
        assert (vm or _well_formed(M)) and M.shape == (m, n), "a malformed mask was accepted"
    if name == "plus_times" or not all(x.dtype.kind == "f" for x in (A, B)):
        return     # plus_times is check_spgemm's; integer/bool inputs are converted
    PA, Ad = _pattern_and_values(A)
    PB, Bd = _pattern_and_values(B)
    add, ident, mul = SEMIRING_OPS[name]
    with np.errstate(all="ignore"):
        prod = mul(Ad[:, :, None], Bd[None, :, :])
    valid = PA[:, :, None] & PB[None, :, :]
    want = add.reduce(np.where(valid, prod, ident), axis=1, initial=ident)
    present = valid.any(axis=1)
    if use_mask:
        PM, _ = _pattern_and_values(M)
        present &= ~PM if use_mask == 2 else PM
    got_present = C.toarray(), np.zeros((m, n), bool)
    rows = np.repeat(np.arange(m), np.diff(C.indptr))
    got_present[1][rows, C.indices] = True
    assert np.array_equal(got_present[1], present), (name, got_present[1], present)
    got = got_present[0].astype(np.float64)
    fin = present & np.isfinite(want.astype(np.float64))
    tol = 1e-3 if C.dtype == np.float32 else 1e-9
    assert np.allclose(got[fin], want[fin], rtol=tol, atol=tol), (name, got, want)


def check_topk(fdp):
    """spgemm_topk: the k largest stored entries of each row of the product."""
    m, k, n = (fdp.ConsumeIntInRange(0, 5) for _ in range(3))
    A, va = raw_csr(fdp, m, k)
    B, vb = raw_csr(fdp, k, n)
    top = fdp.ConsumeIntInRange(-1, 4)
    before = snapshot(A, B)
    try:
        with np.errstate(all="ignore"):
            C = ops.spgemm_topk(A, B, top, n_threads=fdp.ConsumeIntInRange(1, 2))
    except CLEAR:
        assert snapshot(A, B) == before
        return
    assert snapshot(A, B) == before
    assert top >= 1, "k <= 0 was accepted"
    assert (va or _well_formed(A)) and (vb or _well_formed(B)), "a malformed operand was accepted"
    if not all(x.dtype.kind == "f" for x in (A, B)):
        return
    with np.errstate(all="ignore"):
        full = sp.csr_array(dense_meaning(A).real @ dense_meaning(B).real)
    for i in range(m):
        got = np.sort(C.data[C.indptr[i]:C.indptr[i + 1]])[::-1]
        row = full.data[full.indptr[i]:full.indptr[i + 1]]
        row = np.sort(row[np.isfinite(row) & (row != 0)])[::-1][:top]
        if np.all(np.isfinite(got)) and len(row) == len(got):
            assert np.allclose(got, row, rtol=1e-3, atol=1e-6), (got, row)


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 3)
    [check_spgemm, check_dense_ops, check_semiring, check_topk][which](fdp)


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
