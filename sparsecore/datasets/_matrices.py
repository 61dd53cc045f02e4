"""Real matrices: the few shipped in the package, and Matrix Market readers."""
import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

__all__ = ["list_matrices", "load_matrix", "read_matrix_market", "find_matrix_dir"]

_SHIPPED = {
    "olm1000": "Olmstead model, fluid dynamics (1000 x 1000)",
    "young1c": "acoustics, complex (841 x 841)",
    "dwt_992": "structural, pattern (992 x 992)",
    "bcspwr10": "power network, pattern (5300 x 5300)",
    "hangGlider_2": "optimal control (1647 x 1647)",
    "n1024-l1": "sparse DNN layer, 32 nonzeros per column (1024 x 1024)",
}


def list_matrices():
    """Return ``{name: description}`` of the matrices shipped with sparsecore.

    They come from the SuiteSparse Matrix Collection (Davis & Hu, ACM TOMS
    2011; CC-BY 4.0).

    Returns
    -------
    dict of str to str
    """
    return dict(_SHIPPED)


def read_matrix_market(path):
    """Read a Matrix Market file (optionally ``.gz``) as a canonical CSR array.

    Symmetric, skew-symmetric and Hermitian files are expanded to the full
    matrix; pattern files get ones as values.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    scipy.sparse.csr_array
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        M = scipy.io.mmread(fh)
    A = sp.csr_array(M)
    A.sum_duplicates()
    return A


def load_matrix(name):
    """Load one of the matrices shipped with sparsecore.

    Parameters
    ----------
    name : str
        One of :func:`list_matrices`.

    Returns
    -------
    scipy.sparse.csr_array
        Canonical CSR, float64 (complex128 for ``young1c``).

    Examples
    --------
    >>> from sparsecore.datasets import load_matrix
    >>> load_matrix("olm1000").shape
    (1000, 1000)
    """
    if name not in _SHIPPED:
        raise ValueError(
            f"unknown matrix {name!r}; shipped matrices: {', '.join(sorted(_SHIPPED))}"
        )
    ref = resources.files("sparsecore.datasets") / "data" / f"{name}.mtx.gz"
    with resources.as_file(ref) as path:
        return read_matrix_market(path)


def find_matrix_dir(path=None):
    """Locate a folder of Matrix Market test matrices, or return None.

    Looks at ``path``, then ``$SPARSECORE_MATRIX_DIR``, then
    ``../shared/data/matrices`` and ``shared/data/matrices`` from the current
    directory.

    Parameters
    ----------
    path : str or path-like, optional
        A folder to try first.

    Returns
    -------
    pathlib.Path or None
        The first of these folders that holds ``.mtx`` files.
    """
    candidates = [path, os.environ.get("SPARSECORE_MATRIX_DIR")]
    candidates += [Path.cwd().parent / "shared/data/matrices", Path.cwd() / "shared/data/matrices"]
    for cand in candidates:
        if cand and Path(cand).is_dir() and any(Path(cand).glob("*.mtx")):
            return Path(cand)
    return None
