"""Helpers shared by the tests (on sys.path through pytest's pythonpath)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_matrix_dir():
    """../shared/data/matrices beside the checkout (or $SPARSECORE_MATRIX_DIR)."""
    env = os.environ.get("SPARSECORE_MATRIX_DIR")
    for cand in (env, REPO.parent / "shared" / "data" / "matrices"):
        if cand and Path(cand).is_dir() and any(Path(cand).glob("*.mtx")):
            return Path(cand)
    return None


SHARED = shared_matrix_dir()
SHARED_MATRICES = sorted(p.stem for p in SHARED.glob("*.mtx")) if SHARED else []

requires_shared = pytest.mark.skipif(
    SHARED is None,
    reason="../shared/data/matrices not found beside the checkout "
    "(set SPARSECORE_MATRIX_DIR to a folder of Matrix Market files)",
)
