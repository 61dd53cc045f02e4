"""Deprecated: the MoE experiment drivers moved to
``sparsecore._bench.moe_experiments`` (the benchmark side); the data
generators to ``sparsecore.datasets``, ``routing_f1`` to ``sparsecore.moe``.

Importing a name from here still works, with a DeprecationWarning that names
its new place.
"""
from sparsecore._deprecation import moved_names

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


__getattr__ = moved_names(__name__, _MOVED)
