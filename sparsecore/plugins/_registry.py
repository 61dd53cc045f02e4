"""Adapters found through the ``sparsecore.adapters`` entry-point group.

After xarray's backend registry: entry points are read lazily and cached; a
third-party entry that fails to load, or that is not an :class:`Adapter`,
becomes a RuntimeWarning and is left out; a duplicate name keeps the first
entry and warns. Nothing here can break ``import sparsecore``.
"""
import functools
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from sparsecore.plugins._base import Adapter

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterInfo",
    "get_adapter",
    "list_adapters",
    "load_adapter",
    "refresh_adapters",
]

ENTRY_POINT_GROUP = "sparsecore.adapters"


@dataclass(frozen=True)
class AdapterInfo:
    """One row of :func:`list_adapters`.

    Attributes
    ----------
    name, kind, description, module : str
        As in :class:`Adapter`.
    requires : tuple of str
        Modules the adapter needs.
    missing : tuple of str
        Those of them that are not installed.
    install : str
        What to run to install them.
    distribution : str
        The distribution that registered the entry point.
    """

    name: str
    kind: str
    description: str
    module: str
    requires: tuple
    missing: tuple
    install: str
    distribution: str

    @property
    def available(self):
        """True when every required module is installed."""
        return not self.missing


def _distribution_name(ep):
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", "") or ""


def adapters_from_entry_points(eps):
    """Build ``{name: Adapter}`` from entry points, warning on broken ones."""
    adapters = {}
    for ep in eps:
        if ep.name in adapters:
            warnings.warn(
                f"sparsecore adapter {ep.name!r} is registered more than once "
                f"(kept {adapters[ep.name][1]!r}, ignored {ep.value!r})",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Adapter):
                adapter = obj(ep.name)
            elif isinstance(obj, Adapter):
                adapter = obj
                adapter.name = ep.name
            else:
                raise TypeError(
                    f"{ep.value} is {obj!r}, not a sparsecore.plugins.Adapter "
                    f"subclass"
                )
        except Exception as exc:  # a broken plugin must not break the others
            warnings.warn(
                f"sparsecore adapter {ep.name!r} failed to load:\n{exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        adapters[ep.name] = (adapter, ep.value, _distribution_name(ep))
    return adapters


@functools.lru_cache(maxsize=1)
def registered_adapters():
    """``{entry-point name: (adapter, entry-point value, distribution)}``, cached."""
    return adapters_from_entry_points(entry_points(group=ENTRY_POINT_GROUP))


def refresh_adapters():
    """Forget the cached entry points (after installing a plugin)."""
    registered_adapters.cache_clear()


def list_adapters():
    """Return every registered adapter, installed or not.

    Returns
    -------
    dict of str to AdapterInfo
        Keyed by adapter name, sorted; ``info.available`` says whether its
        dependencies are installed and ``info.install`` how to get them.
    """
    rows = {}
    for name, (adapter, _, dist) in sorted(registered_adapters().items()):
        rows[name] = AdapterInfo(
            name=name,
            kind=adapter.kind,
            description=adapter.description,
            module=adapter.module,
            requires=tuple(adapter.requires),
            missing=tuple(adapter.missing()),
            install=adapter.install,
            distribution=dist,
        )
    return rows


def get_adapter(name):
    """Return the :class:`Adapter` registered as ``name``.

    Parameters
    ----------
    name : str
        Registered adapter name.

    Returns
    -------
    Adapter

    Raises
    ------
    ValueError
        If no adapter has that name; the message lists the registered ones.
    """
    adapters = registered_adapters()
    if name not in adapters:
        known = ", ".join(sorted(adapters)) or "none"
        raise ValueError(
            f"no sparsecore adapter named {name!r}; registered adapters: {known}"
        )
    return adapters[name][0]


def load_adapter(name):
    """Import and return the module of adapter ``name``.

    Parameters
    ----------
    name : str
        Registered adapter name.

    Returns
    -------
    module

    Raises
    ------
    ValueError
        If no adapter has that name.
    ImportError
        If its dependencies are missing; the message says what to install.
    """
    return get_adapter(name).load()
