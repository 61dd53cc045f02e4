"""The gate contract shared by every Mixture-of-Experts gate, and the smooth-step."""
import numbers
from typing import NamedTuple

import torch
from torch import nn

from sparsecore._validation import check_scalar

__all__ = ["Gate", "GateOutput", "smooth_step"]


class GateOutput(NamedTuple):
    """What every gate returns.

    Attributes
    ----------
    weights : Tensor of shape (batch, n_experts)
        Per-sample expert weights on the probability simplex (non-negative,
        rows summing to 1); at most ``k`` non-zeros per row once the gate has
        converged (:meth:`Gate.is_converged`).
    aux_losses : dict of str to scalar Tensor
        Auxiliary losses, already multiplied by their coefficients: add
        ``sum(aux_losses.values())`` to the training loss.
    nnz : Tensor of shape (batch,), int64
        Non-zero weights per sample.
    probs : Tensor of shape (batch, n_experts) or None
        The router's dense probabilities before any expert is dropped (the
        softmax of the logits for :class:`~sparsecore.moe.TopKGate` and
        :class:`~sparsecore.moe.ExpertChoiceGate`), for the Switch
        load-balancing loss; None for gates that have none.
    """

    weights: torch.Tensor
    aux_losses: dict
    nnz: torch.Tensor
    probs: torch.Tensor = None


def smooth_step(t, gamma):
    """Cubic smooth-step of width ``gamma`` (Hazimeh et al., NeurIPS 2020/2021).

    ``S(t) = 0`` for ``t <= -gamma/2``, ``1`` for ``t >= gamma/2`` and
    ``-2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2`` in between: continuously
    differentiable, and exactly 0 or 1 (with zero gradient) outside the
    middle band, which is what makes DSelect-k and COMET exactly sparse.

    Parameters
    ----------
    t : Tensor
    gamma : float
        Width of the band, > 0.

    Returns
    -------
    Tensor of the shape and dtype of ``t``.
    """
    gamma = _check_gamma(gamma)
    half = gamma / 2.0
    poly = (-2.0 / gamma**3) * t**3 + (1.5 / gamma) * t + 0.5
    inside = (t > -half) & (t < half)
    # the polynomial is evaluated everywhere but only kept inside the band, so
    # gradients outside it are exactly zero
    return torch.where(inside, poly, (t >= half).to(t.dtype))


def _check_gamma(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma must be a positive float, got {type(gamma).__name__} {gamma!r}")
    gamma = float(gamma)
    if not gamma > 0 or gamma == float("inf"):
        raise ValueError(f"gamma must be a finite float > 0, got {gamma!r}")
    return gamma


def _check_n_k(n_experts, k):
    n_experts = check_scalar(n_experts, "n_experts", int, min_val=1)
    k = check_scalar(k, "k", int, min_val=1)
    if k > n_experts:
        raise ValueError(
            f"k must be <= n_experts: a gate cannot select k={k} of {n_experts} experts"
        )
    return n_experts, k


def _check_features(name, x, in_features):
    """Validate a (batch, in_features) floating tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__module__}.{type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != in_features:
        raise ValueError(
            f"{name} must have shape (batch, {in_features}), got {tuple(x.shape)}"
        )


class Gate(nn.Module):
    """Base class of the Mixture-of-Experts gates.

    A subclass sets ``n_experts``, ``k`` and ``n_parts`` and implements
    :meth:`expert_parts`; :meth:`forward` sums the parts into the weights.
    ``n_parts`` is the number of independently permutable pieces of the gate
    (COMET's ``k`` trees; 1 for the other gates), used by
    :class:`~sparsecore.moe.PermutationLocalSearch`.

    Third-party gates subclass this and register a
    :class:`sparsecore.moe.GateAdapter` entry point.

    Parameters
    ----------
    n_experts : int
        Number of experts.
    k : int
        Experts per sample, ``1 <= k <= n_experts``.
    """

    n_parts = 1

    def __init__(self, n_experts, k):
        super().__init__()
        self.n_experts, self.k = _check_n_k(n_experts, k)
        self._last_nnz = None
        self._last_saturated = None

    def expert_parts(self, x):
        """Return ``(parts, aux_losses, saturated)``.

        ``parts`` has shape (batch, n_parts, n_experts), is non-negative and
        sums to 1 over its last two axes; ``saturated`` is True when every
        sample has at most ``k`` non-zero weights by construction.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Input batch.
        """
        raise NotImplementedError

    def forward(self, x):
        """Route a batch.

        Parameters
        ----------
        x : Tensor
            The routing input (see the gate's documentation for its shape).

        Returns
        -------
        GateOutput
        """
        parts, aux, saturated = self.expert_parts(x)
        weights = parts[:, 0] if parts.shape[1] == 1 else parts.sum(1)
        return self._finish(weights, aux, saturated)

    def _finish(self, weights, aux, saturated, probs=None):
        nnz = (weights != 0).sum(1)
        self._last_nnz = nnz.detach()
        self._last_saturated = bool(saturated)
        return GateOutput(weights, aux, nnz, probs)

    def is_converged(self, x=None):
        """True when every sample of the batch has at most ``k`` experts by
        construction (all smooth-steps saturated at exactly 0 or 1).

        Parameters
        ----------
        x : Tensor or None
            Evaluate on this batch (without gradients); default: the last
            batch the gate routed.

        Returns
        -------
        bool
        """
        if x is not None:
            with torch.no_grad():
                self(x)
        if self._last_saturated is None:
            raise RuntimeError("the gate has not routed a batch yet; pass x")
        return self._last_saturated

    def nnz_per_sample(self, x=None):
        """Non-zero expert weights per sample, as an int64 tensor.

        Parameters
        ----------
        x : Tensor or None
            Evaluate on this batch (without gradients); default: the last
            batch the gate routed.

        Returns
        -------
        torch.Tensor of shape (batch,), int64
        """
        if x is not None:
            with torch.no_grad():
                self(x)
        if self._last_nnz is None:
            raise RuntimeError("the gate has not routed a batch yet; pass x")
        return self._last_nnz

    def step(self):
        """Advance the gate's schedules by one optimizer step (no-op here)."""

    def extra_repr(self):
        return f"n_experts={self.n_experts}, k={self.k}"
