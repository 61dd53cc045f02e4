"""Names that moved: a module-level ``__getattr__`` that still finds them at
their old place, with a DeprecationWarning naming the new one."""
import importlib
import warnings

__all__ = ["moved_names"]


def moved_names(module_name, moved):
    """A ``__getattr__`` for module ``module_name`` that forwards moved names.

    Parameters
    ----------
    module_name : str
        The old module (its ``__name__``).
    moved : dict of str to (str, str)
        ``{old name: (new module, new name)}``. The new module is imported on
        first use of one of its names, so an old module below it in the layers
        never imports it.

    Returns
    -------
    callable
        To be assigned to the old module's ``__getattr__``.
    """
    def __getattr__(name):
        if name not in moved:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        new_module, new_name = moved[name]
        warnings.warn(
            f"{module_name}.{name} is deprecated; use {new_module}.{new_name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__
