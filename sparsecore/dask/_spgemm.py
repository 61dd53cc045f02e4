"""SpGEMM on Dask: ``C = A @ B`` for dask arrays of CSR chunks.

Planning first (Buluç & Gilbert's two-dimensional SpGEMM, SIAM J. Sci.
Comput. 2012, for the partitioning; Nagasaka et al. 2018 for the symbolic
pass each task runs):

1. the inputs are persisted, so the planning pass and the product read them
   once, and the nonzeros of every chunk are counted;
2. the strategy is chosen: *broadcast* (whole row blocks of A times all of
   B, B's column blocks assembled once and shipped once to each worker) when
   B is small, *2-D* (every pair of contraction blocks, cut at the union of
   both chunkings, multiplied by its own task, partial products summed by a
   tree reduction) otherwise;
3. the symbolic pass of the sparse-core kernel runs per block on the
   workers and returns multiplies and exact nonzeros per row group;
4. output row blocks are cut from those exact sizes so each output chunk
   holds about ``chunk_bytes`` and each task at most 1/(2 x threads of the
   cluster) of the multiplies, whatever the input chunking; a product whose output (plus inputs) does not
   fit the cluster's memory, or whose largest task does not fit one worker,
   is refused with a MemoryError before any numeric work;
5. the numeric graph: each task runs :func:`sparsecore.spgemm` with the
   kernel threads its worker offers (:func:`task_threads`).
"""
import math
import time
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from sparsecore.dask import _chunks
from sparsecore.dask._construct import default_chunk_bytes, from_scipy, sparse_meta
from sparsecore.dask._resources import cluster_resources, task_threads
from sparsecore.ops import _spgemm
from sparsecore.ops._spgemm_symbolic import spgemm_symbolic

__all__ = ["SpGEMMPlan", "plan_spgemm", "spgemm"]

# Row groups each symbolic task reports (the granularity of output row cuts):
# at least this many, and _TASKS_PER_THREAD per thread of the cluster.
_GROUPS = 256
# Multiply tasks per thread of the cluster: row blocks are cut so that no
# task holds more than 1/(_TASKS_PER_THREAD * threads) of the multiplies,
# whatever the input chunking (one big chunk still feeds every worker).
_TASKS_PER_THREAD = 2
# Fraction of the cluster's memory a product may use: dask.distributed pauses
# a worker at 80 % of its memory limit.
_MEMORY_FRACTION = 0.8
# B is broadcast when it takes at most this fraction of the smallest worker.
_BROADCAST_FRACTION = 1 / 8
_STRATEGIES = ("auto", "broadcast", "2d")


# ---- tasks ---------------------------------------------------------------

def _symbolic_task(A, B, r0, r1, n_groups, n_threads):
    """Multiplies and exact nonzeros of rows r0:r1 of A @ B, in row groups:
    (cuts relative to A's first row, flops, nnz)."""
    rows = r1 - r0
    g = max(1, min(rows, n_groups))
    cuts = np.unique(np.linspace(0, rows, g + 1).round().astype(np.int64))
    if cuts.size == 1:
        cuts = np.array([0, 0], dtype=np.int64)
    s = spgemm_symbolic(_chunks.row_slice(A, r0, r1), B, row_bounds=cuts,
                        n_threads=task_threads(n_threads))
    return cuts + r0, s.flops, s.nnz


def _join_pieces(pieces):
    """One (cuts, flops, nnz) from the results of consecutive row ranges."""
    if len(pieces) == 1:
        return pieces[0]
    cuts = np.concatenate([pieces[0][0]] + [p[0][1:] for p in pieces[1:]])
    return (cuts, np.concatenate([p[1] for p in pieces]), np.concatenate([p[2] for p in pieces]))


def _multiply_task(A, B, r0, r1, n_threads, dtype):
    C = _spgemm.spgemm(_chunks.row_slice(A, r0, r1), B, n_threads=task_threads(n_threads))
    return C if C.dtype == dtype else C.astype(dtype)


def _sum_task(parts):
    return _chunks.sum_csr(parts)


# ---- input handling ------------------------------------------------------

def _as_sparse_dask(X, name):
    if sp.issparse(X):
        return from_scipy(X)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask array of scipy.sparse chunks (or a scipy.sparse "
            f"matrix), got {type(X).__module__}.{type(X).__name__}"
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    if any(math.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    if not sp.issparse(X._meta):
        raise TypeError(
            f"{name} is a dask array of {type(X._meta).__module__}."
            f"{type(X._meta).__name__} chunks; spgemm needs scipy.sparse chunks: "
            f"build it with sparsecore.dask.from_scipy, from_row_blocks or "
            f"read_matrix_market, or {name}.map_blocks(scipy.sparse.csr_array)"
        )
    return X


def _cuts(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _refine(X, axis, cuts):
    """X with its chunks along ``axis`` cut at ``cuts`` (a refinement of its
    own cuts): every new chunk is a slice of one old chunk."""
    old = _cuts(X.chunks[axis])
    if np.array_equal(old, cuts):
        return X
    name = f"spgemm-align{axis}-" + tokenize(X.name, cuts)
    slicer = _chunks.col_slice if axis == 1 else _chunks.row_slice
    dsk = {}
    other = range(len(X.chunks[1 - axis]))
    for t in range(len(cuts) - 1):
        c = int(np.searchsorted(old, cuts[t], side="right") - 1)
        lo, hi = int(cuts[t] - old[c]), int(cuts[t + 1] - old[c])
        for o in other:
            src = (X.name, o, c) if axis == 1 else (X.name, c, o)
            dst = (name, o, t) if axis == 1 else (name, t, o)
            dsk[dst] = (slicer, src, lo, hi)
    chunks = list(X.chunks)
    chunks[axis] = tuple(int(x) for x in np.diff(cuts))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[X])
    return da.Array(graph, name, tuple(chunks), meta=X._meta)


def _merge(X, axis):
    """X with one chunk along ``axis`` (blocks stacked)."""
    if len(X.chunks[axis]) == 1:
        return X
    name = f"spgemm-merge{axis}-" + tokenize(X.name)
    stack = _chunks.hstack if axis == 1 else _chunks.vstack
    dsk = {}
    for o in range(len(X.chunks[1 - axis])):
        if axis == 1:
            dsk[(name, o, 0)] = (stack, [(X.name, o, t) for t in range(len(X.chunks[1]))])
        else:
            dsk[(name, 0, o)] = (stack, [(X.name, t, o) for t in range(len(X.chunks[0]))])
    chunks = list(X.chunks)
    chunks[axis] = (X.shape[axis],)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[X])
    return da.Array(graph, name, tuple(chunks), meta=X._meta)


def _chunk_nnz(X, label):
    """Nonzeros of every chunk (computed), after checking each chunk."""
    blocks = X.to_delayed(optimize_graph=False)
    shapes = [[(r, c) for c in X.chunks[1]] for r in X.chunks[0]]
    tasks = [dask.delayed(_chunks.chunk_nnz, pure=True)(
        blocks[i, j], shapes[i][j], f"{label} chunk ({i}, {j})")
        for i in range(blocks.shape[0]) for j in range(blocks.shape[1])]
    return tasks, blocks.shape


def _bytes_grid(nnz, row_chunks, col_chunks, itemsize):
    return np.array([[_chunks.csr_nbytes(nnz[i, j], (r, c), itemsize)
                      for j, c in enumerate(col_chunks)] for i, r in enumerate(row_chunks)],
                    dtype=np.int64).reshape(nnz.shape)


# ---- the plan ------------------------------------------------------------

@dataclass
class SpGEMMPlan:
    """What :func:`spgemm` will do, sized by the symbolic pass.

    Attributes
    ----------
    strategy : {"broadcast", "2d"}
    shape : tuple of int
    dtype : numpy.dtype
    row_chunks, col_chunks : tuple of int
        Output chunk grid (rows cut from exact sizes; columns follow B).
    chunk_nnz : ndarray of int64, shape (len(row_chunks), len(col_chunks))
        Nonzeros of each output chunk: exact (structural) for broadcast; for
        2-D an upper bound (the sum of the exact partial products, capped
        by the chunk's area).
    nnz_exact : bool
    flops : int
        Multiplies of the whole product.
    n_multiplies : int
        Kernel tasks of the numeric graph (the 2-D strategy adds the sums of
        its reduction trees).
    result_bytes, input_bytes, needed_bytes, largest_task_bytes : int
        Memory of the output chunks, of the (aligned) inputs, of both plus
        the broadcast copies, and of the largest task.
    memory_limit : int
        What the product was allowed (see :func:`plan_spgemm`).
    resources : ClusterResources
    timings : dict
        Seconds spent persisting the inputs, counting their chunks, building
        the operand blocks and running the symbolic pass.
    """

    strategy: str
    shape: tuple
    dtype: np.dtype
    row_chunks: tuple
    col_chunks: tuple
    chunk_nnz: np.ndarray
    nnz_exact: bool
    flops: int
    n_multiplies: int
    result_bytes: int
    input_bytes: int
    needed_bytes: int
    largest_task_bytes: int
    memory_limit: int
    resources: object
    timings: dict
    # graph recipe
    _a_name: str = field(repr=False, default="")
    _b_name: str = field(repr=False, default="")
    _left: object = field(repr=False, default=None)
    _right: object = field(repr=False, default=None)
    _blocks: list = field(repr=False, default_factory=list)  # (s, i, r0, r1)
    _terms: dict = field(repr=False, default_factory=dict)    # (s, j) -> [t]
    _n_threads: object = field(repr=False, default=None)

    @property
    def nnz(self):
        """Nonzeros of C (exact for broadcast, an upper bound for 2-D)."""
        return int(self.chunk_nnz.sum())

    def summary(self):
        """A few lines for humans.

        Returns
        -------
        str
            Several lines joined by newlines.
        """
        kind = "exact" if self.nnz_exact else "upper bound"
        return "\n".join([
            f"spgemm plan: {self.shape[0]}x{self.shape[1]} {self.dtype}, strategy {self.strategy}",
            f"  {self.flops:,} multiplies; {self.nnz:,} nonzeros ({kind}), "
            f"{self.result_bytes / 2**20:.1f} MiB of output",
            f"  output chunks {len(self.row_chunks)} x {len(self.col_chunks)}; "
            f"{self.n_multiplies} kernel tasks",
            f"  memory: {self.needed_bytes / 2**20:.1f} MiB needed of "
            f"{self.memory_limit / 2**20:.1f} MiB allowed on {self.resources.describe()}; "
            f"largest task {self.largest_task_bytes / 2**20:.1f} MiB",
            "  planning: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in self.timings.items()),
        ])


def _parse_bytes(value, name):
    if value is None:
        return None
    if isinstance(value, str):
        value = dask.utils.parse_bytes(value)
    if not isinstance(value, (int, float, np.integer, np.floating)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes or a string like '4GiB', got {value!r}")
    return int(value)


def plan_spgemm(A, B, *, strategy="auto", chunk_bytes=None, memory_limit=None,
                broadcast_bytes=None, persist=True, n_threads=None):
    """Plan ``C = A @ B`` on Dask: run the symbolic pass per block and size
    the graph from exact output sizes.

    This computes (it is not lazy): the inputs are persisted, their chunks
    counted, and the symbolic pass of the sparse-core kernel runs on the
    workers, block by block. It costs about a third to a half of the
    product.

    Parameters
    ----------
    A, B : dask arrays of scipy.sparse chunks, or scipy.sparse matrices
        Shapes (m, k) and (k, n); chunkings need not match along k.
    strategy : {"auto", "broadcast", "2d"}, default="auto"
        ``"broadcast"``: row blocks of A times all of B (B assembled per
        column block and shipped once to each worker; no reduction;
        results bit-identical to :func:`sparsecore.spgemm`). ``"2d"``: one
        task per pair of contraction blocks, partials summed by a tree
        reduction (sums in a fixed order, so results are reproducible, but
        rounded differently from the one-machine product). ``"auto"``
        broadcasts B when it takes at most ``broadcast_bytes``.
    chunk_bytes : int or str, optional
        Target bytes per output chunk (default: dask's ``array.chunk-size``,
        128 MiB). Output row blocks are cut from exact sizes to fit it, and
        so that no task holds more than 1/(2 x threads of the cluster) of
        the multiplies (a single input chunk still feeds every worker).
    memory_limit : int or str, optional
        Bytes the product may occupy at once (inputs, output, broadcast
        copies). Default: 80 % of the cluster's worker memory (of the
        machine's available memory on the local schedulers).
    broadcast_bytes : int or str, optional
        Largest B that ``"auto"`` broadcasts (default: 1/8 of the smallest
        worker's memory).
    persist : bool, default=True
        Persist the inputs and the blocks assembled or cut from them
        (computed once, held in memory until the product is dropped). With
        False they are recomputed by the planning pass and again by the
        product.
    n_threads : int or None
        Kernel threads per task; None derives them from each worker's
        resources (:func:`task_threads`).

    Returns
    -------
    SpGEMMPlan

    Raises
    ------
    MemoryError
        If the product does not fit ``memory_limit``, or its largest task
        does not fit the smallest worker.
    """
    out_dtype, _ = _spgemm._kernel_dtype(A, B)
    A = _as_sparse_dask(A, "A")
    B = _as_sparse_dask(B, "B")
    if A.shape[1] != B.shape[0]:
        raise ValueError(
            f"spgemm: dimension mismatch: A has shape {A.shape} and B has shape "
            f"{B.shape}; A.shape[1] must equal B.shape[0]"
        )
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    chunk_bytes = _parse_bytes(chunk_bytes, "chunk_bytes") or default_chunk_bytes()
    memory_limit = _parse_bytes(memory_limit, "memory_limit")
    broadcast_bytes = _parse_bytes(broadcast_bytes, "broadcast_bytes")
    if n_threads is not None:
        task_threads(n_threads)  # validates
    resources = cluster_resources()
    if memory_limit is None:
        memory_limit = int(_MEMORY_FRACTION * resources.total_memory)
    if broadcast_bytes is None:
        broadcast_bytes = int(_BROADCAST_FRACTION * resources.min_worker_memory)
    timings = {}

    # 1. persist the inputs, count their chunks, choose the strategy
    t0 = time.perf_counter()
    if persist:
        A, B = dask.persist(A, B)
    timings["persist"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nnz_a, nnz_b = _count(A, B)
    timings["count"] = time.perf_counter() - t0
    bytes_a = _bytes_grid(nnz_a, A.chunks[0], A.chunks[1], A.dtype.itemsize)
    bytes_b = _bytes_grid(nnz_b, B.chunks[0], B.chunks[1], B.dtype.itemsize)
    if strategy == "auto":
        strategy = "broadcast" if int(bytes_b.sum()) <= broadcast_bytes else "2d"
    vsz = max(out_dtype.itemsize, 8 if out_dtype.kind in "iu" else 0)

    # 2. the operands of the kernel tasks: whole row blocks of A and column
    # blocks of B (broadcast), or contraction blocks cut at the union of
    # both chunkings (2-D)
    t0 = time.perf_counter()
    if strategy == "broadcast":
        left, right = _merge(A, 1), _merge(B, 0)
        nnz_l = nnz_a.sum(axis=1, keepdims=True)
        nnz_r = nnz_b.sum(axis=0, keepdims=True)
    else:
        kcuts = np.union1d(_cuts(A.chunks[1]), _cuts(B.chunks[0])).astype(np.int64)
        if kcuts.size == 1:  # k == 0: one empty contraction block
            kcuts = np.zeros(2, dtype=np.int64)
        left, right = _refine(A, 1, kcuts), _refine(B, 0, kcuts)
        nnz_l, nnz_r = nnz_a, nnz_b
    if persist and (left is not A or right is not B):
        left, right = dask.persist(left, right)
    if strategy == "2d" and (left is not A or right is not B):
        nnz_l, nnz_r = _count(left, right)
    timings["align"] = time.perf_counter() - t0

    # 3. the symbolic pass per block
    t0 = time.perf_counter()
    pairs = [(i, j, t) for i in range(nnz_l.shape[0]) for j in range(nnz_r.shape[1])
             for t in range(nnz_l.shape[1]) if nnz_l[i, t] and nnz_r[t, j]]
    ld = left.to_delayed(optimize_graph=False)
    rd = right.to_delayed(optimize_graph=False)
    groups = max(_GROUPS, 2 * _TASKS_PER_THREAD * resources.threads)
    # few blocks (one big chunk): cut their rows so every thread has work
    pieces = max(1, -(-_TASKS_PER_THREAD * resources.threads // max(1, len(pairs))))
    sym_tasks, owners = [], []
    for i, j, t in pairs:
        rows = left.chunks[0][i]
        cuts = np.unique(np.linspace(0, rows, min(pieces, rows) + 1).round().astype(np.int64))
        for r0, r1 in zip(cuts[:-1], cuts[1:]):
            sym_tasks.append(dask.delayed(_symbolic_task, pure=True)(
                ld[i, t], rd[t, j], int(r0), int(r1), -(-groups // len(cuts[:-1])), n_threads))
            owners.append((i, j, t))
    by_pair = {pair: [] for pair in pairs}
    for res, owner in zip(dask.compute(*sym_tasks), owners):
        by_pair[owner].append(res)
    sym = {pair: _join_pieces(parts) for pair, parts in by_pair.items()}
    timings["symbolic"] = time.perf_counter() - t0

    # 4. output row cuts from exact sizes, memory check
    return _size_graph(A, B, left, right, strategy, sym, nnz_l, nnz_r, bytes_a, bytes_b,
                       out_dtype, vsz, chunk_bytes, resources, memory_limit, timings, n_threads)


def _count(A, B):
    """Nonzeros of every chunk of A and of B, in one computation."""
    ta, sa = _chunk_nnz(A, "A")
    tb, sb = _chunk_nnz(B, "B")
    counts = dask.compute(*ta, *tb)
    return (np.array(counts[:len(ta)], dtype=np.int64).reshape(sa),
            np.array(counts[len(ta):], dtype=np.int64).reshape(sb))


def _csr_bytes(nnz, rows, cols, vsz):
    return _chunks.csr_nbytes(nnz, (rows, cols), vsz)


def _size_graph(A, B, left, right, strategy, sym, nnz_l, nnz_r, bytes_a, bytes_b,
                out_dtype, vsz, chunk_bytes, resources, memory_limit, timings, n_threads):
    m, n = A.shape[0], B.shape[1]
    col_chunks = tuple(int(c) for c in B.chunks[1])
    n_j, n_t = len(col_chunks), nnz_l.shape[1]
    threads = task_threads(n_threads) if n_threads is not None else 1
    bytes_left = _bytes_grid(nnz_l, left.chunks[0], left.chunks[1], A.dtype.itemsize)
    bytes_right = _bytes_grid(nnz_r, right.chunks[0], right.chunks[1], B.dtype.itemsize)
    blocks, row_chunks, chunk_nnz, terms = [], [], [], {}
    flops_total = sum(int(res[1].sum()) for res in sym.values())
    target_flops = max(1, flops_total // (_TASKS_PER_THREAD * resources.threads))
    largest = 0
    n_tasks = 0
    for i, rows in enumerate(left.chunks[0]):
        # per group: rows, and per output column block the nnz (sum over t)
        # and, per t, the exact partial nnz and flops
        cuts = None
        per_t = {}
        for j in range(n_j):
            for t in range(n_t):
                res = sym.get((i, j, t))
                if res is not None:
                    cuts = res[0]
                    per_t[(j, t)] = (res[1], res[2])
        if cuts is None:
            cuts = np.array([0, rows], dtype=np.int64)
        g_rows = np.diff(cuts)
        n_g = len(g_rows)
        nnz_g = np.zeros((n_j, n_g), dtype=np.int64)
        flops_g = np.zeros(n_g, dtype=np.int64)
        for (j, t), (fl, nz) in per_t.items():
            nnz_g[j] += nz
            flops_g += fl
        if strategy == "2d":
            nnz_g = np.minimum(nnz_g, g_rows[None, :] * np.array(col_chunks)[:, None])
        # greedy cuts: close a block before a group that would push any
        # output chunk of this row block past chunk_bytes, or its multiplies
        # past target_flops
        starts = [0]
        acc = np.zeros(n_j, dtype=np.int64)
        acc_rows = acc_flops = 0
        for g in range(n_g):
            new = acc + nnz_g[:, g]
            over = acc_flops + flops_g[g] > target_flops or any(
                _csr_bytes(new[j], acc_rows + g_rows[g], col_chunks[j], vsz) > chunk_bytes
                for j in range(n_j))
            if over and acc_rows > 0:
                starts.append(g)
                acc = nnz_g[:, g].copy()
                acc_rows, acc_flops = int(g_rows[g]), int(flops_g[g])
            else:
                acc = new
                acc_rows += int(g_rows[g])
                acc_flops += int(flops_g[g])
        starts.append(n_g)
        for a, b in zip(starts[:-1], starts[1:]):
            r0, r1 = int(cuts[a]), int(cuts[b])
            s = len(row_chunks)
            blocks.append((s, i, r0, r1))
            row_chunks.append(r1 - r0)
            row_nnz = nnz_g[:, a:b].sum(axis=1)
            chunk_nnz.append(row_nnz)
            frac = (r1 - r0) / rows if rows else 0.0
            for j in range(n_j):
                out_bytes = _csr_bytes(row_nnz[j], r1 - r0, col_chunks[j], vsz)
                live = [t for t in range(n_t) if (j, t) in per_t and per_t[(j, t)][0][a:b].sum() > 0]
                terms[(s, j)] = live
                for t in live:
                    fl, nz = per_t[(j, t)]
                    part = _csr_bytes(int(nz[a:b].sum()), r1 - r0, col_chunks[j], vsz)
                    work = threads * min(col_chunks[j], int(fl[a:b].sum())) * 16
                    largest = max(largest, int(bytes_left[i, t] * frac) + int(bytes_right[t, j])
                                  + part + work)
                n_tasks += len(live)
                if strategy == "2d" and len(live) > 1:
                    largest = max(largest, 2 * out_bytes)
    chunk_nnz = np.array(chunk_nnz, dtype=np.int64).reshape(len(row_chunks), n_j)
    result_bytes = int(sum(_csr_bytes(chunk_nnz[s, j], row_chunks[s], col_chunks[j], vsz)
                           for s in range(len(row_chunks)) for j in range(n_j)))
    input_bytes = int(bytes_a.sum() + bytes_b.sum())
    # aligned or merged copies of the inputs, and B's column blocks held by
    # every worker when they are broadcast
    copies = int(bytes_left.sum()) * (left is not A) + int(bytes_right.sum()) * (right is not B)
    if strategy == "broadcast":
        replicas = min(resources.n_workers, max(1, len(left.chunks[0])))
        copies += int(bytes_right.sum()) * (replicas - 1)
    needed = result_bytes + input_bytes + copies
    plan = SpGEMMPlan(
        strategy=strategy, shape=(m, n), dtype=out_dtype, row_chunks=tuple(row_chunks),
        col_chunks=col_chunks, chunk_nnz=chunk_nnz, nnz_exact=strategy == "broadcast",
        flops=flops_total, n_multiplies=n_tasks, result_bytes=result_bytes, input_bytes=input_bytes,
        needed_bytes=needed, largest_task_bytes=largest, memory_limit=memory_limit,
        resources=resources, timings=timings, _a_name=A.name, _b_name=B.name,
        _left=left, _right=right, _blocks=blocks, _terms=terms, _n_threads=n_threads,
    )
    kind = "exact, from the symbolic pass" if plan.nnz_exact else \
        "an upper bound: the sum of the exact partial products"
    if needed > memory_limit:
        raise MemoryError(
            f"spgemm: C = A @ B ({m:,} x {n:,}) has {plan.nnz:,} nonzeros ({kind}), "
            f"{result_bytes / 2**30:.2f} GiB as CSR chunks; with the inputs and the copies "
            f"of B it needs {needed / 2**30:.2f} GiB, but {memory_limit / 2**30:.2f} GiB are "
            f"allowed on {resources.describe()}. Add workers or memory, or multiply a few "
            f"row blocks of A at a time and store each result before the next."
        )
    if largest > resources.min_worker_memory:
        raise MemoryError(
            f"spgemm: the largest task of C = A @ B needs {largest / 2**30:.2f} GiB "
            f"(its inputs, exact output and workspace), more than the smallest worker's "
            f"{resources.min_worker_memory / 2**30:.2f} GiB; use smaller chunks of A and B "
            f"along the contraction, or a smaller chunk_bytes"
        )
    return plan


# ---- the product ---------------------------------------------------------

def spgemm(A, B, *, plan=None, split_every=4, n_threads=None, **plan_options):
    """Sparse matrix product ``C = A @ B`` of dask arrays of CSR chunks.

    Each task runs the sparse-core kernel (:func:`sparsecore.spgemm`) on its
    blocks; see :func:`plan_spgemm` for the planning it does first (it
    computes: the inputs are persisted and the symbolic pass runs on the
    workers). Works with the threaded scheduler and with dask.distributed.

    Parameters
    ----------
    A, B : dask arrays of scipy.sparse chunks, or scipy.sparse matrices
    plan : SpGEMMPlan, optional
        A plan from :func:`plan_spgemm` for these same arrays (reused
        instead of planning again).
    split_every : int, default=4
        Partial products summed per task in the 2-D strategy's tree.
    n_threads : int or None
        Kernel threads per task; None derives them from each worker's
        resources (one per task on a default worker).
    **plan_options
        ``strategy``, ``chunk_bytes``, ``memory_limit``,
        ``broadcast_bytes``, ``persist``: see :func:`plan_spgemm`.

    Returns
    -------
    dask.array.Array
        Chunks are canonical :class:`scipy.sparse.csr_array` blocks, rows cut
        by the plan, columns as B's; ``.compute()`` gives one canonical
        csr_array, equal to ``sparsecore.spgemm(A, B)`` (to the last bit for
        the broadcast strategy; within rounding for 2-D, whose partial sums
        are added in another order).

    Raises
    ------
    MemoryError
        If the product does not fit the cluster (see :func:`plan_spgemm`).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import sparsecore
    >>> from sparsecore.dask import from_scipy, spgemm
    >>> S = sp.random_array((300, 300), density=0.02, format="csr", rng=0)
    >>> C = spgemm(from_scipy(S, chunks=(70, 300)), from_scipy(S, chunks=(120, 300)))
    >>> abs(C.compute() - sparsecore.spgemm(S, S)).max()
    np.float64(0.0)
    """
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2, got {split_every!r}")
    if plan is None:
        plan = plan_spgemm(A, B, n_threads=n_threads, **plan_options)
    else:
        if plan_options:
            raise TypeError(f"pass {', '.join(plan_options)} to plan_spgemm, not with a plan")
        if not isinstance(plan, SpGEMMPlan):
            raise TypeError(f"plan must be an SpGEMMPlan, got {type(plan).__name__}")
        names = (_as_sparse_dask(A, "A").name, _as_sparse_dask(B, "B").name)
        if names != (plan._a_name, plan._b_name):
            raise ValueError("plan was made for other arrays than A and B")
        n_threads = plan._n_threads if n_threads is None else n_threads
    return _build_graph(plan, split_every, n_threads)


def _build_graph(plan, split_every, n_threads):
    left, right = plan._left, plan._right
    token = tokenize(left.name, right.name, plan.row_chunks, plan.strategy, split_every, n_threads)
    name = "spgemm-" + token
    part = "spgemm-partial-" + token
    tree = "spgemm-sum-" + token
    dsk = {}
    dtype = plan.dtype
    for s, i, r0, r1 in plan._blocks:
        for j, cols in enumerate(plan.col_chunks):
            live = plan._terms[(s, j)]
            if not live:
                dsk[(name, s, j)] = _chunks.empty_csr((r1 - r0, cols), dtype)
                continue
            keys = []
            for t in live:
                key = (name, s, j) if len(live) == 1 else (part, s, j, t)
                dsk[key] = (_multiply_task, (left.name, i, t), (right.name, t, j), r0, r1,
                            n_threads, dtype)
                keys.append(key)
            level = 0
            while len(keys) > 1:
                groups = [keys[g:g + split_every] for g in range(0, len(keys), split_every)]
                if len(groups) == 1:
                    dsk[(name, s, j)] = (_sum_task, groups[0])
                    break
                nxt = []
                for g, grp in enumerate(groups):
                    if len(grp) == 1:
                        nxt.append(grp[0])
                    else:
                        key = (tree, s, j, level, g)
                        dsk[key] = (_sum_task, grp)
                        nxt.append(key)
                keys = nxt
                level += 1
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[left, right])
    return da.Array(graph, name, (plan.row_chunks, plan.col_chunks), meta=sparse_meta(dtype))
