"""Mixture-of-Experts gates as adapter entry points, and their registry.

A gate is registered like any adapter, under the ``sparsecore.adapters``
entry-point group, by a :class:`GateAdapter` subclass (kind ``"gate"``)::

    [project.entry-points."sparsecore.adapters"]
    "mypkg.mygate" = "mypkg._sparsecore:MyGateAdapter"

    # mypkg/_sparsecore.py (imports nothing heavy)
    from sparsecore.moe import GateAdapter

    class MyGateAdapter(GateAdapter):
        gate_name = "mygate"
        gate = "mypkg.gates:MyGate"          # a sparsecore.moe.Gate subclass
        description = "my gate"

sparsecore's own gates are registered by its pyproject.toml in exactly this
way. :func:`list_gates` reads only the light adapter classes; the gate's
module (and torch) is imported by :func:`create_gate` / :meth:`GateAdapter.load_gate`.
"""
import importlib
import warnings

from sparsecore.plugins import Adapter
from sparsecore.plugins._registry import registered_adapters

__all__ = [
    "COMETGateAdapter",
    "DSelectKGateAdapter",
    "ExpertChoiceGateAdapter",
    "GateAdapter",
    "HashGateAdapter",
    "TopKGateAdapter",
    "create_gate",
    "get_gate_adapter",
    "list_gates",
]


class GateAdapter(Adapter):
    """Describe one Mixture-of-Experts gate class.

    Parameters
    ----------
    name : str, optional
        The registered name (the entry point's); default: the class name.

    Attributes
    ----------
    gate_name : str
        Short name used by :func:`create_gate` (default: the entry-point name).
    gate : str
        ``"module:ClassName"`` of a :class:`sparsecore.moe.Gate` subclass.
    """

    kind = "gate"
    gate_name = ""
    gate = ""
    requires = ("torch",)
    install = 'pip install "sparsecore[moe]"'

    def __init__(self, name=None):
        super().__init__(name)
        if not self.module and self.gate:
            self.module = self.gate.partition(":")[0]

    @property
    def key(self):
        """The name the gate is listed under."""
        return self.gate_name or self.name

    def load_gate(self):
        """Import and return the gate class (after :meth:`require`).

        Returns
        -------
        type
            A :class:`sparsecore.moe.Gate` subclass.

        Raises
        ------
        ImportError
            If a dependency is missing (the message names the extra) or the
            class cannot be imported.
        TypeError
            If the object is not a :class:`sparsecore.moe.Gate` subclass.
        """
        self.require()
        module_name, _, attr = self.gate.partition(":")
        if not module_name or not attr:
            raise ImportError(
                f"gate adapter {self.name!r} must set gate = 'module:ClassName', "
                f"got {self.gate!r}"
            )
        cls = getattr(importlib.import_module(module_name), attr)
        from sparsecore.moe._base import Gate

        if not (isinstance(cls, type) and issubclass(cls, Gate)):
            raise TypeError(
                f"gate adapter {self.name!r} points to {self.gate}, which is "
                f"{cls!r}, not a sparsecore.moe.Gate subclass"
            )
        return cls

    def create(self, *args, **params):
        """Build a gate: ``load_gate()(*args, **params)``.

        Parameters
        ----------
        *args
            Positional arguments of the gate class.
        **params
            Keyword arguments of the gate class.

        Returns
        -------
        sparsecore.moe.Gate
        """
        return self.load_gate()(*args, **params)


def _gate_adapters():
    """``{gate name: GateAdapter}`` from the registry, first one kept on a clash."""
    gates = {}
    for name, (adapter, value, _) in sorted(registered_adapters().items()):
        if not isinstance(adapter, GateAdapter):
            continue
        key = adapter.key
        if key in gates:
            warnings.warn(
                f"MoE gate {key!r} is registered more than once (kept adapter "
                f"{gates[key].name!r}, ignored {name!r} = {value!r})",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        gates[key] = adapter
    return gates


def list_gates():
    """Return the registered MoE gates, installed or not.

    Returns
    -------
    dict of str to GateAdapter
        Keyed by gate name, sorted by adapter name; ``adapter.available()``
        says whether the gate's dependencies are installed.
    """
    return _gate_adapters()


def get_gate_adapter(name):
    """Return the :class:`GateAdapter` registered for gate ``name``.

    Parameters
    ----------
    name : str
        Registered gate name.

    Returns
    -------
    GateAdapter

    Raises
    ------
    ValueError
        If no gate has that name; the message lists the registered ones.
    """
    gates = _gate_adapters()
    if name not in gates:
        known = ", ".join(sorted(gates)) or "none"
        raise ValueError(f"no MoE gate named {name!r}; registered gates: {known}")
    return gates[name]


def create_gate(name, *args, **params):
    """Build the gate registered as ``name`` with the given arguments.

    ``name`` may also be a :class:`sparsecore.moe.Gate` subclass, which is
    called directly (handy for gates that are not registered).

    Parameters
    ----------
    name : str or type
        A registered gate name (see :func:`list_gates`), or a
        :class:`sparsecore.moe.Gate` subclass.
    *args, **params
        Passed to the gate's constructor.

    Returns
    -------
    sparsecore.moe.Gate

    Examples
    --------
    >>> from sparsecore.moe import create_gate  # doctest: +SKIP
    >>> gate = create_gate("comet", 8, n_experts=16, k=2)  # doctest: +SKIP
    """
    if isinstance(name, type):
        from sparsecore.moe._base import Gate

        if not issubclass(name, Gate):
            raise TypeError(f"name must be a gate name or a sparsecore.moe.Gate subclass, got {name!r}")
        return name(*args, **params)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or a Gate subclass, got {type(name).__name__}")
    return get_gate_adapter(name).create(*args, **params)


# sparsecore's own gates, registered by its pyproject.toml as a third party would

class TopKGateAdapter(GateAdapter):
    gate_name = "topk"
    gate = "sparsecore.moe._gates:TopKGate"
    description = "Top-k softmax gate, optionally noisy (Shazeer et al. 2017)"


class HashGateAdapter(GateAdapter):
    gate_name = "hash"
    gate = "sparsecore.moe._gates:HashGate"
    description = "fixed random hash routing of integer keys (Roller et al. 2021)"


class DSelectKGateAdapter(GateAdapter):
    gate_name = "dselect_k"
    gate = "sparsecore.moe._gates:DSelectKGate"
    description = "DSelect-k binary-encoding gate (Hazimeh et al. 2021)"


class COMETGateAdapter(GateAdapter):
    gate_name = "comet"
    gate = "sparsecore.moe._gates:COMETGate"
    description = "COMET k soft binary trees (Ibrahim et al. 2023)"


class ExpertChoiceGateAdapter(GateAdapter):
    gate_name = "expert_choice"
    gate = "sparsecore.moe._gates:ExpertChoiceGate"
    description = "expert-choice routing: each expert picks its top tokens (Zhou et al. 2022)"
