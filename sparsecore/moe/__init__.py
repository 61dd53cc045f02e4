"""Mixture-of-Experts gates, COMET's permutation local search and sparse
dispatch (needs PyTorch: ``pip install "sparsecore[moe]"``).

Gates (every one returns a :class:`GateOutput`: weights on the simplex with at
most ``k`` non-zeros per sample once converged, and a dict of auxiliary
losses): :class:`TopKGate`, :class:`HashGate`, :class:`DSelectKGate`,
:class:`COMETGate`, and :class:`ExpertChoiceGate` (each expert picks its
tokens). :class:`PermutationLocalSearch` wraps any of them;
:class:`MixtureOfExperts` runs each expert only on the samples routed to it,
with the Switch load-balancing loss and an expert capacity factor
(:func:`expert_capacity`, :func:`apply_capacity`) as options.
Gates are registered as ``sparsecore.adapters`` entry points of kind
``"gate"`` (:func:`list_gates`, :func:`create_gate`), so third-party gates
plug in the same way.

The registry (:class:`GateAdapter`, :func:`list_gates`,
:func:`get_gate_adapter`, :func:`create_gate`) imports no torch; the gates,
the layer and the local search import torch on first use, and say which
extra to install when it is missing.
"""
import importlib

from sparsecore.moe._registry import (  # noqa: F401 (listed in __all__ below)
    GateAdapter,
    create_gate,
    get_gate_adapter,
    list_gates,
)

# public name -> the module that defines it (imported with torch on first use)
_NEEDS_TORCH = {
    "Gate": "sparsecore.moe._base",
    "GateOutput": "sparsecore.moe._base",
    "smooth_step": "sparsecore.moe._base",
    "COMETGate": "sparsecore.moe._gates",
    "DSelectKGate": "sparsecore.moe._gates",
    "ExpertChoiceGate": "sparsecore.moe._gates",
    "HashGate": "sparsecore.moe._gates",
    "TopKGate": "sparsecore.moe._gates",
    "MixtureOfExperts": "sparsecore.moe._layer",
    "RoutingPlan": "sparsecore.moe._layer",
    "RoutingStats": "sparsecore.moe._layer",
    "apply_capacity": "sparsecore.moe._layer",
    "expert_capacity": "sparsecore.moe._layer",
    "load_balancing_loss": "sparsecore.moe._layer",
    "routing_matrix": "sparsecore.moe._layer",
    "to_dispatch": "sparsecore.moe._layer",
    "PermutationLocalSearch": "sparsecore.moe._local_search",
    "sinkhorn": "sparsecore.moe._local_search",
    "routing_f1": "sparsecore.moe._metrics",
}

__all__ = sorted(["GateAdapter", "create_gate", "get_gate_adapter", "list_gates", *_NEEDS_TORCH])


def __getattr__(name):
    if name not in _NEEDS_TORCH:
        raise AttributeError(f"module 'sparsecore.moe' has no attribute {name!r}")
    from sparsecore.plugins._builtin import MoEAdapter

    MoEAdapter("moe").require()
    value = getattr(importlib.import_module(_NEEDS_TORCH[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
