"""Shared pieces of the asv suite (after scipy's benchmarks/common.py)."""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def safe_import():
    """Import an optional peer; benchmarks that need it are skipped if absent."""
    try:
        yield
    except ImportError:
        pass


def matrix_dir():
    """The shared Matrix Market folder, or None (then only shipped matrices run)."""
    env = os.environ.get("SPARSECORE_MATRIX_DIR")
    here = Path(__file__).resolve()
    for cand in [env] + [p / "shared" / "data" / "matrices" for p in here.parents]:
        if cand and Path(cand).is_dir() and any(Path(cand).glob("*.mtx")):
            return Path(cand)
    return None
