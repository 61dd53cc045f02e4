"""COMET's permutation-based local search, for any gate."""
import math
import numbers

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from sparsecore._validation import check_scalar
from sparsecore.moe._base import Gate

__all__ = ["PermutationLocalSearch", "sinkhorn"]


def sinkhorn(log_alpha, n_iters):
    """Sinkhorn normalisation in log space (Mena et al., ICLR 2018).

    Alternately normalises rows and columns of ``exp(log_alpha)``; the result
    tends to a doubly-stochastic matrix.

    Parameters
    ----------
    log_alpha : Tensor of shape (..., n, n)
    n_iters : int

    Returns
    -------
    Tensor of the same shape; columns sum to 1 exactly, rows approximately.
    """
    x = log_alpha
    for _ in range(n_iters):
        x = x - torch.logsumexp(x, dim=-1, keepdim=True)
        x = x - torch.logsumexp(x, dim=-2, keepdim=True)
    return torch.exp(x)


def _check_pair(name, value, positive):
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name} must be a pair (start, end) of numbers, got {value!r}")
    start, end = float(value[0]), float(value[1])
    if positive and not (start > 0 and end > 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return start, end


class PermutationLocalSearch(Gate):
    """Learn a permutation of the experts on top of any gate (COMET's local
    search, Ibrahim et al., KDD 2023).

    The gate's output (per tree for COMET, ``gate.n_parts`` pieces) is
    multiplied by permutation matrices ``Pi_j`` and renormalised::

        g'(x) = sum_j g_j(x) Pi_j / sum(...)

    For the first ``search_steps`` optimizer steps (call :meth:`step` after
    each), ``Pi_j = Sinkhorn((L_j + noise * Gumbel) / tau_t, iters_t)`` is a
    soft permutation learned with everything else, ``tau_t`` annealed
    log-linearly from ``tau[0]`` to ``tau[1]`` and ``iters_t`` linearly from
    ``sinkhorn_iters[0]`` to ``sinkhorn_iters[1]``; an entropy penalty
    (``entropy_reg``) on ``Pi`` and its row-normalised copy pushes it to a
    permutation. At step ``search_steps`` the last ``Pi_j`` is hardened by
    the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) and
    frozen. Eval mode always uses the hard permutation. This lets a gate
    escape a bad assignment of its slots to experts without retraining
    either ("Top-k+", "Hash-r+", "COMET+").

    Parameters
    ----------
    gate : Gate
        The gate to wrap.
    search_steps : int
        Optimizer steps of the relaxed search (the paper: 1 to 10 epochs).
    n_permutations : int or None, default=None
        ``gate.n_parts`` (one per COMET tree) or 1 (one shared); default
        ``gate.n_parts``.
    tau : (float, float), default=(1e-3, 1e-7)
        Sinkhorn temperature at the start and at the end of the search.
    sinkhorn_iters : (int, int), default=(20, 150)
    entropy_reg : float, default=1e-4
    noise : float, default=0.0
        Scale of the Gumbel noise added to the logits (0 in the paper's runs).
    """

    def __init__(self, gate, search_steps, *, n_permutations=None, tau=(1e-3, 1e-7),
                 sinkhorn_iters=(20, 150), entropy_reg=1e-4, noise=0.0):
        if not isinstance(gate, Gate):
            raise TypeError(f"gate must be a sparsecore.moe.Gate, got {type(gate).__name__}")
        super().__init__(gate.n_experts, gate.k)
        self.gate = gate
        self.search_steps = check_scalar(search_steps, "search_steps", int, min_val=0)
        if n_permutations is None:
            n_permutations = gate.n_parts
        n_permutations = check_scalar(n_permutations, "n_permutations", int, min_val=1)
        if n_permutations not in (1, gate.n_parts):
            raise ValueError(
                f"n_permutations must be 1 or gate.n_parts={gate.n_parts}, got {n_permutations}"
            )
        self.n_permutations = n_permutations
        self.tau = _check_pair("tau", tau, positive=True)
        iters = _check_pair("sinkhorn_iters", sinkhorn_iters, positive=True)
        self.sinkhorn_iters = (int(iters[0]), int(iters[1]))
        self.entropy_reg = check_scalar(entropy_reg, "entropy_reg", float, min_val=0)
        self.noise = check_scalar(noise, "noise", float, min_val=0)
        n = self.n_experts
        self.logits = nn.Parameter(torch.empty(n_permutations, n, n).uniform_(-0.05, 0.05))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("hardened", torch.tensor(self.search_steps == 0))
        # assignment[j, l] = expert that gate slot l is sent to
        self.register_buffer("assignment", torch.arange(n).repeat(n_permutations, 1))
        self._last_soft = None

    # schedules ---------------------------------------------------------
    def _progress(self):
        return min(int(self.steps_done), self.search_steps) / max(self.search_steps, 1)

    def temperature(self):
        """Current Sinkhorn temperature (log-linear schedule).

        Returns
        -------
        float
        """
        lo, hi = math.log10(self.tau[0]), math.log10(self.tau[1])
        return 10.0 ** (lo + (hi - lo) * self._progress())

    def iterations(self):
        """Current number of Sinkhorn iterations (linear schedule).

        Returns
        -------
        int
        """
        a, b = self.sinkhorn_iters
        return int(round(a + (b - a) * self._progress()))

    @property
    def searching(self):
        """True while the permutation is still soft (before hardening)."""
        return not bool(self.hardened)

    def soft_permutation(self):
        """The relaxed permutations at the current temperature, (n_permutations, n, n).

        Returns
        -------
        torch.Tensor of shape (n_permutations, n, n)
        """
        logits = self.logits
        if self.noise > 0 and self.training:
            u = torch.rand_like(logits).clamp(1e-20, 1 - 1e-7)
            logits = logits - self.noise * torch.log(-torch.log(u))
        return sinkhorn(logits / self.temperature(), self.iterations())

    def hard_assignment(self, soft=None):
        """Hungarian hardening: ``assignment[j, l]`` maximising sum soft[j, l, assignment].

        Parameters
        ----------
        soft : torch.Tensor of shape (n_permutations, n, n), optional
            Relaxed permutations; default: the last ones computed, else the logits.

        Returns
        -------
        torch.Tensor of shape (n_permutations, n), int64
            One permutation per row.
        """
        if soft is None:
            soft = self._last_soft if self._last_soft is not None else self.logits.detach()
        out = []
        for matrix in soft.detach().cpu().double().numpy():
            rows, cols = linear_sum_assignment(-matrix)
            perm = np.empty(len(rows), dtype=np.int64)
            perm[rows] = cols
            out.append(perm)
        return torch.from_numpy(np.stack(out)).to(self.assignment.device)

    def harden(self):
        """End the search now: freeze the Hungarian permutation of the last soft one."""
        if self.searching:
            self.assignment.copy_(self.hard_assignment())
            self.hardened.fill_(True)

    def step(self):
        """Count one optimizer step; harden when the search budget is spent."""
        self.gate.step()
        self.steps_done += 1
        if self.searching and int(self.steps_done) >= self.search_steps:
            self.harden()

    # routing -----------------------------------------------------------
    def expert_parts(self, x):
        parts, aux, saturated = self.gate.expert_parts(x)
        aux = dict(aux)
        if self.n_permutations == 1 and parts.shape[1] > 1:
            parts = parts.sum(1, keepdim=True)
        if self.searching and self.training:
            soft = self.soft_permutation()
            self._last_soft = soft.detach()
            weights = torch.einsum("bjl,jli->bi", parts, soft)
            weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-30)
            if self.entropy_reg > 0:
                rows = soft / soft.sum(-1, keepdim=True)
                ent = (-(soft * torch.log(soft + 1e-6)).sum()
                       - (rows * torch.log(rows + 1e-6)).sum())
                aux["permutation_entropy"] = self.entropy_reg * ent
            return weights[:, None], aux, False
        assignment = self.assignment if not self.searching else self.hard_assignment(self.logits)
        # g'[:, assignment[j, l]] += parts[:, j, l]
        inverse = torch.argsort(assignment, dim=1)
        weights = parts.gather(2, inverse.expand(parts.shape[0], -1, -1)).sum(1)
        return weights[:, None], aux, saturated

    def extra_repr(self):
        return (f"search_steps={self.search_steps}, n_permutations={self.n_permutations}, "
                f"tau={self.tau}, sinkhorn_iters={self.sinkhorn_iters}")
