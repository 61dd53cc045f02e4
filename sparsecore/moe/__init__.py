"""Mixture-of-Experts gates, COMET's permutation local search and sparse
dispatch (needs PyTorch: ``pip install "sparsecore[moe]"``).

Gates (every one returns a :class:`GateOutput`: weights on the simplex with at
most ``k`` non-zeros per sample once converged, and a dict of auxiliary
losses): :class:`TopKGate`, :class:`HashGate`, :class:`DSelectKGate`,
:class:`COMETGate`. :class:`PermutationLocalSearch` wraps any of them;
:class:`MixtureOfExperts` runs each expert only on the samples routed to it.
Gates are registered as ``sparsecore.adapters`` entry points of kind
``"gate"`` (:func:`list_gates`, :func:`create_gate`), so third-party gates
plug in the same way.
"""
from sparsecore.plugins._builtin import MoEAdapter

MoEAdapter("moe").require()

from sparsecore.moe._base import Gate, GateOutput, smooth_step  # noqa: E402
from sparsecore.moe._gates import COMETGate, DSelectKGate, HashGate, TopKGate  # noqa: E402
from sparsecore.moe._layer import (  # noqa: E402
    MixtureOfExperts,
    RoutingPlan,
    load_balancing_loss,
    routing_matrix,
    to_dispatch,
)
from sparsecore.moe._local_search import PermutationLocalSearch, sinkhorn  # noqa: E402
from sparsecore.plugins._gates import create_gate, get_gate_adapter, list_gates  # noqa: E402

__all__ = [
    "COMETGate",
    "DSelectKGate",
    "Gate",
    "GateOutput",
    "HashGate",
    "MixtureOfExperts",
    "PermutationLocalSearch",
    "RoutingPlan",
    "TopKGate",
    "create_gate",
    "get_gate_adapter",
    "list_gates",
    "load_balancing_loss",
    "routing_matrix",
    "sinkhorn",
    "smooth_step",
    "to_dispatch",
]
