"""Input checks and conversions shared by every layer above the compiled core.

Everything here runs before any kernel does: a bad input gets an exception
naming the argument, what was expected and what was given, and inputs are never
modified (conversions copy).
"""
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sparsecore._ext import _sparse

__all__ = [
    "CSRParts",
    "as_csr_parts",
    "check_allocation",
    "check_choice",
    "check_scalar",
    "index_dtype_for",
    "INT32_MAX",
]

INT32_MAX = np.iinfo(np.int32).max

_CSR_ERRORS = {
    1: "indptr[0] must be 0",
    3: "indptr[-1] exceeds the number of stored indices",
}


@dataclass(frozen=True)
class CSRParts:
    """Validated, C-contiguous CSR arrays of one operand."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple
    sorted: bool  # every row strictly increasing: sorted and no duplicates

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def with_index_dtype(self, dtype):
        """These parts with index arrays of ``dtype`` (copies only if needed)."""
        if self.indptr.dtype == dtype:
            return self
        return CSRParts(
            self.indptr.astype(dtype),
            self.indices.astype(dtype),
            self.data,
            self.shape,
            self.sorted,
        )


def index_dtype_for(*maxvals):
    """int32 when every value fits, else int64 (as scipy chooses)."""
    return np.int32 if max(maxvals, default=0) <= INT32_MAX else np.int64


def contiguous(a, dtype=None):
    """``np.ascontiguousarray`` that also guarantees alignment.

    numpy keeps misaligned views (e.g. arrays unpickled from a byte buffer, as
    Dask sends them to workers) when they are already contiguous; the kernels
    read them through typed pointers, which needs aligned data.
    """
    out = np.ascontiguousarray(a, dtype=dtype)
    return out if out.flags.aligned else out.copy()


def fortran(a, dtype=None):
    """``np.asfortranarray`` that also guarantees alignment (see :func:`contiguous`)."""
    out = np.asfortranarray(a, dtype=dtype)
    return out if out.flags.aligned else out.copy(order="F")


def as_csr_parts(X, name, n_threads=1):
    """Validate a scipy.sparse operand and return its CSR arrays.

    Parameters
    ----------
    X : scipy.sparse array or matrix
        Any format; non-CSR formats are converted (a copy).
    name : str
        The argument name used in error messages.
    n_threads : int, default=1
        Threads for the structure check of large operands.

    Returns
    -------
    CSRParts
    """
    if not sp.issparse(X):
        raise TypeError(
            f"{name} must be a scipy.sparse array or matrix, got "
            f"{type(X).__module__}.{type(X).__name__}; wrap dense data with "
            f"scipy.sparse.csr_array({name})"
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {X.ndim}-D with shape {X.shape}")
    if X.dtype == object:
        raise TypeError(f"{name} has dtype object; numeric dtypes only")
    if X.format != "csr":
        X = X.tocsr()
    m, n = X.shape
    indptr, indices, data = X.indptr, X.indices, X.data
    if indptr.ndim != 1 or indptr.shape[0] != m + 1:
        raise ValueError(
            f"{name}.indptr has shape {indptr.shape}; a CSR matrix with {m} rows "
            f"needs {m + 1} row pointers"
        )
    if indices.shape != data.shape:
        raise ValueError(
            f"{name}.indices and {name}.data differ in length "
            f"({indices.shape[0]} and {data.shape[0]})"
        )
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise TypeError(
            f"{name} has index dtypes {indptr.dtype}/{indices.dtype}; integer "
            f"indices expected"
        )
    # int32 only when both are signed and at most 4 bytes (in either byte
    # order): every value then survives the cast. Anything else (int64,
    # unsigned, big-endian int64) goes to int64; values beyond int64 wrap to
    # negatives, which the structure check reports.
    small = all(d.kind == "i" and d.itemsize <= 4 for d in (indptr.dtype, indices.dtype))
    common = np.int32 if small else np.int64
    indptr = contiguous(indptr, dtype=common)
    indices = contiguous(indices, dtype=common)
    nt = n_threads if indices.shape[0] >= _sparse.PARALLEL_SCAN else 1
    code, where, is_sorted = _sparse.csr_check(indptr, indices, m, n, nt)
    if code == 2:
        raise ValueError(
            f"{name}.indptr must be non-decreasing, but indptr[{where + 1}] = "
            f"{indptr[where + 1]} < indptr[{where}] = {indptr[where]}"
        )
    if code == 4:
        raise ValueError(
            f"{name} has a column index out of range: indices[{where}] = "
            f"{indices[where]} but {name} has {n} columns"
        )
    if code:
        raise ValueError(f"{name} is not a valid CSR matrix: {_CSR_ERRORS[code]}")
    nnz = int(indptr[-1])
    indices = indices[:nnz]
    data = contiguous(data[:nnz])
    return CSRParts(indptr, contiguous(indices), data, (m, n), is_sorted)


def available_memory():
    """Bytes the system can still give us (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(nbytes, what):
    """Raise MemoryError, before allocating, when ``nbytes`` cannot fit."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(
            f"{what} needs {nbytes:,} bytes ({nbytes / 2**30:.1f} GiB) but only "
            f"{avail:,} bytes ({avail / 2**30:.1f} GiB) of memory are available"
        )


_TYPE_WORDS = {int: "an int", float: "a real number", numbers.Integral: "an int",
               numbers.Real: "a real number"}


def check_scalar(value, name, target_type, *, min_val=None, max_val=None,
                 include_boundaries="both", finite=True):
    """Check a scalar parameter's type and range, as scikit-learn's
    ``check_scalar`` does: TypeError for a wrong type, ValueError out of range.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The parameter's name, for the messages.
    target_type : {int, float}
        ``int``: any integer (numpy's too), never a bool. ``float``: any real
        number (ints included), never a bool; returned as a Python float.
    min_val, max_val : float, optional
        Bounds; None means unbounded on that side.
    include_boundaries : {"both", "left", "right", "neither"}, default="both"
        Which bounds are allowed values.
    finite : bool, default=True
        Reject NaN and infinities (a float target only).

    Returns
    -------
    int or float
        ``value`` as a Python int or float.

    Raises
    ------
    TypeError
        If ``value`` is not of ``target_type``.
    ValueError
        If ``value`` is out of range (the message states the allowed range).
    """
    abstract = numbers.Integral if target_type is int else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, abstract):
        raise TypeError(
            f"{name} must be {_TYPE_WORDS[target_type]}, got {type(value).__name__} {value!r}"
        )
    value = int(value) if target_type is int else float(value)
    low_ok = include_boundaries in ("both", "left")
    high_ok = include_boundaries in ("both", "right")
    bad = math.isnan(value) or (finite and math.isinf(value))
    if min_val is not None:
        bad = bad or (value < min_val if low_ok else value <= min_val)
    if max_val is not None:
        bad = bad or (value > max_val if high_ok else value >= max_val)
    if bad:
        low = None if min_val is None else (">=" if low_ok else ">") + f" {min_val}"
        high = None if max_val is None else ("<=" if high_ok else "<") + f" {max_val}"
        if low and high:
            lo, hi = ("[" if low_ok else "("), ("]" if high_ok else ")")
            rule = f"in {lo}{min_val}, {max_val}{hi}"
        else:
            rule = low or high or "finite"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return value


def check_choice(value, name, choices):
    """Check that ``value`` is one of ``choices`` (strings or other hashables).

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The parameter's name, for the message.
    choices : sequence
        The allowed values.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``choices`` (the message lists them).
    """
    # equality, except that a bool never stands for 1 or 0 (nor they for it)
    is_bool = isinstance(value, (bool, np.bool_))
    try:
        ok = any(bool(c == value) and isinstance(c, (bool, np.bool_)) == is_bool
                 for c in choices)
    except (TypeError, ValueError):  # arrays and other values without a plain ==
        ok = False
    if not ok:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
    return value
