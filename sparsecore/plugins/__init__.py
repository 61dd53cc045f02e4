"""Registry of adapters (PyTorch layers, MoE gates, trainers, Dask, ...).

Adapters are registered through the ``sparsecore.adapters`` entry-point group,
ours by sparsecore's own pyproject.toml exactly as a third-party package would
register one, and loaded on first use. The registry knows only the
:class:`Adapter` base class; what a kind of adapter means lives with the
package that uses it (MoE gates: :mod:`sparsecore.moe`).
"""
from sparsecore._deprecation import moved_names
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
__getattr__ = moved_names(__name__, {
    name: ("sparsecore.moe", name)
    for name in ("GateAdapter", "create_gate", "get_gate_adapter", "list_gates")
})

