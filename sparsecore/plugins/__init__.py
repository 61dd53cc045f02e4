"""Registry of adapters (PyTorch layers, MoE gates, trainers, Dask, ...).

Adapters are registered through the ``sparsecore.adapters`` entry-point group,
ours by sparsecore's own pyproject.toml exactly as a third-party package would
register one, and loaded on first use. The registry knows only the
:class:`Adapter` base class; what a kind of adapter means lives with the
package that uses it (MoE gates: :mod:`sparsecore.moe`).
"""
import importlib
import warnings

from sparsecore.plugins._base import Adapter
from sparsecore.plugins._registry import (
    ENTRY_POINT_GROUP,
    AdapterInfo,
    get_adapter,
    list_adapters,
    load_adapter,
    refresh_adapters,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterInfo",
    "get_adapter",
    "list_adapters",
    "load_adapter",
    "refresh_adapters",
]

# Names that moved to the package that uses them; still reachable here, with
# a DeprecationWarning that names the new place.
_MOVED = {
    "GateAdapter": "sparsecore.moe",
    "create_gate": "sparsecore.moe",
    "get_gate_adapter": "sparsecore.moe",
    "list_gates": "sparsecore.moe",
}


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module 'sparsecore.plugins' has no attribute {name!r}")
    new = _MOVED[name]
    warnings.warn(
        f"sparsecore.plugins.{name} moved to {new}.{name}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(new), name)
