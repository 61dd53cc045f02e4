"""sparsecore: sparse numerical kernels, and the solvers and adapters on them.

Importing sparsecore imports numpy and scipy only: subpackages with optional
dependencies (the scikit-learn estimators in ``linear_model`` and
``semi_supervised``, the PyTorch, MoE, recommendation, continual-learning and
Dask adapters) are imported on first use.
"""
import importlib
import sys

try:
    from sparsecore._build_info import VERSION as __version__
except ModuleNotFoundError as exc:
    if exc.name != "sparsecore._build_info":
        raise
    # Only a build writes _build_info: this is the source tree (Python puts
    # the current directory first on sys.path), whose compiled core is not here.
    _MSG = ("sparsecore: this is the source tree, not a build (its compiled core is "
            "missing); run from another directory, or with `python -P` (which keeps the "
            "current directory off sys.path), or build and install it first "
            "(`pip install .`)")
    _argv = sys.orig_argv
    if "-msparsecore" in _argv or (
            "-m" in _argv and _argv[_argv.index("-m") + 1:][:1] == ["sparsecore"]):
        # `python -m sparsecore`: the explanation alone, no traceback
        raise SystemExit(_MSG) from None
    raise ImportError(_MSG, name="sparsecore") from None
from sparsecore import datasets, formats, ops, plugins
from sparsecore.ops import spgemm, spmm
from sparsecore._config import get_simd, set_simd, show_config
from sparsecore._accelerate import accelerate

__all__ = ["__version__", "accelerate", "datasets", "formats", "get_simd", "ops", "plugins",
           "set_simd", "show_config", "spgemm", "spmm"]

# Subpackages imported on attribute access (``sparsecore.linear_model``).
_LAZY_SUBMODULES = frozenset({"linear_model", "optimize", "semi_supervised"})


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"sparsecore.{name}")
    raise AttributeError(f"module 'sparsecore' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES)
