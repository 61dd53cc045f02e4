"""Dask arrays of CSR chunks: from a scipy matrix, from row blocks (matrices
or delayed objects), and from Matrix Market files read block by block."""
import io
import math
import numbers
import operator
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from sparsecore.dask import _chunks

__all__ = ["from_row_blocks", "from_scipy", "read_matrix_market", "sparse_meta"]


def sparse_meta(dtype):
    """The ``meta`` of a dask array of CSR chunks."""
    return sp.csr_array((0, 0), dtype=dtype)


def default_chunk_bytes():
    """Dask's target chunk size (``array.chunk-size``, 128 MiB by default)."""
    return int(dask.utils.parse_bytes(dask.config.get("array.chunk-size", "128MiB")))


def _balanced_row_chunks(indptr, target_nnz):
    """Row counts of blocks holding about ``target_nnz`` entries each."""
    m = len(indptr) - 1
    nnz = int(indptr[-1])
    if m == 0:
        return (0,)
    n_blocks = max(1, min(m, math.ceil(nnz / max(1, target_nnz))))
    cuts = np.searchsorted(indptr, np.linspace(0, nnz, n_blocks + 1)[1:-1], side="left")
    cuts = np.unique(np.concatenate([[0], cuts, [m]]))
    return tuple(int(c) for c in np.diff(cuts))


def _check_sparse(S, name):
    if isinstance(S, da.Array):
        raise TypeError(f"{name} is already a dask array")
    if not sp.issparse(S):
        raise TypeError(
            f"{name} must be a scipy.sparse array or matrix, got "
            f"{type(S).__module__}.{type(S).__name__}"
        )
    if S.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {S.shape}")
    if S.dtype.kind not in "iufc":
        raise TypeError(f"{name} has dtype {S.dtype}; a numeric dtype is needed")


def from_scipy(S, chunks=None):
    """A dask array of canonical CSR chunks holding a scipy sparse matrix.

    Parameters
    ----------
    S : scipy.sparse array or matrix, 2-D
        Converted once to canonical CSR (a copy when it is not one already).
    chunks : None, int, tuple or "auto", optional
        Dask chunk specification (``dask.array.core.normalize_chunks``: an
        int, a tuple of ints, or a tuple of tuples of block sizes, ``-1`` for
        a whole axis). None or ``"auto"``: row blocks that hold about
        ``array.chunk-size`` bytes (128 MiB by default) each, balanced by
        nonzeros, and one column block.

    Returns
    -------
    dask.array.Array
        Chunks are canonical :class:`scipy.sparse.csr_array` blocks.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sparsecore.dask import from_scipy
    >>> S = sp.random_array((100, 80), density=0.05, format="csr", rng=0)
    >>> X = from_scipy(S, chunks=(30, 40))
    >>> X.chunks
    ((30, 30, 30, 10), (40, 40))
    >>> abs(X.compute() - S).max()
    np.float64(0.0)
    """
    _check_sparse(S, "S")
    S = _chunks.as_canonical_csr(S, "S")
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        value_bytes = S.dtype.itemsize + 4
        chunks = (_balanced_row_chunks(S.indptr, default_chunk_bytes() // value_bytes),
                  (S.shape[1],))
    else:
        chunks = da.core.normalize_chunks(chunks, S.shape, dtype=S.dtype)
    name = "from-scipy-" + tokenize(S, chunks)
    dsk = {}
    r0 = 0
    for i, rows in enumerate(chunks[0]):
        R = _chunks.row_slice(S, r0, r0 + rows)
        c0 = 0
        for j, cols in enumerate(chunks[1]):
            dsk[(name, i, j)] = _chunks.col_slice(R, c0, c0 + cols)
            c0 += cols
        r0 += rows
    return da.Array(dsk, name, chunks, meta=sparse_meta(S.dtype))


def _checked_block(X, shape, dtype, index):
    X = _chunks.as_canonical_csr(X, f"row block {index}")
    if X.shape != tuple(shape):
        raise ValueError(
            f"row block {index} has shape {X.shape}; from_row_blocks was told {tuple(shape)}"
        )
    return X.astype(dtype, copy=False) if X.dtype != dtype else X


def from_row_blocks(blocks, *, rows=None, n_cols=None, dtype=None):
    """A dask array of CSR chunks stacked from row blocks.

    Parameters
    ----------
    blocks : sequence of scipy.sparse matrices or dask.delayed objects
        Row blocks, top to bottom. Delayed objects are computed by the
        workers (a block read or generated where it is needed); each must
        evaluate to a scipy.sparse matrix of the declared shape.
    rows : sequence of int, optional
        Rows of each block; needed when a block is delayed (entries for
        concrete blocks are checked).
    n_cols : int, optional
        Columns of every block; needed when every block is delayed.
    dtype : dtype, optional
        Value dtype; needed when a block is delayed. Default: numpy promotion
        of the concrete blocks' dtypes.

    Returns
    -------
    dask.array.Array
        One chunk per block along the rows, one chunk along the columns.

    Examples
    --------
    >>> import dask, scipy.sparse as sp
    >>> from sparsecore.dask import from_row_blocks
    >>> make = dask.delayed(lambda i: sp.eye_array(3, 5, k=i, format="csr"))
    >>> X = from_row_blocks([make(0), make(1)], rows=[3, 3], n_cols=5, dtype=float)
    >>> X.chunks
    ((3, 3), (5,))
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks must hold at least one row block")
    lazy = [isinstance(b, Delayed) for b in blocks]
    for i, b in enumerate(blocks):
        if not lazy[i]:
            _check_sparse(b, f"blocks[{i}]")
    concrete = [b for b, z in zip(blocks, lazy) if not z]
    if any(lazy):
        missing = [n for n, v in (("rows", rows), ("dtype", dtype)) if v is None]
        if n_cols is None and not concrete:
            missing.append("n_cols")
        if missing:
            raise ValueError(
                f"from_row_blocks: {', '.join(missing)} must be given when a block is "
                f"a dask.delayed object (its shape is unknown until it is computed)"
            )
    if rows is not None:
        rows = list(rows)
        if len(rows) != len(blocks) or not all(
            isinstance(r, numbers.Integral) and r >= 0 for r in rows
        ):
            raise ValueError(
                f"rows must give a non-negative row count for each of the "
                f"{len(blocks)} blocks, got {rows!r}"
            )
    widths = {b.shape[1] for b in concrete} | ({int(n_cols)} if n_cols is not None else set())
    if len(widths) != 1:
        raise ValueError(
            f"every row block must have the same number of columns; got {sorted(widths)}"
        )
    n = widths.pop()
    if dtype is None:
        dtype = np.result_type(*[b.dtype for b in concrete])
    dtype = np.dtype(dtype)
    if dtype.kind not in "iufc":
        raise TypeError(f"dtype must be numeric, got {dtype}")
    row_counts = []
    for i, b in enumerate(blocks):
        if lazy[i]:
            row_counts.append(int(rows[i]))
        else:
            if rows is not None and rows[i] != b.shape[0]:
                raise ValueError(f"rows[{i}] = {rows[i]} but blocks[{i}] has {b.shape[0]} rows")
            row_counts.append(b.shape[0])
    name = "from-row-blocks-" + tokenize(
        [b.key if z else b for b, z in zip(blocks, lazy)], n, dtype)
    dsk, deps = {}, []
    for i, b in enumerate(blocks):
        if lazy[i]:
            dsk[(name, i, 0)] = (_checked_block, b.key, (row_counts[i], n), dtype, i)
            deps.append(b)
        else:
            dsk[(name, i, 0)] = _checked_block(b, b.shape, dtype, i)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, (tuple(row_counts), (n,)), meta=sparse_meta(dtype))


# ---- Matrix Market --------------------------------------------------------

_FIELD_DTYPES = {
    "real": np.dtype(np.float64),
    "double": np.dtype(np.float64),
    "integer": np.dtype(np.int64),
    "complex": np.dtype(np.complex128),
    "pattern": np.dtype(np.float64),
}
_SYMMETRIES = ("general", "symmetric", "skew-symmetric", "hermitian")


def read_header(path):
    """Parse a Matrix Market header: (format, field, symmetry, shape, nnz,
    offset of the first data line)."""
    with open(path, "rb") as f:
        banner = f.readline().decode("ascii", "replace").split()
        if len(banner) != 5 or banner[0].lower() != "%%matrixmarket" or banner[1].lower() != "matrix":
            raise ValueError(f"{path} is not a Matrix Market matrix file (banner {' '.join(banner)!r})")
        fmt, field, symmetry = (t.lower() for t in banner[2:])
        if fmt not in ("coordinate", "array") or field not in _FIELD_DTYPES or symmetry not in _SYMMETRIES:
            raise ValueError(f"{path}: unsupported Matrix Market type {' '.join(banner[2:])!r}")
        while True:
            line = f.readline()
            if not line:
                raise ValueError(f"{path}: the size line is missing")
            if line.strip() and not line.lstrip().startswith(b"%"):
                break
        sizes = [int(t) for t in line.split()]
        offset = f.tell()
    if fmt == "coordinate" and len(sizes) == 3:
        return fmt, field, symmetry, (sizes[0], sizes[1]), sizes[2], offset
    if fmt == "array" and len(sizes) == 2:
        return fmt, field, symmetry, (sizes[0], sizes[1]), sizes[0] * sizes[1], offset
    raise ValueError(f"{path}: malformed size line {line!r}")


def _read_range(path, start, stop, first):
    """The data lines whose first byte lies in [start, stop)."""
    with open(path, "rb") as f:
        f.seek(start - 1 if start > first else start)
        if start > first and f.read(1) != b"\n":
            f.readline()  # a line that began in the previous range
        pos = f.tell()
        if pos >= stop:
            return b""
        buf = f.read(stop - pos)
        if buf and not buf.endswith(b"\n"):
            buf += f.readline()
    return buf


def _parse_entries(buf, field, symmetry, shape):
    """(rows, cols, values) of coordinate lines, 0-based, symmetric halves
    expanded."""
    ncols = {"pattern": 2, "complex": 4}.get(field, 3)
    dtype = _FIELD_DTYPES[field]
    if buf.strip():
        raw = np.loadtxt(io.BytesIO(buf), dtype=np.int64 if field == "integer" else np.float64,
                         comments="%", ndmin=2)
    else:
        raw = np.empty((0, ncols))
    if raw.shape[1] != ncols:
        raise ValueError(f"Matrix Market {field} entries need {ncols} numbers per line, got {raw.shape[1]}")
    r = raw[:, 0].astype(np.int64) - 1
    c = raw[:, 1].astype(np.int64) - 1
    if r.size and (r.min() < 0 or c.min() < 0 or r.max() >= shape[0] or c.max() >= shape[1]):
        raise ValueError(f"Matrix Market entry out of range for shape {shape}")
    if field == "pattern":
        v = np.ones(r.size, dtype=dtype)
    elif field == "complex":
        v = raw[:, 2] + 1j * raw[:, 3]
    else:
        v = raw[:, 2].astype(dtype, copy=False)
    if symmetry != "general":
        off = r != c
        mirrored = v[off]
        if symmetry == "skew-symmetric":
            mirrored = -mirrored
        elif symmetry == "hermitian":
            mirrored = np.conj(mirrored)
        r, c, v = np.concatenate([r, c[off]]), np.concatenate([c, r[off]]), np.concatenate([v, mirrored])
    return r, c, v


def _parse_split(path, start, stop, first, field, symmetry, shape, row_cuts):
    """Entries of one byte range, split by row block: a tuple of
    (rows relative to the block, cols, values) per block."""
    r, c, v = _parse_entries(_read_range(path, start, stop, first), field, symmetry, shape)
    order = np.argsort(r, kind="stable")
    r, c, v = r[order], c[order], v[order]
    bounds = np.searchsorted(r, row_cuts)
    return tuple(
        (r[bounds[b]:bounds[b + 1]] - row_cuts[b], c[bounds[b]:bounds[b + 1]], v[bounds[b]:bounds[b + 1]])
        for b in range(len(row_cuts) - 1)
    )


def _assemble(pieces, shape, dtype):
    if pieces:
        r = np.concatenate([p[0] for p in pieces])
        c = np.concatenate([p[1] for p in pieces])
        v = np.concatenate([p[2] for p in pieces]).astype(dtype, copy=False)
    else:
        r = c = np.empty(0, np.int64)
        v = np.empty(0, dtype)
    X = sp.csr_array((v, (r, c)), shape=shape)
    X.sum_duplicates()
    return _chunks.as_canonical_csr(X)


def _read_whole(path):
    from sparsecore.datasets import read_matrix_market as read

    return read(path)


def _split_rows(X, row_cuts):
    return tuple(_chunks.row_slice(X, int(a), int(b)) for a, b in zip(row_cuts[:-1], row_cuts[1:]))


def _row_cuts(m, chunks, default_blocks):
    """Cuts 0 = r_0 <= ... <= r_b = m of the row blocks."""
    if chunks is None:
        n_blocks = max(1, min(max(m, 1), default_blocks))
        cuts = np.linspace(0, m, n_blocks + 1).round().astype(np.int64)
        return np.unique(cuts) if m else np.array([0, 0])
    if isinstance(chunks, numbers.Integral) and not isinstance(chunks, bool):
        sizes = da.core.normalize_chunks(int(chunks), (m,))[0]
    elif isinstance(chunks, (tuple, list)) and all(
        isinstance(c, numbers.Integral) and c >= 0 for c in chunks
    ):
        if sum(chunks) != m:
            raise ValueError(f"chunks {tuple(chunks)} add up to {sum(chunks)} rows, not {m}")
        sizes = tuple(int(c) for c in chunks)
    else:
        raise ValueError(f"chunks must be rows per block (an int) or a tuple of row counts, got {chunks!r}")
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def read_matrix_market(path, *, chunks=None, blocksize="64MiB"):
    """Read Matrix Market files into a dask array of CSR row blocks.

    One file in coordinate format is read by byte ranges of about
    ``blocksize`` in parallel tasks: each task parses its lines, expands
    symmetric entries and splits them by row block; a row block is then
    assembled from the pieces of every range, so no task holds the whole
    matrix. Compressed (``.gz``) and dense (``array``) files are read by one
    task and split into row blocks. A list of files reads one row block per
    file.

    Parameters
    ----------
    path : str, path-like, or a sequence of them
        One file, or row blocks in files of equal column counts.
    chunks : int or tuple of int, optional
        Rows per block (one file only). Default: one block per byte range.
    blocksize : int or str, default="64MiB"
        Bytes per parsing task.

    Returns
    -------
    dask.array.Array
        Canonical CSR chunks, one column block; values float64 for real and
        pattern files (pattern entries are ones), int64 for integer files,
        complex128 for complex files, as :func:`sparsecore.datasets.read_matrix_market`.
    """
    if isinstance(path, (list, tuple)):
        return _read_many([Path(p) for p in path])
    path = Path(path)
    bs = int(dask.utils.parse_bytes(blocksize)) if isinstance(blocksize, str) else int(blocksize)
    if bs <= 0:
        raise ValueError(f"blocksize must be positive, got {blocksize!r}")
    compressed = path.suffix == ".gz"
    if compressed:
        import gzip

        with gzip.open(path, "rb") as fh:
            head = fh.read(1 << 16)
        tmp_header = _header_from_bytes(head, path)
        fmt, field, symmetry, shape, nnz, first = tmp_header
        data_bytes = path.stat().st_size * 4
    else:
        fmt, field, symmetry, shape, nnz, first = read_header(path)
        data_bytes = path.stat().st_size - first
    dtype = _FIELD_DTYPES[field]
    n_ranges = max(1, math.ceil(data_bytes / bs))
    row_cuts = _row_cuts(shape[0], chunks, n_ranges)
    row_chunks = tuple(int(x) for x in np.diff(row_cuts))
    name = "read-mm-" + tokenize(str(path.resolve()), path.stat().st_mtime_ns, row_chunks, bs)
    dsk = {}
    if compressed or fmt == "array":
        whole = "read-mm-whole-" + name
        dsk[whole] = (_split_rows, (_read_whole, str(path)), row_cuts)
        for b in range(len(row_chunks)):
            dsk[(name, b, 0)] = (operator.getitem, whole, b)
    else:
        parse = "read-mm-parse-" + name
        piece = "read-mm-piece-" + name
        starts = [first + p * bs for p in range(n_ranges)]
        stops = starts[1:] + [path.stat().st_size]
        for p in range(n_ranges):
            dsk[(parse, p)] = (_parse_split, str(path), starts[p], stops[p], first, field,
                               symmetry, shape, row_cuts)
            for b in range(len(row_chunks)):
                dsk[(piece, p, b)] = (operator.getitem, (parse, p), b)
        for b in range(len(row_chunks)):
            dsk[(name, b, 0)] = (_assemble, [(piece, p, b) for p in range(n_ranges)],
                                 (row_chunks[b], shape[1]), dtype)
    return da.Array(dsk, name, (row_chunks, (shape[1],)), meta=sparse_meta(dtype))


def _header_from_bytes(head, path):
    banner = head.split(b"\n", 1)[0].decode("ascii", "replace").split()
    if len(banner) != 5 or banner[0].lower() != "%%matrixmarket":
        raise ValueError(f"{path} is not a Matrix Market matrix file")
    fmt, field, symmetry = (t.lower() for t in banner[2:])
    if field not in _FIELD_DTYPES:
        raise ValueError(f"{path}: unsupported Matrix Market field {field!r}")
    for line in head.split(b"\n")[1:]:
        if line.strip() and not line.lstrip().startswith(b"%"):
            sizes = [int(t) for t in line.split()]
            return fmt, field, symmetry, (sizes[0], sizes[1]), 0, 0
    raise ValueError(f"{path}: the size line is missing from the first 64 KiB")


def _read_many(paths):
    if not paths:
        raise ValueError("path must name at least one file")
    shapes, dtypes = [], []
    for p in paths:
        if p.suffix == ".gz":
            import gzip

            with gzip.open(p, "rb") as fh:
                _, field, _, shape, _, _ = _header_from_bytes(fh.read(1 << 16), p)
        else:
            _, field, _, shape, _, _ = read_header(p)
        shapes.append(shape)
        dtypes.append(_FIELD_DTYPES[field])
    widths = {s[1] for s in shapes}
    if len(widths) != 1:
        raise ValueError(
            "row blocks read from several files must have the same number of columns; "
            + ", ".join(f"{p.name}: {s[1]}" for p, s in zip(paths, shapes))
        )
    dtype = np.result_type(*dtypes)
    name = "read-mm-files-" + tokenize([str(p.resolve()) for p in paths],
                                       [p.stat().st_mtime_ns for p in paths])
    dsk = {(name, i, 0): (_checked_block, (_read_whole, str(p)), s, dtype, i)
           for i, (p, s) in enumerate(zip(paths, shapes))}
    return da.Array(dsk, name, (tuple(s[0] for s in shapes), (widths.pop(),)),
                    meta=sparse_meta(dtype))
