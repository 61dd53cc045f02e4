"""Registry of adapters (PyTorch layers, MoE gates, trainers, Dask, ...).

Adapters are registered through the ``sparsecore.adapters`` entry-point group,
ours by sparsecore's own pyproject.toml exactly as a third-party package would
register one, and loaded on first use.
"""
from sparsecore.plugins._base import Adapter
from sparsecore.plugins._gates import (
    GateAdapter,
    create_gate,
    get_gate_adapter,
    list_gates,
)
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
    "GateAdapter",
    "create_gate",
    "get_adapter",
    "get_gate_adapter",
    "list_gates",
    "list_adapters",
    "load_adapter",
    "refresh_adapters",
]
