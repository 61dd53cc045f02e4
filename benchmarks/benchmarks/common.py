"""Shared pieces of the asv suite (after scipy's benchmarks/common.py).

The cases and peers live in one registry, ``sparsecore._bench._registry``,
which ``python -m sparsecore bench`` prints tables from as well: a benchmark
class here only picks case and peer names of a registered family and times
the registry's prepared call, so both tools measure the same thing under the
same names.
"""
import contextlib
import os
from pathlib import Path

from sparsecore import datasets
from sparsecore._bench import _registry

# asv runs the benchmarks from a folder of its own: point the registry at the
# matrices of this checkout's shared/data/matrices when no folder is set
if datasets.find_matrix_dir() is None:
    for _parent in Path(__file__).resolve().parents:
        if datasets.find_matrix_dir(_parent / "shared" / "data" / "matrices"):
            os.environ["SPARSECORE_MATRIX_DIR"] = str(_parent / "shared" / "data" / "matrices")
            break


@contextlib.contextmanager
def safe_import():
    """Import an optional peer; benchmarks that need it are skipped if absent."""
    try:
        yield
    except ImportError:
        pass


#: Parameters that choose *what* runs (a peer, a storage format, a method):
#: smoke mode keeps all of their values so every code path is exercised.
SMOKE_KEEPS = {"peer", "library", "solver", "method", "format", "semiring",
               "scheduler", "combine", "conversion", "variant", "operation"}


def smoke_mode():
    """True when ``SPARSECORE_ASV_SMOKE=1``: CI's ``asv run --quick`` that only
    checks every benchmark runs (see :func:`shrink_params`)."""
    return os.environ.get("SPARSECORE_ASV_SMOKE") == "1"


def shrink_params(namespace):
    """In smoke mode, cut every parameter axis of the benchmark classes in
    ``namespace`` (a module's ``globals()``) to its first value (the smallest
    case, one thread), except the axes in :data:`SMOKE_KEEPS`.

    The full suite takes about half an hour in ``--quick`` mode on two cores;
    smoke mode runs every benchmark and every peer once, in a few minutes.
    Called at the end of each benchmark module; a no-op otherwise.
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


def peer_params(family, cases=None, peers=None, threads=(1, 2)):
    """``[cases, peers, threads]`` of a registry family: by default all of
    its cases and peers (cases first that run here)."""
    fam = _registry.family(family)
    return [list(cases or fam.case_names()), list(peers or fam.peer_names), list(threads)]


class PeerBenchmark:
    """Times one peer of a registry family on one case at a thread count.

    A subclass sets ``family`` and ``params = peer_params(family, ...)`` and
    defines ``time_<what>`` (and ``peakmem_<what>``) calling ``self.call()``.
    A peer that cannot run the case here (not installed, a thread count it
    does not support) is skipped: setup raises NotImplementedError.
    """

    family = None
    param_names = ["case", "peer", "threads"]
    timeout = 300

    def setup(self, case, peer, threads):
        self._prepared = _registry.prepare(self.family, case, peer, threads)

    def teardown(self, *args):
        if hasattr(self, "_prepared"):   # setup may have skipped the case
            self._prepared.close()

    def call(self):
        """One call of the prepared peer; returns its output."""
        return self._prepared.run()


class SpeedupBenchmark:
    """Tracks time(``base``) / time(``ours``) on a registry case, both
    measured in one process, alternated (median of paired ratios): higher
    is better for us, 1 is parity. A subclass sets ``family``, ``base``,
    ``params = [cases, threads]`` and defines ``track_<what>`` returning
    ``self.speedup(case, threads)``."""

    family = None
    base = None
    ours = "sparsecore"
    param_names = ["case", "threads"]
    unit = "speedup"
    timeout = 300

    def speedup(self, case, threads):
        return _registry.speedup(self.family, case, self.base, self.ours, threads)
