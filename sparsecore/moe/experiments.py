"""Deprecated: the MoE experiment drivers moved to
``sparsecore._bench.moe_experiments`` (the benchmark side); the data
generators to ``sparsecore.datasets``, ``routing_f1`` to ``sparsecore.moe``.

Importing a name from here still works, with a DeprecationWarning that names
its new place.
"""
import importlib
import warnings

_MOVED = {
    "FixedRoutingGate": ("sparsecore._bench.moe_experiments", "FixedRoutingGate"),
    "GATES": ("sparsecore._bench.moe_experiments", "GATES"),
    "SYNTHETIC_STRUCTURES": ("sparsecore.datasets", "SYNTHETIC_STRUCTURES"),
    "comet_from_truth": ("sparsecore._bench.moe_experiments", "comet_from_truth"),
    "make_gate": ("sparsecore._bench.moe_experiments", "make_gate"),
    "make_movielens_two_task": ("sparsecore.datasets", "make_movielens_multitask"),
    "make_routing_regression": ("sparsecore.datasets", "make_routing_regression"),
    "routing_f1": ("sparsecore.moe", "routing_f1"),
    "run_movielens": ("sparsecore._bench.moe_experiments", "run_movielens"),
    "run_synthetic": ("sparsecore._bench.moe_experiments", "run_synthetic"),
}


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new_name = _MOVED[name]
    warnings.warn(
        f"{__name__}.{name} is deprecated; use {module}.{new_name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), new_name)
