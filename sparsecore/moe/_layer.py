"""Mixture-of-Experts layer with sparse dispatch, dispatch tensors and the
load-balancing loss."""
import math
import numbers
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsecore._validation import check_scalar
from sparsecore.moe._base import Gate

__all__ = [
    "MixtureOfExperts",
    "RoutingPlan",
    "RoutingStats",
    "apply_capacity",
    "expert_capacity",
    "load_balancing_loss",
    "routing_matrix",
    "to_dispatch",
]


def _check_weights(weights, name="weights"):
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weights).__name__}")
    if not weights.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {weights.dtype}")
    if weights.ndim != 2:
        raise ValueError(f"{name} must have shape (samples, experts), got {tuple(weights.shape)}")


class RoutingPlan:
    """The routing of a batch as a sparse samples x experts matrix.

    Held in both orientations: CSR (per sample, the experts it goes to) and
    CSC (per expert, the samples it receives: the dispatch lists). Index
    arrays are int64 tensors; values stay in the autograd graph.

    Parameters
    ----------
    weights : Tensor of shape (n_samples, n_experts)
        Gate weights; a sample goes to the experts where its weight is non-zero.

    Attributes
    ----------
    shape : (n_samples, n_experts)
    csc_indptr : Tensor of shape (n_experts + 1,)
    csc_samples : Tensor of shape (nnz,)
        Samples of expert ``e`` are ``csc_samples[csc_indptr[e]:csc_indptr[e+1]]``,
        increasing.
    csc_values : Tensor of shape (nnz,)
        The weights, in the same order.
    counts : list of int
        Samples per expert.
    """

    def __init__(self, weights):
        _check_weights(weights)
        self.shape = tuple(weights.shape)
        # non-zeros of the transpose in row-major order = CSC of the routing
        experts, samples = torch.nonzero(weights.detach().T != 0, as_tuple=True)
        counts = torch.bincount(experts, minlength=self.shape[1])
        self.csc_indptr = torch.zeros(self.shape[1] + 1, dtype=torch.long, device=weights.device)
        torch.cumsum(counts, 0, out=self.csc_indptr[1:])
        self.csc_experts = experts
        self.csc_samples = samples
        self.csc_values = weights[samples, experts]
        self.counts = counts.tolist()

    @property
    def nnz(self):
        """Number of (sample, expert) pairs routed."""
        return int(self.csc_samples.shape[0])

    def samples_of(self):
        """Per-expert sample index tensors (a list of ``n_experts`` tensors).

        Returns
        -------
        list of torch.Tensor
        """
        return list(torch.split(self.csc_samples, self.counts))

    def to_scipy(self):
        """The routing as a canonical ``scipy.sparse.csr_array`` (samples x experts).

        Returns
        -------
        scipy.sparse.csr_array of shape (n_samples, n_experts)
        """
        n_samples, n_experts = self.shape
        rows = self.csc_samples.cpu().numpy()
        cols = self.csc_experts.cpu().numpy()
        vals = self.csc_values.detach().cpu().numpy()
        order = np.lexsort((cols, rows))  # row-major: CSR with sorted columns
        rows, cols, vals = rows[order], cols[order], vals[order]
        itype = np.int32 if max(n_samples, n_experts, len(rows)) < 2**31 else np.int64
        indptr = np.zeros(n_samples + 1, dtype=itype)
        np.cumsum(np.bincount(rows, minlength=n_samples), out=indptr[1:])
        return sp.csr_array((vals, cols.astype(itype), indptr), shape=self.shape)


def routing_matrix(weights):
    """The non-zero gate weights as a canonical ``scipy.sparse.csr_array``.

    Parameters
    ----------
    weights : Tensor of shape (n_samples, n_experts)

    Returns
    -------
    scipy.sparse.csr_array of shape (n_samples, n_experts)
        Sorted column indices, no explicit zeros: drops into
        :func:`sparsecore.spgemm` (e.g. ``spgemm(R.T, R)`` counts how often
        two experts are chosen together).
    """
    return RoutingPlan(weights).to_scipy()


def load_balancing_loss(weights, probs=None):
    """Switch-Transformer load-balancing loss ``n * sum_e f_e P_e``.

    After Fedus, Zoph & Shazeer, "Switch Transformers" (JMLR 2022), eq. (4),
    generalised to ``k`` experts per sample: ``f_e`` is the fraction of all
    (sample, expert) routing slots that go to expert ``e`` (for ``k = 1`` the
    share of tokens dispatched to ``e``) and ``P_e`` the mean of
    ``probs[:, e]``. It equals 1 for perfectly uniform routing and grows as
    routing concentrates, up to ``n``; gradients flow through ``P`` only
    (``f`` is a count). Multiply by the coefficient ``alpha`` (the paper uses
    ``1e-2``).

    Parameters
    ----------
    weights : Tensor of shape (n_samples, n_experts)
        The routing (only its non-zero pattern is used for ``f``).
    probs : Tensor of the same shape or None
        Routing probabilities to differentiate (default: ``weights``).

    Returns
    -------
    Tensor (scalar)
    """
    _check_weights(weights)
    if probs is None:
        probs = weights
    else:
        _check_weights(probs, "probs")
        if probs.shape != weights.shape:
            raise ValueError(f"probs has shape {tuple(probs.shape)}, weights {tuple(weights.shape)}")
    mask = (weights.detach() != 0).to(probs.dtype)
    total = mask.sum()
    if total == 0:
        return probs.sum() * 0.0
    fraction = mask.sum(0) / total
    return weights.shape[1] * (fraction * probs.mean(0)).sum()


def expert_capacity(n_samples, n_experts, k, capacity_factor):
    """Slots per expert: ``max(1, ceil(capacity_factor * k * n_samples / n_experts))``.

    The expert capacity of Switch Transformers (Fedus et al., JMLR 2022,
    eq. (3): tokens per batch / experts x capacity factor) and GShard
    (Lepikhin et al., ICLR 2021), where ``k`` experts per token multiply the
    routed slots. A capacity factor of 1 fits a perfectly balanced routing
    exactly; above 1 leaves room for imbalance.

    Parameters
    ----------
    n_samples : int
        Tokens in the batch, >= 0.
    n_experts : int
        Experts, >= 1.
    k : int
        Experts per token, >= 1.
    capacity_factor : float
        > 0.

    Returns
    -------
    int
    """
    n_samples = check_scalar(n_samples, "n_samples", int, min_val=0)
    n_experts = check_scalar(n_experts, "n_experts", int, min_val=1)
    k = check_scalar(k, "k", int, min_val=1)
    capacity_factor = check_scalar(capacity_factor, "capacity_factor", float, min_val=0,
                                   include_boundaries="right")
    return max(1, math.ceil(capacity_factor * k * n_samples / n_experts))


_DROP_ORDERS = ("sample", "weight")


def _check_drop_order(drop_order):
    if drop_order not in _DROP_ORDERS:
        raise ValueError(f"drop_order must be one of {_DROP_ORDERS}, got {drop_order!r}")
    return drop_order


def apply_capacity(weights, capacity, drop_order="sample"):
    """Keep at most ``capacity`` samples per expert; zero the weights of the rest.

    Which (sample, expert) pairs an expert keeps is deterministic:

    * ``"sample"``: the first ``capacity`` samples routed to it, in batch
      order (Switch Transformers and GShard; the same slots as
      :func:`to_dispatch`);
    * ``"weight"``: the ``capacity`` samples with the largest gate weight
      for it, ties to the earlier sample ("batch prioritized routing",
      Riquelme et al., "Scaling Vision with Sparse Mixture of Experts",
      NeurIPS 2021).

    A dropped pair's weight is not redistributed: the sample's output loses
    that expert's term (a residual connection around the layer carries a
    sample that lost all of them, as in Switch Transformers).

    Parameters
    ----------
    weights : Tensor of shape (n_samples, n_experts)
        Gate weights; a sample is routed to an expert where its weight is
        non-zero. Not modified.
    capacity : int
        Slots per expert, >= 1 (see :func:`expert_capacity`).
    drop_order : {"sample", "weight"}, default="sample"

    Returns
    -------
    kept_weights : Tensor of shape (n_samples, n_experts)
        ``weights`` with the dropped pairs set to 0 (differentiable).
    dropped : bool Tensor of shape (n_samples, n_experts)
        The pairs that were routed but dropped.
    """
    _check_weights(weights)
    if isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral):
        raise TypeError(f"capacity must be an int, got {type(capacity).__name__} {capacity!r}")
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    _check_drop_order(drop_order)
    w = weights.detach()
    routed = w != 0
    if drop_order == "sample":
        rank = torch.cumsum(routed, dim=0, dtype=torch.long) - 1
    else:
        key = torch.where(routed, w.abs(), torch.full_like(w, -1.0))
        order = torch.sort(key, dim=0, descending=True, stable=True).indices
        rank = torch.empty_like(order)
        positions = torch.arange(w.shape[0], device=w.device)[:, None].expand_as(order)
        rank.scatter_(0, order, positions)
    kept = routed & (rank < capacity)
    return weights * kept.to(weights.dtype), routed & ~kept


class RoutingStats(NamedTuple):
    """What the capacity limit did to one batch (``MixtureOfExperts.last_stats``).

    Attributes
    ----------
    capacity : int or None
        Slots per expert; None without a capacity limit.
    routed : int
        (sample, expert) pairs the gate routed.
    dropped : int
        Pairs over capacity, not computed.
    dropped_samples : int
        Samples that had at least one expert and lost all of them.
    expert_counts : list of int
        Samples each expert computed, after the limit.
    """

    capacity: object
    routed: int
    dropped: int
    dropped_samples: int
    expert_counts: list


def to_dispatch(weights, capacity):
    """DeepSpeed / tutel-shaped dispatch tensors from gate weights.

    Each expert takes at most ``capacity`` samples, in sample order (the
    ``p``-th sample routed to expert ``e`` goes to its slot ``p``); samples
    beyond the capacity are dropped for that expert (their weight is not
    redistributed).

    Parameters
    ----------
    weights : Tensor of shape (n_samples, n_experts)
    capacity : int
        Slots per expert, >= 1.

    Returns
    -------
    combine_weights : Tensor of shape (n_samples, n_experts, capacity)
        The gate weight at each used slot, 0 elsewhere (differentiable).
    dispatch_mask : bool Tensor of shape (n_samples, n_experts, capacity)
    """
    _check_weights(weights)
    if isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral):
        raise TypeError(f"capacity must be an int, got {type(capacity).__name__} {capacity!r}")
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    routed = weights.detach() != 0
    slot = torch.cumsum(routed.long(), dim=0) - 1  # position in the expert's queue
    kept = routed & (slot < capacity)
    one_hot = torch.nn.functional.one_hot(slot.clamp(0, capacity - 1), capacity).bool()
    dispatch_mask = one_hot & kept[:, :, None]
    combine = weights[:, :, None] * dispatch_mask.to(weights.dtype)
    return combine, dispatch_mask


class MixtureOfExperts(nn.Module):
    """A Mixture-of-Experts layer ``y = sum_e g_e(x) f_e(x)``.

    Parameters
    ----------
    experts : sequence of torch.nn.Module
        ``gate.n_experts`` modules mapping a (m, ...) batch to a (m, ...)
        output; every expert must give the same output shape.
    gate : Gate
    combine : {"sparse", "dense"}, default="sparse"
        ``"sparse"``: each expert runs only on the samples routed to it (the
        CSC lists of :class:`RoutingPlan`) and its outputs are scattered back
        with their weights. ``"dense"``: every expert runs on the whole batch
        (the reference; also what a still-soft gate costs).
    load_balance : float, default=0.0
        Coefficient ``alpha`` of the Switch load-balancing loss
        (:func:`load_balancing_loss`; Fedus et al., JMLR 2022), reported as
        ``aux["moe_load_balance"]`` when > 0. ``f`` counts the gate's routing
        before any capacity drop; ``P`` is the gate's router probabilities
        (``GateOutput.probs``) where it has them, else its weights.
    capacity_factor : float or None, default=None
        Limit each expert to :func:`expert_capacity` ``(batch, n_experts,
        gate.k, capacity_factor)`` samples per batch (Switch Transformers,
        GShard); pairs over capacity are dropped in ``drop_order``
        (:func:`apply_capacity`), in both combine modes. None: no limit.
    drop_order : {"sample", "weight"}, default="sample"
        Which pairs an expert keeps when over capacity: the first in batch
        order, or those with the largest gate weight.

    Notes
    -----
    ``forward(x, routing_x=None)`` returns ``(y, aux_losses)``; the gate sees
    ``routing_x`` when given (e.g. user ids for a :class:`HashGate`), else
    ``x``. The last gate output is kept in ``last_gate_output`` and the
    capacity accounting of the last batch (pairs routed, dropped, samples
    that lost every expert, per-expert counts) in ``last_stats``
    (:class:`RoutingStats`). A dropped sample's output is 0 for the
    dropped experts' terms; add a residual connection around the layer to
    pass such samples through, as Switch Transformers do.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.moe import MixtureOfExperts, TopKGate
    >>> _ = torch.manual_seed(0)
    >>> experts = [torch.nn.Linear(8, 8) for _ in range(4)]
    >>> moe = MixtureOfExperts(experts, TopKGate(8, 4, k=2))
    >>> y, aux = moe(torch.randn(10, 8))
    >>> y.shape
    torch.Size([10, 8])
    """

    _COMBINES = ("sparse", "dense")

    def __init__(self, experts, gate, *, combine="sparse", load_balance=0.0,
                 capacity_factor=None, drop_order="sample"):
        super().__init__()
        if not isinstance(gate, Gate):
            raise TypeError(f"gate must be a sparsecore.moe.Gate, got {type(gate).__name__}")
        if isinstance(experts, nn.Module) and not isinstance(experts, nn.ModuleList):
            raise TypeError("experts must be a sequence of modules (e.g. a list or nn.ModuleList)")
        experts = list(experts)
        for i, e in enumerate(experts):
            if not isinstance(e, nn.Module):
                raise TypeError(f"experts[{i}] must be a torch.nn.Module, got {type(e).__name__}")
        if len(experts) != gate.n_experts:
            raise ValueError(
                f"the gate routes to n_experts={gate.n_experts} experts but "
                f"{len(experts)} were given"
            )
        if combine not in self._COMBINES:
            raise ValueError(f"combine must be one of {self._COMBINES}, got {combine!r}")
        self.experts = nn.ModuleList(experts)
        self.gate = gate
        self.combine = combine
        self.load_balance = check_scalar(load_balance, "load_balance", float, min_val=0)
        if capacity_factor is not None:
            capacity_factor = check_scalar(capacity_factor, "capacity_factor", float, min_val=0,
                                           include_boundaries="right")
        self.capacity_factor = capacity_factor
        self.drop_order = _check_drop_order(drop_order)
        self.last_gate_output = None
        self.last_stats = None

    def forward(self, x, routing_x=None):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError("x must have a batch axis")
        out = self.gate(x if routing_x is None else routing_x)
        self.last_gate_output = out
        weights = out.weights
        if weights.shape != (x.shape[0], len(self.experts)):
            raise ValueError(
                f"the gate returned weights of shape {tuple(weights.shape)}; expected "
                f"({x.shape[0]}, {len(self.experts)}) for a batch of {x.shape[0]} samples"
            )
        routed_weights = weights
        if self.capacity_factor is not None:
            capacity = expert_capacity(x.shape[0], len(self.experts), self.gate.k,
                                       self.capacity_factor)
            weights, dropped = apply_capacity(weights, capacity, self.drop_order)
        if self.combine == "dense":
            y = self._dense(x, weights)
        else:
            y = self._sparse(x, weights)
        if self.capacity_factor is not None:
            had = (routed_weights.detach() != 0).any(1)
            has = (weights.detach() != 0).any(1)
            self.last_stats = RoutingStats(
                capacity, int((routed_weights.detach() != 0).sum()), int(dropped.sum()),
                int((had & ~has).sum()), (weights.detach() != 0).sum(0).tolist())
        else:
            counts = (weights.detach() != 0).sum(0)
            self.last_stats = RoutingStats(None, int(counts.sum()), 0, 0, counts.tolist())
        aux = dict(out.aux_losses)
        if self.load_balance > 0:
            aux["moe_load_balance"] = self.load_balance * load_balancing_loss(
                routed_weights, probs=out.probs)
        return y, aux

    def _check_output(self, e, y, rows, expected):
        if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != rows:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(
                f"experts[{e}] returned {shape} for a batch of {rows} samples; "
                f"experts must return a tensor with the batch as first axis"
            )
        if expected is not None and tuple(y.shape[1:]) != expected[0]:
            raise ValueError(
                f"experts must all return the same output shape: experts[{expected[1]}] "
                f"gives (batch, {', '.join(map(str, expected[0]))}) but experts[{e}] gives "
                f"(batch, {', '.join(map(str, y.shape[1:]))})"
            )
        return expected or (tuple(y.shape[1:]), e)

    def _dense(self, x, weights):
        outs, expected = [], None
        for e, expert in enumerate(self.experts):
            y = expert(x)
            expected = self._check_output(e, y, x.shape[0], expected)
            outs.append(y)
        Y = torch.stack(outs, 1)  # (b, n, ...)
        w = weights.reshape(weights.shape + (1,) * (Y.ndim - 2)).to(Y.dtype)
        return (w * Y).sum(1)

    def _sparse(self, x, weights):
        plan = RoutingPlan(weights)
        pieces, rows, expected = [], [], None
        starts = plan.csc_indptr.tolist()
        for e, idx in enumerate(plan.samples_of()):
            if idx.numel() == 0:
                continue
            y = self.experts[e](x.index_select(0, idx))
            expected = self._check_output(e, y, idx.numel(), expected)
            w = plan.csc_values[starts[e]:starts[e + 1]]
            pieces.append(y * w.reshape((-1,) + (1,) * (y.ndim - 1)).to(y.dtype))
            rows.append(idx)
        if not pieces:  # nothing routed (an empty batch): shape from expert 0
            y0 = self.experts[0](x[:0])
            expected = self._check_output(0, y0, 0, None)
            return torch.zeros((x.shape[0],) + expected[0], dtype=y0.dtype, device=x.device)
        out_shape = (x.shape[0],) + expected[0]
        src = torch.cat(pieces)
        return torch.zeros(out_shape, dtype=src.dtype, device=src.device).index_add(0, torch.cat(rows), src)

    def extra_repr(self):
        text = f"combine={self.combine!r}"
        if self.capacity_factor is not None:
            text += f", capacity_factor={self.capacity_factor}, drop_order={self.drop_order!r}"
        return text
