"""The public modules of sparsecore: one list, read by the docs and the tests.

``docs/conf.py`` writes one API-reference page per entry (the names in each
module's ``__all__``), and ``tests/docs/test_docstrings.py`` runs numpydoc's
validation over the same objects. A new public module is added here, once.
"""
import importlib
import inspect

__all__ = ["PUBLIC_MODULES", "canonical_module", "public_objects"]

#: Public modules, in the order of the API reference. Each entry is
#: ``(module name, optional dependency or None)``: a module whose dependency is
#: missing is skipped by the docstring test (CI installs every extra).
PUBLIC_MODULES = (
    ("sparsecore", None),
    ("sparsecore.ops", None),
    ("sparsecore.formats", None),
    ("sparsecore.datasets", None),
    ("sparsecore.linear_model", None),
    ("sparsecore.optimize", None),
    ("sparsecore.semi_supervised", None),
    ("sparsecore.moe", "torch"),
    ("sparsecore.dask", "dask"),
    ("sparsecore.torch", "torch"),
    ("sparsecore.recsys", "torch"),
    ("sparsecore.continual", "torch"),
    ("sparsecore.plugins", None),
)


def canonical_module(obj, default):
    """The listed module an object is documented under.

    Parameters
    ----------
    obj : object
        A public object.
    default : str
        The module that exports it, used when ``obj`` has no ``__module__``
        inside a listed module (constants, objects from other packages).

    Returns
    -------
    str
        The longest listed module name that is a prefix of ``obj.__module__``
        (``sparsecore.ops`` for ``sparsecore.spgemm``), else ``default``.
    """
    origin = getattr(obj, "__module__", None)
    if not isinstance(origin, str) or inspect.ismodule(obj):
        return default
    best = None
    for name, _ in PUBLIC_MODULES:
        if origin == name or origin.startswith(name + "."):
            if best is None or len(name) > len(best):
                best = name
    # ``sparsecore`` itself is only the home of what is defined at the top.
    if best == "sparsecore" and origin != "sparsecore" and not origin.startswith("sparsecore._"):
        return default
    return best or default


def public_objects(module_name):
    """The public objects of a listed module, split by where they are documented.

    Parameters
    ----------
    module_name : str
        A module of :data:`PUBLIC_MODULES`.

    Returns
    -------
    own : list of (str, object)
        ``(name, object)`` documented on this module's page, in ``__all__``
        order; submodules and dunder names are left out.
    aliases : list of (str, str)
        ``(name, canonical full name)`` of re-exports documented elsewhere.
    """
    module = importlib.import_module(module_name)
    own, aliases = [], []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        home = canonical_module(obj, module_name)
        if home == module_name:
            own.append((name, obj))
        else:
            aliases.append((name, f"{home}.{name}"))
    return own, aliases
