"""Deprecated: the digits MLP example moved to
``sparsecore._bench.torch_digits`` (run it with ``python -m
sparsecore._bench.torch_digits``).

Importing a name from here still works, with a DeprecationWarning that names
its new place.
"""
import importlib
import warnings

_MOVED = {
    "digits_mlp": ("sparsecore._bench.torch_digits", "digits_mlp"),
    "load_digits_split": ("sparsecore._bench.torch_digits", "load_digits_split"),
    "main": ("sparsecore._bench.torch_digits", "main"),
    "train_digits": ("sparsecore._bench.torch_digits", "train_digits"),
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
