"""Deprecated: the MovieLens protocol and its tuned constants moved to
``sparsecore._bench.recsys_experiments`` (the benchmark side);
``make_block_interactions`` to ``sparsecore.datasets``.

Importing a name from here still works, with a DeprecationWarning that names
its new place.
"""
from sparsecore._deprecation import moved_names

_MOVED = {
    "BASE": ("sparsecore._bench.recsys_experiments", "BASE"),
    "L2_GRID": ("sparsecore._bench.recsys_experiments", "L2_GRID"),
    "METHODS": ("sparsecore._bench.recsys_experiments", "METHODS"),
    "TUNED_L2": ("sparsecore._bench.recsys_experiments", "TUNED_L2"),
    "chosen_l2": ("sparsecore._bench.recsys_experiments", "chosen_l2"),
    "dense_topk": ("sparsecore._bench.recsys_experiments", "dense_topk"),
    "make_block_interactions": ("sparsecore.datasets", "make_block_interactions"),
    "method_params": ("sparsecore._bench.recsys_experiments", "method_params"),
    "run_one": ("sparsecore._bench.recsys_experiments", "run_one"),
    "summarize": ("sparsecore._bench.recsys_experiments", "summarize"),
    "tuning_split": ("sparsecore._bench.recsys_experiments", "tuning_split"),
}


__getattr__ = moved_names(__name__, _MOVED)
