"""Top-k, Hash, DSelect-k and COMET gates."""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sparsecore._validation import check_scalar
from sparsecore.moe._base import (
    Gate,
    _check_features,
    _check_gamma,
    smooth_step,
)

__all__ = ["COMETGate", "DSelectKGate", "ExpertChoiceGate", "HashGate", "TopKGate"]

_LOG_EPS = 1e-6  # inside the entropy's log, as in both official codes


def _entropy_terms(p):
    return -p * torch.log(p + _LOG_EPS)


class TopKGate(Gate):
    """Softmax over the ``k`` largest of linear logits (Shazeer et al., ICLR 2017).

    Parameters
    ----------
    in_features : int
        Width of the routing input.
    n_experts : int
    k : int, default=2
        Experts per sample, any value in ``1..n_experts``.
    noise : {"none", "shazeer", "jitter"}, default="none"
        Training-time exploration noise: ``"shazeer"`` adds
        ``N(0, 1) * softplus(W_noise x)`` to the logits (the noisy top-k gate;
        ``W_noise`` starts at zero), ``"jitter"`` multiplies the input by
        ``U(1 - 1e-2, 1 + 1e-2)`` (the Switch / DeepSpeed jitter). No noise in
        eval mode.
    load_balance : float, default=0.0
        Coefficient of the auxiliary load-balancing loss ``n * sum_e f_e P_e``
        (Fedus et al. 2022): ``f_e`` the fraction of routed slots going to
        expert ``e``, ``P_e`` its mean softmax probability. Reported as
        ``aux_losses["load_balance"]`` when > 0.

    Notes
    -----
    The weights are exactly ``k``-sparse at every step, so the gate is always
    converged.
    """

    _NOISES = ("none", "shazeer", "jitter")

    def __init__(self, in_features, n_experts, k=2, *, noise="none", load_balance=0.0):
        super().__init__(n_experts, k)
        self.in_features = check_scalar(in_features, "in_features", int, min_val=1)
        if noise not in self._NOISES:
            raise ValueError(f"noise must be one of {self._NOISES}, got {noise!r}")
        self.noise = noise
        self.load_balance = check_scalar(load_balance, "load_balance", float, min_val=0)
        self.linear = nn.Linear(self.in_features, self.n_experts)
        self.noise_linear = None
        if noise == "shazeer":
            self.noise_linear = nn.Linear(self.in_features, self.n_experts)
            nn.init.zeros_(self.noise_linear.weight)
            nn.init.zeros_(self.noise_linear.bias)

    def logits(self, x):
        """The (noisy, in training) logits of shape (batch, n_experts).

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Input batch.

        Returns
        -------
        torch.Tensor of shape (batch, n_experts)
        """
        _check_features("x", x, self.in_features)
        if self.training and self.noise == "jitter":
            x = x * torch.empty_like(x).uniform_(1 - 1e-2, 1 + 1e-2)
        logits = self.linear(x)
        if self.training and self.noise == "shazeer":
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise_linear(x))
        return logits

    def _route(self, x):
        logits = self.logits(x)
        top = torch.topk(logits, self.k, dim=1).indices
        kept = torch.full_like(logits, -torch.inf).scatter(1, top, logits.gather(1, top))
        weights = torch.softmax(kept, dim=1)
        probs = torch.softmax(logits, dim=1)
        aux = {}
        if self.load_balance > 0:
            from sparsecore.moe._layer import load_balancing_loss

            aux["load_balance"] = self.load_balance * load_balancing_loss(weights, probs=probs)
        return weights, aux, probs

    def expert_parts(self, x):
        weights, aux, _ = self._route(x)
        return weights[:, None], aux, True

    def forward(self, x):
        """Route a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Routing input.

        Returns
        -------
        GateOutput
            With ``probs``, the softmax over all ``n_experts`` logits (the
            Switch router probabilities).
        """
        weights, aux, probs = self._route(x)
        return self._finish(weights, aux, True, probs)

    def extra_repr(self):
        return f"in_features={self.in_features}, n_experts={self.n_experts}, k={self.k}, noise={self.noise!r}"


class ExpertChoiceGate(Gate):
    """Expert-choice routing: each expert picks its top tokens (Zhou et al.,
    "Mixture-of-Experts with Expert Choice Routing", NeurIPS 2022).

    With router probabilities ``S = softmax(x W_g)`` (batch x n_experts, a
    softmax over the experts of each token), every expert ``e`` takes the
    ``c`` tokens of the batch with the largest ``S[:, e]``, where
    ``c = ceil(capacity_factor * batch / n_experts)`` (at most the batch)::

        I_e = top-c tokens of S[:, e]
        weights[t, e] = S[t, e] if t in I_e else 0

    Every expert gets exactly ``c`` tokens, so the load is balanced by
    construction and no auxiliary loss is needed; a token may get any number
    of experts, none included (then only a residual connection around the
    layer carries it). On average a token is processed by
    ``capacity_factor`` experts (the paper uses 2).

    Parameters
    ----------
    in_features : int
        Width of the routing input.
    n_experts : int
    capacity_factor : float, default=2.0
        Average experts per token, > 0.

    Notes
    -----
    Unlike the token-choice gates, the rows of ``weights`` are not on the
    simplex: they hold the chosen entries of ``S`` and sum to at most 1,
    and ``k`` (the bound on experts per token) is ``n_experts``. Selection
    ranks tokens against the rest of the batch, so a token's routing depends
    on the batch it is in (also in eval mode), and the gate does not fit
    causal decoding, as the paper says. Ties between equal scores go to the
    earlier token.
    """

    def __init__(self, in_features, n_experts, capacity_factor=2.0):
        super().__init__(n_experts, n_experts)
        self.in_features = check_scalar(in_features, "in_features", int, min_val=1)
        self.capacity_factor = check_scalar(capacity_factor, "capacity_factor", float,
                                            min_val=0, include_boundaries="right")
        self.linear = nn.Linear(self.in_features, self.n_experts)

    def capacity(self, batch):
        """Tokens each expert takes from a batch of ``batch`` tokens.

        Parameters
        ----------
        batch : int
            Tokens in the batch.

        Returns
        -------
        int
            ``min(batch, ceil(capacity_factor * batch / n_experts))``.
        """
        batch = check_scalar(batch, "batch", int, min_val=0)
        return min(batch, math.ceil(self.capacity_factor * batch / self.n_experts))

    def _route(self, x):
        _check_features("x", x, self.in_features)
        probs = torch.softmax(self.linear(x), dim=1)
        c = self.capacity(x.shape[0])
        if c == 0:
            return probs * 0.0, probs
        # stable descending sort: among equal scores the earlier token wins
        chosen = torch.sort(probs.detach().T, dim=1, descending=True, stable=True).indices[:, :c]
        mask = torch.zeros(probs.shape[1], probs.shape[0], dtype=torch.bool, device=x.device)
        mask.scatter_(1, chosen, True)
        return probs * mask.T.to(probs.dtype), probs

    def expert_parts(self, x):
        weights, _ = self._route(x)
        return weights[:, None], {}, True

    def forward(self, x):
        """Route a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Routing input.

        Returns
        -------
        GateOutput
            ``probs`` is the full router softmax ``S``.
        """
        weights, probs = self._route(x)
        return self._finish(weights, {}, True, probs)

    def extra_repr(self):
        return (f"in_features={self.in_features}, n_experts={self.n_experts}, "
                f"capacity_factor={self.capacity_factor}")


class HashGate(Gate):
    """Fixed random routing of integer keys (Roller et al., "Hash Layers For
    Large Sparse Models", NeurIPS 2021).

    Each key (a token, user or item id, or a locality-sensitive hash of a
    feature vector) is sent to ``k`` distinct experts drawn at random once,
    with weight ``1/k`` each. Nothing is learned: wrapped in
    :class:`~sparsecore.moe.PermutationLocalSearch`, the permutation is the
    only learnable part of the routing (COMET's "Hash-r+").

    Parameters
    ----------
    n_experts : int
    k : int, default=1
    n_keys : int or None, default=None
        With a key count, a table of ``n_keys`` random expert sets is drawn;
        without, keys of any size are hashed (SplitMix64 of key, expert and
        seed).
    seed : int, default=0

    Notes
    -----
    The input is a 1-D integer tensor of keys, one per sample.
    """

    def __init__(self, n_experts, k=1, *, n_keys=None, seed=0):
        super().__init__(n_experts, k)
        self.n_keys = None if n_keys is None else check_scalar(n_keys, "n_keys", int, min_val=1)
        self.seed = check_scalar(seed, "seed", int, min_val=0)
        table = torch.empty(0, self.k, dtype=torch.long)
        if self.n_keys is not None:
            gen = torch.Generator().manual_seed(self.seed)
            scores = torch.rand(self.n_keys, self.n_experts, generator=gen)
            table = scores.argsort(dim=1)[:, : self.k].contiguous()
        self.register_buffer("table", table)

    def experts_of(self, keys):
        """The ``k`` experts of each key, int64 tensor of shape (batch, k).

        Parameters
        ----------
        keys : torch.Tensor of shape (batch,), integer
            Non-negative keys (ids or hashed features).

        Returns
        -------
        torch.Tensor of shape (batch, k), int64
        """
        if not isinstance(keys, torch.Tensor):
            raise TypeError(f"keys must be a torch.Tensor of integers, got {type(keys).__name__}")
        if keys.is_floating_point() or keys.is_complex() or keys.dtype == torch.bool:
            raise TypeError(
                f"keys must be an integer tensor (ids, or hashed features), got dtype {keys.dtype}"
            )
        if keys.ndim != 1:
            raise ValueError(f"keys must be 1-D (one key per sample), got shape {tuple(keys.shape)}")
        if keys.numel() and int(keys.min()) < 0:
            raise ValueError(f"keys must be >= 0, got a minimum of {int(keys.min())}")
        if self.n_keys is not None:
            if keys.numel() and int(keys.max()) >= self.n_keys:
                raise ValueError(
                    f"keys must be < n_keys={self.n_keys}, got a maximum of {int(keys.max())}"
                )
            return self.table[keys.long()]
        return torch.from_numpy(_hash_experts(keys.cpu().numpy(), self.n_experts, self.k, self.seed)).to(keys.device)

    def expert_parts(self, keys):
        chosen = self.experts_of(keys)
        weights = torch.zeros(chosen.shape[0], self.n_experts, device=chosen.device,
                              dtype=torch.get_default_dtype())
        weights.scatter_(1, chosen, 1.0 / self.k)
        return weights[:, None], {}, True

    def extra_repr(self):
        return f"n_experts={self.n_experts}, k={self.k}, n_keys={self.n_keys}, seed={self.seed}"


def _splitmix64(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hash_experts(keys, n_experts, k, seed):
    """k distinct experts per key: the k smallest hashes of (key, expert, seed)."""
    keys = keys.astype(np.uint64)
    with np.errstate(over="ignore"):
        base = _splitmix64(keys * np.uint64(0x100000001B3) + np.uint64(seed))
        h = _splitmix64(base[:, None] ^ (np.arange(n_experts, dtype=np.uint64)[None, :] * np.uint64(0xD6E8FEB86659FD93)))
    return np.argsort(h, axis=1, kind="stable")[:, :k].astype(np.int64)


def _code_table(n_experts, m, reachable_only):
    """Affine factors (A, B) of shape (codes, m): q(l) = prod_t A[l,t] R_t + B[l,t].

    Bit t of code l (most significant first) selects ``R`` when 1 and
    ``1 - R`` when 0. With ``reachable_only``, a bit whose 1-branch holds no
    code below ``n_experts`` (given the bits before it) is forced to 0 and
    its factor is 1, so the codes ``0..n_experts-1`` carry all the mass.
    """
    codes = n_experts if reachable_only else 1 << m
    A = np.zeros((codes, m))
    B = np.zeros((codes, m))
    for l in range(codes):
        for t in range(m):
            shift = m - 1 - t
            bit = (l >> shift) & 1
            prefix = l >> (shift + 1)
            one_branch_start = ((prefix << 1) | 1) << shift
            if reachable_only and one_branch_start >= n_experts:
                A[l, t], B[l, t] = 0.0, 1.0  # forced 0, no choice made here
            elif bit:
                A[l, t], B[l, t] = 1.0, 0.0
            else:
                A[l, t], B[l, t] = -1.0, 1.0
    return A, B


class DSelectKGate(Gate):
    """DSelect-k: k differentiable binary-encoded expert selectors (Hazimeh
    et al., "DSelect-k: Differentiable Selection in the Mixture of Experts",
    NeurIPS 2021).

    With ``m = ceil(log2 n_experts)`` bits and the smooth-step ``S``::

        R = S(Z(x))                         # (k, m), Z linear in x (or free)
        q_i(l) = prod_t R[i,t] if bit_t(l) else 1 - R[i,t]
        g(x) = sum_i softmax(W x)_i q_i     # at most k non-zeros once R is 0/1

    Parameters
    ----------
    in_features : int or None
        Width of the routing input; ``None`` gives the static (per-task) gate
        whose selector logits are free parameters (its input only sets the
        batch size).
    n_experts : int
    k : int, default=2
    gamma : float, default=1.0
        Smooth-step width, > 0.
    entropy_reg : float, default=1e-6
        Coefficient of the selector entropy, averaged over the batch (the
        Keras layer sums over the batch: its coefficient equals ours divided
        by the batch size).
    unreachable : {"mask", "penalty"}, default="mask"
        How codes ``>= n_experts`` (when ``n_experts`` is not a power of two)
        are kept empty: ``"mask"`` forces the bits whose 1-branch holds only
        such codes to 0, so they get no mass by construction (identical to
        the paper when ``n_experts`` is a power of two); ``"penalty"`` is the
        paper's regulariser ``mean_batch sum_i 1 / sum_{l<n} q_i(l)`` (reported
        as ``aux_losses["unreachable"]``; at least ``k``), with the weights
        renormalised over the real experts.

    Notes
    -----
    Initialisation as in the official code: selector weights and biases
    ``U(-gamma/100, gamma/100)`` so training starts inside the smooth band,
    selector-weight logits ``U(-0.05, 0.05)``.
    """

    _UNREACHABLE = ("mask", "penalty")

    def __init__(self, in_features, n_experts, k=2, *, gamma=1.0, entropy_reg=1e-6,
                 unreachable="mask"):
        super().__init__(n_experts, k)
        self.in_features = None if in_features is None else check_scalar(in_features, "in_features", int, min_val=1)
        self.gamma = _check_gamma(gamma)
        self.entropy_reg = check_scalar(entropy_reg, "entropy_reg", float, min_val=0)
        if unreachable not in self._UNREACHABLE:
            raise ValueError(f"unreachable must be one of {self._UNREACHABLE}, got {unreachable!r}")
        self.unreachable = unreachable
        self.n_bits = math.ceil(math.log2(self.n_experts)) if self.n_experts > 1 else 0
        A, B = _code_table(self.n_experts, self.n_bits, unreachable == "mask")
        dtype = torch.get_default_dtype()
        self.register_buffer("code_a", torch.tensor(A, dtype=dtype), persistent=False)
        self.register_buffer("code_b", torch.tensor(B, dtype=dtype), persistent=False)
        km = self.k * self.n_bits
        g = self.gamma / 100.0
        if self.in_features is None:
            self.selector_logits = nn.Parameter(torch.empty(self.k, self.n_bits).uniform_(-g, g))
            self.weight_logits = nn.Parameter(torch.empty(self.k).uniform_(-0.05, 0.05))
        else:
            p = self.in_features
            self.selector_weight = nn.Parameter(torch.empty(km, p).uniform_(-g, g))
            self.selector_bias = nn.Parameter(torch.empty(km).uniform_(-g, g))
            self.weight_weight = nn.Parameter(torch.empty(self.k, p).uniform_(-0.05, 0.05))
            self.weight_bias = nn.Parameter(torch.empty(self.k).uniform_(-0.05, 0.05))

    @property
    def static(self):
        """True for a static gate (``in_features=None``): one routing for every sample."""
        return self.in_features is None

    def selector_outputs(self, x):
        """``(R, alpha)``: smooth-step outputs (batch, k, m) and selector
        weights (batch, k).

        Parameters
        ----------
        x : torch.Tensor
            Input batch, (batch, in_features); a static gate only uses its
            batch size.

        Returns
        -------
        R : torch.Tensor of shape (batch, k, m)
            Smooth-step outputs.
        alpha : torch.Tensor of shape (batch, k)
            Selector weights.
        """
        if self.static:
            if not isinstance(x, torch.Tensor) or x.ndim < 1:
                raise TypeError("x must be a tensor whose first axis is the batch (static gate)")
            b = x.shape[0]
            z = self.selector_logits.expand(b, -1, -1)
            w = self.weight_logits.expand(b, -1)
        else:
            _check_features("x", x, self.in_features)
            z = F.linear(x, self.selector_weight, self.selector_bias).view(x.shape[0], self.k, self.n_bits)
            w = F.linear(x, self.weight_weight, self.weight_bias)
        return smooth_step(z, self.gamma), torch.softmax(w, dim=-1)

    def selector_probabilities(self, R):
        """``q``: (batch, k, codes), codes = n_experts ("mask") or 2**m.

        Parameters
        ----------
        R : torch.Tensor of shape (batch, k, m)
            Smooth-step outputs (:meth:`selector_outputs`).

        Returns
        -------
        torch.Tensor of shape (batch, k, codes)
        """
        # (b, k, 1, m) * (codes, m) -> (b, k, codes, m) -> product over bits
        return (R[:, :, None, :] * self.code_a + self.code_b).prod(-1)

    def expert_parts(self, x):
        R, alpha = self.selector_outputs(x)
        q = self.selector_probabilities(R)
        n = self.n_experts
        weights = (alpha[:, :, None] * q[:, :, :n]).sum(1)
        aux = {}
        if self.unreachable == "penalty" and q.shape[-1] > n:
            reach = q[:, :, :n].sum(-1)  # (b, k)
            aux["unreachable"] = (1.0 / reach.clamp_min(1e-12)).sum(1).mean()
            weights = weights / (alpha * reach).sum(1, keepdim=True).clamp_min(1e-12)
        if self.entropy_reg > 0:
            aux["entropy"] = self.entropy_reg * _entropy_terms(q).sum((1, 2)).mean()
        saturated = bool(((R == 0) | (R == 1)).all())
        return weights[:, None], aux, saturated

    def extra_repr(self):
        return (f"in_features={self.in_features}, n_experts={self.n_experts}, k={self.k}, "
                f"gamma={self.gamma}, unreachable={self.unreachable!r}")


def _leaf_paths(n_experts):
    """Ancestors of each leaf in the heap-numbered tree with n_experts leaves.

    Returns ``(index, A, B)`` of shape (n_experts, depth): the path
    probability of leaf ``l`` is ``prod_d A[l,d] r[index[l,d]] + B[l,d]``
    (``r`` = probability of going left; padding has A=0, B=1).
    """
    n = n_experts
    paths = []
    for leaf in range(n):
        node, path = n - 1 + leaf, []
        while node > 0:
            parent = (node - 1) // 2
            path.append((parent, node == 2 * parent + 1))
            node = parent
        paths.append(path[::-1])
    depth = max((len(p) for p in paths), default=0)
    index = np.zeros((n, depth), dtype=np.int64)
    A = np.zeros((n, depth))
    B = np.ones((n, depth))
    for l, path in enumerate(paths):
        for d, (node, left) in enumerate(path):
            index[l, d] = node
            A[l, d], B[l, d] = (1.0, 0.0) if left else (-1.0, 1.0)
    return index, A, B


class COMETGate(Gate):
    """COMET: k soft binary trees with a joint softmax over their leaves
    (Ibrahim, Chen, Mazumder et al., "COMET: Learning Cardinality Constrained
    Mixture of Experts with Trees and Local Search", KDD 2023).

    Each of the ``k`` trees is a complete binary tree in heap numbering with
    ``n_experts - 1`` oblique splits and ``n_experts`` leaves (leaf ``l`` is
    expert ``l``; any number of experts, balanced for powers of two)::

        r_{q,j}(x) = S(w_{q,j} . x + b_{q,j})           # probability of going left
        P_{l,j}(x) = prod over the ancestors of leaf l of r or 1 - r
        g_{l,j}(x) = P_{l,j} e^{a_{l,j}(x)} / sum_{l',j'} P_{l',j'} e^{a_{l',j'}(x)}
        g_l(x) = sum_j g_{l,j}(x)                        # at most k non-zeros once r is 0/1

    with leaf logits ``a`` linear in ``x``.

    Parameters
    ----------
    in_features : int
    n_experts : int
    k : int, default=2
        Number of trees.
    gamma : float, default=1.0
        Smooth-step width, > 0.
    entropy_reg : float, default=0.1
        Coefficient of ``sum_l mean_batch sum_j -P log(P + 1e-6)``, which
        drives each tree to a single leaf per sample.
    split_bias : bool, default=True
        Hyperplane offsets in the splits (the TensorFlow code has them, the
        PyTorch port does not).

    Notes
    -----
    Initialisation as in the official code: split weights
    ``U(-gamma/100, gamma/100)``, leaf weights ``U(-0.05, 0.05)`` with zero
    bias. Leaves with ``P = 0`` get exactly zero weight (no ``-inf`` logits,
    hence no NaN).
    """

    def __init__(self, in_features, n_experts, k=2, *, gamma=1.0, entropy_reg=0.1,
                 split_bias=True):
        super().__init__(n_experts, k)
        self.in_features = check_scalar(in_features, "in_features", int, min_val=1)
        self.gamma = _check_gamma(gamma)
        self.entropy_reg = check_scalar(entropy_reg, "entropy_reg", float, min_val=0)
        self.n_parts = self.k
        n, p, g = self.n_experts, self.in_features, self.gamma / 100.0
        self.split_weight = nn.Parameter(torch.empty((n - 1) * self.k, p).uniform_(-g, g))
        self.split_bias = (nn.Parameter(torch.empty((n - 1) * self.k).uniform_(-g, g))
                           if split_bias else None)
        self.leaf_weight = nn.Parameter(torch.empty(n * self.k, p).uniform_(-0.05, 0.05))
        self.leaf_bias = nn.Parameter(torch.zeros(n * self.k))
        index, A, B = _leaf_paths(n)
        dtype = torch.get_default_dtype()
        self.register_buffer("path_index", torch.from_numpy(index), persistent=False)
        self.register_buffer("path_a", torch.tensor(A, dtype=dtype), persistent=False)
        self.register_buffer("path_b", torch.tensor(B, dtype=dtype), persistent=False)

    def split_probabilities(self, x):
        """``r``: probability of going left, shape (batch, k, n_experts - 1).

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Input batch.

        Returns
        -------
        torch.Tensor of shape (batch, k, n_experts - 1)
        """
        _check_features("x", x, self.in_features)
        z = F.linear(x, self.split_weight, self.split_bias)
        return smooth_step(z.view(x.shape[0], self.n_experts - 1, self.k).transpose(1, 2), self.gamma)

    def leaf_probabilities(self, r):
        """``P``: (batch, k, n_experts); each tree's row sums to 1.

        Parameters
        ----------
        r : torch.Tensor of shape (batch, k, n_experts - 1)
            Split probabilities (:meth:`split_probabilities`).

        Returns
        -------
        torch.Tensor of shape (batch, k, n_experts)
        """
        gathered = r[:, :, self.path_index]  # (b, k, n, depth)
        return (gathered * self.path_a + self.path_b).prod(-1)

    def expert_parts(self, x):
        r = self.split_probabilities(x)
        P = self.leaf_probabilities(r)
        a = F.linear(x, self.leaf_weight, self.leaf_bias).view(x.shape[0], self.n_experts, self.k).transpose(1, 2)
        positive = P > 0
        log_p = torch.where(positive, torch.log(torch.where(positive, P, torch.ones_like(P))),
                            torch.full_like(P, -torch.inf))
        s = (a + log_p).flatten(1)
        parts = torch.softmax(s, dim=1).view_as(P)
        aux = {}
        if self.entropy_reg > 0:
            aux["entropy"] = self.entropy_reg * _entropy_terms(P).sum((1, 2)).mean()
        saturated = bool(((r == 0) | (r == 1)).all())
        return parts, aux, saturated

    def extra_repr(self):
        return (f"in_features={self.in_features}, n_experts={self.n_experts}, k={self.k}, "
                f"gamma={self.gamma}, entropy_reg={self.entropy_reg}")
