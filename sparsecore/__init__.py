"""sparsecore: sparse numerical kernels, and the solvers and adapters on them.

Importing sparsecore imports numpy and scipy only: subpackages with optional
dependencies (the scikit-learn estimators in ``linear_model`` and
``semi_supervised``, the PyTorch, MoE, recommendation, continual-learning and
Dask adapters) are imported on first use.
"""
import importlib

from sparsecore._build_info import VERSION as __version__
from sparsecore import datasets, formats, ops, plugins
from sparsecore.ops import spgemm, spmm
from sparsecore._config import show_config
from sparsecore._accelerate import accelerate

__all__ = ["__version__", "accelerate", "datasets", "formats", "ops", "plugins", "show_config",
           "spgemm", "spmm"]

# Subpackages imported on attribute access (``sparsecore.linear_model``).
_LAZY_SUBMODULES = frozenset({"linear_model", "optimize", "semi_supervised"})


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"sparsecore.{name}")
    raise AttributeError(f"module 'sparsecore' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES)
