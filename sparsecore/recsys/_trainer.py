"""Dynamic Sparse Learning: the prune-and-grow mask schedule for any torch
model and optimizer.

After Wang, Wang, Shi, Zhao, Li, He and Zhang, "Dynamic Sparse Learning: A
Novel Paradigm for Efficient Recommendation" (WSDM 2024, arXiv 2402.02855),
itself in the line of sparse momentum / RigL (Evci et al., ICML 2020). Written
from the algorithm's description; no code of the authors was used.
"""
import math
import numbers

import numpy as np
import torch

from sparsecore._validation import check_choice, check_scalar

__all__ = ["DSLTrainer", "cosine_update_ratio"]

_PRUNE = ("magnitude",)
_GROW = ("gradient", "accumulated", "random")
_SCHEDULES = ("cosine", "constant")
_SUPPORTS = ("unstructured", "aligned")
_INITS = ("random", "magnitude")


def cosine_update_ratio(step, total_steps, initial=0.5, final=0.005):
    """The fraction of a budget moved at ``step``: cosine decay.

    ``final + (initial - final) * (1 + cos(pi * step / total_steps)) / 2``,
    and ``final`` once ``step >= total_steps``.

    Parameters
    ----------
    step : int or array of int
        Optimizer steps taken so far (>= 0).
    total_steps : int
        Length of the decay (> 0).
    initial, final : float
        Ratio at step 0 and from ``total_steps`` on.

    Returns
    -------
    float or ndarray
    """
    t = np.minimum(np.asarray(step, dtype=np.float64), total_steps)
    out = final + 0.5 * (initial - final) * (1.0 + np.cos(np.pi * t / total_steps))
    return float(out) if np.ndim(out) == 0 else out


def _generator(random_state):
    if isinstance(random_state, torch.Generator):
        return random_state
    gen = torch.Generator()
    if random_state is None:
        gen.seed()
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        gen.manual_seed(int(random_state) % (2**63))
    elif isinstance(random_state, np.random.Generator):
        gen.manual_seed(int(random_state.integers(2**63)))
    else:
        raise TypeError(
            f"random_state must be None, an int, a numpy Generator or a torch.Generator, "
            f"got {type(random_state).__name__}"
        )
    return gen


def _select(scores, k, largest, gen):
    """Flat indices of the ``k`` largest (smallest) ``scores``, ties at the
    cut broken at random (torch.topk alone would favour low indices)."""
    n = scores.numel()
    if k <= 0:
        return torch.empty(0, dtype=torch.long)
    if k >= n:
        return torch.arange(n)
    threshold = torch.topk(scores, k, largest=largest, sorted=False).values
    threshold = threshold.min() if largest else threshold.max()
    better = scores > threshold if largest else scores < threshold
    chosen = torch.nonzero(better).flatten()
    tied = torch.nonzero(scores == threshold).flatten()
    need = k - chosen.numel()
    pick = tied[torch.randperm(tied.numel(), generator=gen)[:need]]
    return torch.cat([chosen, pick])


def _order(primary, secondary, gen, descending):
    """Positions sorted by ``primary`` (``descending`` or not), then
    ``secondary`` ascending, then at random."""
    perm = torch.randperm(primary.numel(), generator=gen)
    o = perm[torch.argsort(secondary[perm], stable=True)]
    return o[torch.argsort(primary[o], stable=True, descending=descending)]


class _Masked:
    """One masked tensor: its parameter, mask and growth accumulator."""

    def __init__(self, name, param):
        self.name = name
        self.param = param
        self.mask = torch.ones_like(param, dtype=torch.bool)
        self.accum = None
        self.score = None

    @property
    def numel(self):
        return self.param.numel()


class DSLTrainer:
    """Keep a fixed number of non-zero weights while moving them where they
    help: Dynamic Sparse Learning's prune-and-grow schedule around any torch
    optimizer.

    Every :meth:`step` runs ``optimizer.step()`` with the gradients of masked
    entries zeroed, so masked weights and their optimizer state stay exactly
    0. Every ``update_interval`` steps, in each budget, the ``K = ceil(p_t *
    nnz)`` active weights of smallest magnitude are pruned and ``K`` inactive
    ones are grown (by gradient magnitude, accumulated gradient or at
    random), where ``p_t`` is the update ratio of :func:`cosine_update_ratio`.
    Grown weights start at exactly 0 with a reset optimizer state, and the
    number of non-zeros of every budget never changes.

    Parameters
    ----------
    params : torch.nn.Module, iterable of Parameter, or dict of str to Parameter
        What to sparsify. For a module: the weights of its ``nn.Embedding``
        and ``nn.EmbeddingBag`` layers (pass parameters explicitly for
        anything else). Every parameter must be optimised by ``optimizer``.
    optimizer : torch.optim.Optimizer
        Any optimizer; its per-parameter state tensors (momentum, Adam
        moments) are reset where weights are masked.
    density : float in (0, 1]
        Fraction of non-zero weights kept in every budget.
    total_steps : int
        Optimizer steps of the whole training: the length of the cosine decay;
        masks are updated only before it.
    update_interval : int or None, default=100
        Steps between mask updates (``Delta T``); None keeps the initial mask
        fixed (a static sparse model).
    update_ratio, update_ratio_min : float, default=0.5, 0.005
        The update ratio at step 0 and at ``total_steps``.
    schedule : {"cosine", "constant"}, default="cosine"
        How the update ratio decays (``"constant"`` keeps ``update_ratio``).
    prune : {"magnitude"}, default="magnitude"
        Active weights of smallest ``|w|`` are pruned.
    grow : {"gradient", "accumulated", "random"}, default="gradient"
        Score of inactive weights: ``|grad|`` of the last minibatch (DSL,
        RigL), ``|sum of grads|`` since the previous update (less biased
        towards the users and items of one batch), or random.
    budget : {"per_tensor", "shared"} or list of lists of str, default="per_tensor"
        Which tensors share one non-zero budget: each its own, all together
        (the split between them moves), or explicit groups of names.
    support : {"unstructured", "aligned"}, default="unstructured"
        ``"aligned"`` (2-D tensors only): every row keeps a prefix of the
        columns, ``w[r, :len_r]``, so two rows always share the first
        ``min(len_a, len_b)`` dimensions and a dot product loses none of
        the shorter one; pruning shortens rows from the end (a column is
        pruned with every later one, scored by the largest ``|w|`` removed),
        growth extends them. Per-row lengths adapt, like learned embedding
        sizes.
    sparse_init : {"random", "magnitude"}, default="random"
        Initial mask: a uniformly random set of exactly ``round(density *
        size)`` entries per budget (DSL's uniform init), or the largest
        ``|w|``. With ``support="aligned"``, rows get equal lengths
        (``"random"``) or lengths by the magnitude rule.
    random_state : None, int, numpy or torch Generator
        Seeds the initial mask, random growth and tie-breaking.

    Attributes
    ----------
    masks : dict of str to BoolTensor
    step_count : int
    history : list of dict
        One entry per mask update: ``step``, ``ratio``, ``pruned``,
        ``grown`` (per budget and total), ``nnz``.
    last_update : dict or None
        Flat indices pruned and grown per tensor at the latest update.

    Notes
    -----
    Differences from the authors' description, on purpose: optimizer state
    of masked entries is reset (DSL's code leaves Adam moments of pruned
    weights in place, so regrown weights inherit stale moments); pruned and
    grown sets are disjoint (a weight pruned at an update cannot be regrown
    at the same update); ties are broken at random. Adam's step counter is
    per tensor, so a regrown weight's first step is larger than usual
    (about ``lr * (1 - beta1) / sqrt(1 - beta2)``).

    Examples
    --------
    >>> model = torch.nn.Embedding(1000, 64)  # doctest: +SKIP
    >>> opt = torch.optim.Adam(model.parameters(), lr=1e-2)  # doctest: +SKIP
    >>> trainer = DSLTrainer(model, opt, density=0.2, total_steps=5000)  # doctest: +SKIP
    >>> loss.backward(); trainer.step(); opt.zero_grad()  # doctest: +SKIP
    """

    def __init__(self, params, optimizer, *, density, total_steps, update_interval=100,
                 update_ratio=0.5, update_ratio_min=0.005, schedule="cosine",
                 prune="magnitude", grow="gradient", budget="per_tensor",
                 support="unstructured", sparse_init="random", random_state=None):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        check_scalar(density, "density", float, min_val=0, max_val=1, include_boundaries="right")
        check_scalar(total_steps, "total_steps", int, min_val=0, include_boundaries="neither")
        if update_interval is not None:
            check_scalar(update_interval, "update_interval", int, min_val=0, include_boundaries="neither")
        check_scalar(update_ratio, "update_ratio", float, min_val=0, max_val=1)
        check_scalar(update_ratio_min, "update_ratio_min", float, min_val=0, max_val=1)
        if update_ratio_min > update_ratio:
            raise ValueError(
                f"update_ratio_min ({update_ratio_min}) must not exceed update_ratio ({update_ratio})"
            )
        check_choice(schedule, "schedule", _SCHEDULES)
        check_choice(prune, "prune", _PRUNE)
        check_choice(grow, "grow", _GROW)
        check_choice(support, "support", _SUPPORTS)
        check_choice(sparse_init, "sparse_init", _INITS)
        self.optimizer = optimizer
        self.density = float(density)
        self.total_steps = int(total_steps)
        self.update_interval = None if update_interval is None else int(update_interval)
        self.update_ratio_initial = float(update_ratio)
        self.update_ratio_min = float(update_ratio_min)
        self.schedule = schedule
        self.prune = prune
        self.grow = grow
        self.support = support
        self.sparse_init = sparse_init
        self._gen = _generator(random_state)
        self._tensors = self._collect(params)
        self._check_optimizer()
        self.budgets = self._budgets(budget)
        if support == "aligned":
            for t in self._tensors.values():
                if t.param.dim() != 2:
                    raise ValueError(
                        f"support='aligned' needs 2-D tensors (rows x dimensions); "
                        f"{t.name!r} has shape {tuple(t.param.shape)}"
                    )
        self.step_count = 0
        self.history = []
        self.last_update = None
        self._init_masks()
        self.apply_masks()
        self._reset_state({name: ~t.mask for name, t in self._tensors.items()})

    # ------------------------------------------------------------ set-up
    def _collect(self, params):
        if isinstance(params, torch.nn.Module):
            named = [
                (f"{mod_name}.weight" if mod_name else "weight", mod.weight)
                for mod_name, mod in params.named_modules()
                if isinstance(mod, (torch.nn.Embedding, torch.nn.EmbeddingBag))
            ]
            if not named:
                raise ValueError(
                    "params is a module without nn.Embedding layers; pass the parameters "
                    "to sparsify explicitly (a list or a dict of name to Parameter)"
                )
        elif isinstance(params, dict):
            named = list(params.items())
        elif isinstance(params, torch.Tensor):
            named = [("0", params)]
        else:
            try:
                items = list(params)
            except TypeError:
                raise TypeError(
                    f"params must be a module, an iterable of Parameters or a dict, "
                    f"got {type(params).__name__}"
                ) from None
            named = [
                item if isinstance(item, tuple) else (str(i), item) for i, item in enumerate(items)
            ]
        if not named:
            raise ValueError("params is empty: nothing to sparsify")
        tensors = {}
        for name, p in named:
            if not isinstance(p, torch.Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"params[{name!r}] must be a leaf tensor that requires grad")
            if not p.is_floating_point():
                raise TypeError(f"params[{name!r}] has dtype {p.dtype}; floating point expected")
            if p.numel() == 0:
                raise ValueError(f"params[{name!r}] is empty (shape {tuple(p.shape)})")
            if name in tensors or any(p is t.param for t in tensors.values()):
                raise ValueError(f"params lists {name!r} twice")
            tensors[str(name)] = _Masked(str(name), p)
        return tensors

    def _check_optimizer(self):
        owned = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        for t in self._tensors.values():
            if id(t.param) not in owned:
                raise ValueError(f"params[{t.name!r}] is not optimised by the given optimizer")

    def _budgets(self, budget):
        names = list(self._tensors)
        if isinstance(budget, str):
            check_choice(budget, "budget", ("per_tensor", "shared"))
            return [[n] for n in names] if budget == "per_tensor" else [names]
        try:
            groups = [[str(n) for n in g] for g in budget]
        except TypeError:
            raise TypeError(
                "budget must be 'per_tensor', 'shared' or a list of lists of tensor names"
            ) from None
        flat = [n for g in groups for n in g]
        unknown = sorted(set(flat) - set(names))
        if unknown or sorted(flat) != sorted(names) or any(not g for g in groups):
            raise ValueError(
                f"budget groups must cover each tensor exactly once; tensors are {names}, "
                f"groups are {groups}" + (f" (unknown: {unknown})" if unknown else "")
            )
        return groups

    # ------------------------------------------------------------ masks
    def _init_masks(self):
        if self.density >= 1.0:
            return
        for group in self.budgets:
            members = [self._tensors[n] for n in group]
            total = sum(t.numel for t in members)
            keep = int(round(self.density * total))
            if self.support == "aligned":
                self._init_aligned(members, keep)
                continue
            if self.sparse_init == "random":
                scores = torch.rand(total, generator=self._gen)
            else:
                scores = torch.cat([t.param.detach().abs().flatten().float() for t in members])
            chosen = _select(scores, keep, True, self._gen)
            flat = torch.zeros(total, dtype=torch.bool)
            flat[chosen] = True
            self._scatter_flat(members, flat)

    def _init_aligned(self, members, keep):
        if self.sparse_init == "random":
            # each row keeps, as a prefix, as many entries as a uniformly
            # random mask of the budget's size gives it (about
            # Binomial(width, density) per row: lengths vary, so every
            # dimension is in use somewhere and can be grown into)
            total = sum(t.numel for t in members)
            flat = torch.zeros(total, dtype=torch.bool)
            flat[_select(torch.rand(total, generator=self._gen), keep, True, self._gen)] = True
            self._scatter_flat(members, flat)
            for t in members:
                lengths = t.mask.sum(1)
                t.mask = torch.arange(t.param.shape[1])[None, :] < lengths[:, None]
        else:
            # magnitude: the prune rule applied to the dense weights
            for t in members:
                t.mask = torch.ones_like(t.param, dtype=torch.bool)
            active = sum(t.numel for t in members)
            owner, row = self._aligned_prune_order(members, [t.param.detach().abs() for t in members])
            self._change_lengths(members, owner[: active - keep], row[: active - keep], -1)

    @staticmethod
    def _scatter_flat(members, flat):
        start = 0
        for t in members:
            t.mask = flat[start:start + t.numel].view_as(t.param).clone()
            start += t.numel

    def apply_masks(self):
        """Zero every masked weight (``w *= mask``)."""
        with torch.no_grad():
            for t in self._tensors.values():
                t.param.mul_(t.mask.to(t.param.dtype))

    def _reset_state(self, where):
        """Zero the optimizer state of each tensor at the positions ``where``."""
        for name, positions in where.items():
            t = self._tensors[name]
            state = self.optimizer.state.get(t.param, {})
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == t.param.shape:
                    value.masked_fill_(positions, 0)

    # ------------------------------------------------------------ schedule
    def update_ratio(self, step=None):
        """The update ratio ``p_t`` at ``step`` (default: the current step).

        Parameters
        ----------
        step : int or None, optional
            Optimizer step (default: the current one).

        Returns
        -------
        float
        """
        step = self.step_count if step is None else step
        if self.schedule == "constant":
            return self.update_ratio_initial
        return cosine_update_ratio(step, self.total_steps, self.update_ratio_initial,
                                   self.update_ratio_min)

    def is_update_step(self, step=None):
        """Whether the masks are updated at the end of optimizer step ``step``.

        Parameters
        ----------
        step : int or None, optional
            Optimizer step (default: the current one).

        Returns
        -------
        bool
        """
        step = self.step_count if step is None else step
        return (
            self.update_interval is not None
            and self.density < 1.0
            and step > 0
            and step % self.update_interval == 0
            and step < self.total_steps
        )

    # ------------------------------------------------------------ training
    def step(self, closure=None):
        """``optimizer.step()`` on the sparse weights, then a mask update when
        one is due. Call it where you would call ``optimizer.step()``.

        Parameters
        ----------
        closure : callable or None, optional
            Passed to ``optimizer.step``.

        Returns
        -------
        object
            The optimizer's return value (the closure's loss, if any).
        """
        self.step_count += 1
        update_now = self.is_update_step()
        for t in self._tensors.values():
            g = t.param.grad
            if g is None:
                continue
            if self.grow == "accumulated" and self.update_interval is not None and self.density < 1:
                if t.accum is None:
                    t.accum = torch.zeros_like(t.param)
                if g.is_sparse:
                    g = g.coalesce()
                    t.accum.index_put_(tuple(g.indices()), g.values(), accumulate=True)
                else:
                    t.accum.add_(g)
            if update_now and self.grow == "gradient":
                t.score = (g.to_dense() if g.is_sparse else g).detach().abs().clone()
            self._mask_grad(t)
        out = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        self.apply_masks()
        if update_now:
            self._update()
        return out

    @staticmethod
    def _mask_grad(t):
        g = t.param.grad
        with torch.no_grad():
            if g.is_sparse:
                g = g.coalesce()
                idx = g.indices()
                keep = t.mask[tuple(idx)].to(g.dtype)  # (nnz,) or (rows, dims)
                t.param.grad = torch.sparse_coo_tensor(idx, g.values() * keep, g.shape, check_invariants=False,
                                                       is_coalesced=True)
            else:
                g.mul_(t.mask.to(g.dtype))

    def _growth_scores(self, t):
        if self.grow == "random":
            return torch.rand(t.param.shape, generator=self._gen)
        src = t.accum if self.grow == "accumulated" else t.score
        if src is None:  # no gradient reached this tensor
            return torch.zeros(t.param.shape)
        return src.detach().abs().float()

    def _update(self):
        ratio = self.update_ratio()
        record = {"step": self.step_count, "ratio": ratio, "pruned": 0, "grown": 0,
                  "budgets": []}
        self.last_update = {}
        pruned_pos, grown_pos = {}, {}
        for group in self.budgets:
            members = [self._tensors[n] for n in group]
            total = sum(t.numel for t in members)
            nnz = sum(int(t.mask.sum()) for t in members)
            k = min(math.ceil(ratio * nnz), nnz, total - nnz)
            weights = [t.param.detach().abs().float() for t in members]
            scores = [self._growth_scores(t) for t in members]
            before = [t.mask.clone() for t in members]
            if self.support == "aligned":
                k = self._update_aligned(members, k, weights, scores)
            else:
                self._update_unstructured(members, k, weights, scores)
            for t, old in zip(members, before):
                p = old & ~t.mask
                g = t.mask & ~old
                pruned_pos[t.name], grown_pos[t.name] = p, g
                self.last_update[t.name] = {
                    "pruned": torch.nonzero(p.flatten()).flatten(),
                    "grown": torch.nonzero(g.flatten()).flatten(),
                }
            record["budgets"].append({"tensors": list(group), "nnz": nnz, "moved": k})
            record["pruned"] += k
            record["grown"] += k
        with torch.no_grad():
            for name, p in pruned_pos.items():
                self._tensors[name].param.masked_fill_(p, 0)
        self._reset_state({n: pruned_pos[n] | grown_pos[n] for n in pruned_pos})
        for t in self._tensors.values():
            t.score = None
            if t.accum is not None:
                t.accum.zero_()
        record["nnz"] = {t.name: int(t.mask.sum()) for t in self._tensors.values()}
        self.history.append(record)

    def _update_unstructured(self, members, k, weights, scores):
        if k <= 0:
            return
        mask = torch.cat([t.mask.flatten() for t in members])
        w = torch.cat([x.flatten() for x in weights])
        s = torch.cat([x.flatten() for x in scores])
        inf = torch.tensor(float("inf"))
        prune = _select(torch.where(mask, w, inf), k, False, self._gen)
        grow = _select(torch.where(mask, -inf, s), k, True, self._gen)
        new = mask.clone()
        new[prune] = False
        new[grow] = True
        self._scatter_flat(members, new)

    def _update_aligned(self, members, k, weights, scores):
        if k <= 0:
            return 0
        owner, row = self._aligned_prune_order(members, weights)
        k = min(k, owner.numel())
        while k > 0:
            pruned_rows = self._rows_hit(members, owner[:k], row[:k])
            room = sum(
                int(((~t.mask).sum(1)).index_fill_(0, rows, 0).sum())
                for t, rows in zip(members, pruned_rows)
            )
            if room >= k:
                break
            k = room  # fewer rows shortened leaves more room: this converges
        if k <= 0:
            return 0
        self._change_lengths(members, owner[:k], row[:k], -1)
        gowner, grow = self._aligned_grow_order(members, scores, pruned_rows)
        self._change_lengths(members, gowner[:k], grow[:k], +1)
        return k

    def _aligned_prune_order(self, members, weights):
        """(tensor, row) of every active entry, cheapest suffix first: the
        key of ``w[r, j]`` is ``max |w[r, j:len_r]|`` (everything pruned with
        it); later columns of a row come first among equal keys."""
        keys, cols, owners, rows_ = [], [], [], []
        for m, (t, w) in enumerate(zip(members, weights)):
            a = torch.where(t.mask, w, torch.zeros_like(w))
            suffix_max = torch.flip(torch.cummax(torch.flip(a, [1]), 1).values, [1])
            rows, cs = torch.nonzero(t.mask, as_tuple=True)
            keys.append(suffix_max[rows, cs].double())
            cols.append(cs)
            owners.append(torch.full_like(rows, m))
            rows_.append(rows)
        order = _order(torch.cat(keys), -torch.cat(cols), self._gen, descending=False)
        return torch.cat(owners)[order], torch.cat(rows_)[order]

    def _aligned_grow_order(self, members, scores, blocked_rows):
        """(tensor, row) of every inactive entry of rows not in
        ``blocked_rows``, best first: the key of ``w[r, j]`` (``j >= len_r``)
        is ``min score[r, len_r:j+1]``; earlier columns first among ties."""
        keys, cols, owners, rows_ = [], [], [], []
        for m, (t, s) in enumerate(zip(members, scores)):
            blocked = t.mask.clone()
            blocked[blocked_rows[m]] = True
            s = torch.where(t.mask, torch.full_like(s, float("inf")), s)
            prefix_min = torch.cummin(s, 1).values
            rows, cs = torch.nonzero(~blocked, as_tuple=True)
            keys.append(prefix_min[rows, cs].double())
            cols.append(cs)
            owners.append(torch.full_like(rows, m))
            rows_.append(rows)
        order = _order(torch.cat(keys), torch.cat(cols), self._gen, descending=True)
        return torch.cat(owners)[order], torch.cat(rows_)[order]

    @staticmethod
    def _rows_hit(members, owner, row):
        return [torch.unique(row[owner == m]) for m in range(len(members))]

    @staticmethod
    def _change_lengths(members, owner, row, delta):
        for m, t in enumerate(members):
            sel = row[owner == m]
            lengths = t.mask.sum(1)
            lengths.index_add_(0, sel, torch.full((sel.numel(),), delta, dtype=lengths.dtype))
            t.mask = torch.arange(t.param.shape[1])[None, :] < lengths[:, None]

    # ------------------------------------------------------------ reports
    @property
    def masks(self):
        """Current boolean mask of each managed tensor, by name."""
        return {name: t.mask for name, t in self._tensors.items()}

    @property
    def parameters(self):
        """The managed parameters, by name."""
        return {name: t.param for name, t in self._tensors.items()}

    def nnz(self):
        """Non-zeros allowed per tensor (the mask sizes).

        Returns
        -------
        dict of str to int
        """
        return {name: int(t.mask.sum()) for name, t in self._tensors.items()}

    def state_dict(self):
        """Masks, step count and history (for checkpoints).

        Returns
        -------
        dict
            Keys ``masks`` (dict of bool tensors), ``step_count`` and ``history``.
        """
        return {"masks": {n: m.clone() for n, m in self.masks.items()},
                "step_count": self.step_count, "history": list(self.history)}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` saved (and re-apply the masks).

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict`.
        """
        masks = state["masks"]
        if set(masks) != set(self._tensors):
            raise ValueError(f"state has masks for {sorted(masks)}, the trainer for {sorted(self._tensors)}")
        for name, mask in masks.items():
            t = self._tensors[name]
            if mask.shape != t.param.shape:
                raise ValueError(f"mask {name!r} has shape {tuple(mask.shape)}, the tensor {tuple(t.param.shape)}")
            t.mask = mask.clone().bool()
        self.step_count = int(state["step_count"])
        self.history = list(state["history"])
        self.apply_masks()
