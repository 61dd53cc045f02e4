"""Deprecated: the digits MLP example moved to
``sparsecore._bench.torch_digits`` (run it with ``python -m
sparsecore._bench.torch_digits``).

Importing a name from here still works, with a DeprecationWarning that names
its new place.
"""
from sparsecore._deprecation import moved_names

_MOVED = {
    "digits_mlp": ("sparsecore._bench.torch_digits", "digits_mlp"),
    "load_digits_split": ("sparsecore._bench.torch_digits", "load_digits_split"),
    "main": ("sparsecore._bench.torch_digits", "main"),
    "train_digits": ("sparsecore._bench.torch_digits", "train_digits"),
}


__getattr__ = moved_names(__name__, _MOVED)
