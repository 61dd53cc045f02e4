"""The contract every adapter entry point fulfils."""
import importlib
import importlib.util

__all__ = ["Adapter"]

# What an adapter plugs sparsecore into; a third party may use others.
KNOWN_KINDS = ("layer", "gate", "trainer", "distributed", "format", "other")


class Adapter:
    """Describe an adapter and load it on first use.

    Register a subclass under the ``sparsecore.adapters`` entry-point group::

        [project.entry-points."sparsecore.adapters"]
        mylayers = "mypkg._sparsecore_adapter:MyLayersAdapter"

    The module named by the entry point must import nothing heavy: it is
    imported whenever adapters are listed. The adapter's real code lives in
    :attr:`module`, imported only by :meth:`load`.

    Parameters
    ----------
    name : str, optional
        The registered name (the entry point's); default: the class name.

    Attributes
    ----------
    kind : str
        What the adapter provides: ``"layer"``, ``"gate"``, ``"trainer"``,
        ``"distributed"``, ``"format"`` or ``"other"``.
    description : str
        One line shown by ``python -m sparsecore info``.
    module : str
        Import path of the adapter's public module, e.g. ``"sparsecore.torch"``.
    requires : tuple of str
        Top-level modules that must be importable for the adapter to work.
    install : str
        What to run when they are missing, e.g. ``pip install "sparsecore[torch]"``.
    """

    kind = "other"
    description = ""
    module = ""
    requires = ()
    install = ""

    def __init__(self, name=None):
        self.name = name or type(self).__name__

    def missing(self):
        """Return the required modules that cannot be imported.

        Returns
        -------
        list of str
        """
        return [mod for mod in self.requires if importlib.util.find_spec(mod) is None]

    def available(self):
        """Return True when every required module is installed.

        Returns
        -------
        bool
        """
        return not self.missing()

    def require(self):
        """Raise ImportError naming what to install when a dependency is missing."""
        missing = self.missing()
        if missing:
            hint = f"; install it with: {self.install}" if self.install else ""
            raise ImportError(
                f"the {self.name!r} adapter of sparsecore needs "
                f"{', '.join(missing)}, which is not installed{hint}"
            )

    def load(self):
        """Import and return the adapter's module (after :meth:`require`).

        Returns
        -------
        module
        """
        self.require()
        if not self.module:
            raise ImportError(f"adapter {self.name!r} declares no module to load")
        return importlib.import_module(self.module)

    def __repr__(self):
        return (
            f"<{type(self).__name__} {self.name!r} kind={self.kind!r} "
            f"requires={list(self.requires)} available={self.available()}>"
        )
