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


#: Parameters that choose *what* runs (a peer, a storage format, a method):
#: smoke mode keeps all of their values so every code path is exercised.
SMOKE_KEEPS = {"library", "solver", "peer", "method", "format", "semiring",
               "scheduler", "combine", "conversion", "variant"}


def smoke_mode():
    """True when ``SPARSECORE_ASV_SMOKE=1``: CI's ``asv run --quick`` that only
    checks every benchmark runs (see :func:`shrink_params`)."""
    return os.environ.get("SPARSECORE_ASV_SMOKE") == "1"


def shrink_params(namespace):
    """In smoke mode, cut every parameter axis of the benchmark classes in
    ``namespace`` (a module's ``globals()``) to its first value (the smallest
    size, one thread), except the axes in :data:`SMOKE_KEEPS`.

    The full suite has about a thousand parameter combinations and takes
    about half an hour in ``--quick`` mode on two cores; smoke mode runs every
    benchmark and every peer once, in a few minutes. Called at the end of each
    benchmark module; a no-op otherwise.
    """
    if not smoke_mode():
        return
    for obj in list(namespace.values()):
        params = getattr(obj, "params", None)
        names = getattr(obj, "param_names", None)
        if not isinstance(obj, type) or not params or not names:
            continue
        if not isinstance(params[0], (list, tuple)):
            params = [params]
        obj.params = [list(values) if name in SMOKE_KEEPS else list(values)[:1]
                      for name, values in zip(names, params)]
