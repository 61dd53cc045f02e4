"""Dynamic sparse training: prune and regrow during training (RigL)."""
import copy
import math
import numbers

import torch
from torch import nn
from torch.ao.pruning import BaseSparsifier
from torch.ao.pruning.sparsifier.utils import FakeSparsity, get_arg_info_from_tensor_fqn
from torch.nn.utils import parametrize

from sparsecore.formats import BlockShape, NMPattern
from sparsecore.ops import block_prune, nm_prune
from sparsecore.torch._functional import mask_with_dense_grad
from sparsecore.torch._layers import BlockSparseLinear, NMSparseLinear, _check_nm_mask

__all__ = ["DynamicSparsifier"]

_SCHEDULES = ("cosine", "constant")
_PRUNE = ("magnitude",)
_GROW = ("gradient", "random")


class _DynamicMask(FakeSparsity):
    """Masks a dense weight (``nn.Linear``) and records its dense gradient on
    growth steps. Unlike torch.ao's FakeSparsity the mask is kept in the
    model's state_dict, so a prepared model round-trips with strict loading."""

    state_dict = nn.Module.state_dict

    def __init__(self, mask):
        super().__init__(mask)
        self.want_dense_grad = False
        self.dense_grad = None

    def forward(self, x):
        return mask_with_dense_grad(x, self.mask, self)


class _LayerMask(FakeSparsity):
    """Registers the mask of a sparsecore layer, which masks (and records the
    dense gradient) itself: the parametrization is the identity."""

    state_dict = nn.Module.state_dict

    def forward(self, x):
        return x


def _uniform_mask(w, sparsity):
    """Keep the ``1 - sparsity`` fraction of largest |w| (ties: lower index)."""
    flat = w.detach().abs().flatten()
    keep = int(round((1 - sparsity) * flat.numel()))
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=w.device)
    if keep:
        mask[torch.topk(flat, keep, sorted=False).indices] = True
    return mask.reshape(w.shape)


def _block_norms(a, r, c):
    R, C = a.shape
    return a.reshape(R // r, r, C // c, c).pow(2).sum(dim=(1, 3))


def _prune_grow_units(mask, w_score, g_score, k, generator):
    """Drop the k active units of least ``w_score`` and activate the k
    inactive (never just dropped) units of largest ``g_score`` (random when
    None). Returns the bool map of the grown units. ``mask`` is edited in place."""
    flat = mask.view(-1)
    active = flat.clone()
    k = min(k, int(active.sum()), int((~active).sum()))
    if k <= 0:
        return torch.zeros_like(mask)
    ws = w_score.reshape(-1).masked_fill(~active, math.inf)
    drop = torch.topk(ws, k, largest=False, sorted=False).indices
    if g_score is None:
        gs = torch.rand(flat.numel(), generator=generator).to(mask.device)
    else:
        gs = g_score.reshape(-1).clone()
    gs = gs.masked_fill(active, -math.inf)
    grow = torch.topk(gs, k, sorted=False).indices
    flat[drop] = False
    flat[grow] = True
    grown = torch.zeros_like(flat)
    grown[grow] = True
    return grown.view(mask.shape)


def _prune_grow_nm(mask, w, g, n, m, k, generator):
    """The same within N:M groups: each group gets back as many units as it
    lost, so every group keeps its count (the pattern stays N:M)."""
    R, K = mask.shape
    G = -(-K // m)
    pad = G * m - K

    def grouped(t, fill):
        t = t.detach()
        if pad:
            t = torch.cat([t, t.new_full((R, pad), fill)], 1)
        return t.reshape(R, G, m)

    active = grouped(mask, False)
    k = min(k, int(active.sum()))
    if k <= 0:
        return torch.zeros_like(mask)
    ws = grouped(w.abs(), 0.0).masked_fill(~active, math.inf).reshape(-1)
    drop = torch.zeros(ws.numel(), dtype=torch.bool, device=mask.device)
    drop[torch.topk(ws, k, largest=False, sorted=False).indices] = True
    drop = drop.reshape(R, G, m)
    after = active & ~drop
    deficit = drop.sum(-1, keepdim=True)
    if g is None:
        gs = torch.rand(R, G, m, generator=generator).to(mask.device)
    else:
        gs = grouped(g.abs(), 0.0).to(torch.float64)
    gs = gs.masked_fill(drop, -1.0)          # back only if nothing else is free
    gs = gs.masked_fill(after, -math.inf)    # already active
    if pad:
        real = torch.ones(G * m, dtype=torch.bool, device=mask.device)
        real[K:] = False
        gs = gs.masked_fill(~real.reshape(G, m), -math.inf)
    order = torch.argsort(gs, dim=-1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(m, device=mask.device).expand_as(order))
    take = ranks < deficit
    new = (after | take).reshape(R, G * m)[:, :K]
    grown = (take & ~drop).reshape(R, G * m)[:, :K]
    mask.copy_(new)
    return grown


class DynamicSparsifier(BaseSparsifier):
    """Dynamic sparse training: every ``update_every`` optimizer steps, drop
    the smallest-magnitude weights and regrow as many where the dense
    gradient is largest (RigL: Evci, Gale, Menick, Castro and Elsen, "Rigging
    the Lottery: Making All Tickets Winners", ICML 2020).

    A :class:`torch.ao.pruning.BaseSparsifier`: ``prepare(model, config)``,
    then ``optimizer.step(); sparsifier.step()`` every iteration,
    ``squash_mask()`` at the end; ``state_dict()``/``load_state_dict()``.

    Parameters
    ----------
    sparsity : float in [0, 1), default=0.9
        Fraction of zero weights per tensor (unstructured and block); with
        ``nm`` the pattern fixes it.
    nm : (int, int) or None
        Keep every group of ``m`` consecutive inputs at ``n`` weights; the
        pattern is valid after every step (prune and regrow stay inside each
        group).
    block_shape : (int, int) or None
        Prune and regrow whole ``r x c`` blocks.
    update_every : int, default=100
        Steps between mask updates.
    update_ratio : float in (0, 1], default=0.3
        Fraction of the stored weights replaced at an update (``alpha`` in RigL).
    schedule : {"cosine", "constant"}, default="cosine"
        Cosine decay of the ratio to 0 at ``total_steps``
        (``alpha/2 (1 + cos(pi t / T))``); no updates after ``total_steps``.
    total_steps : int, optional
        Needed by the cosine schedule (RigL stops at 75 % of training).
    prune : {"magnitude"}
    grow : {"gradient", "random"}
        "gradient": the dense gradient of the minibatch before the update
        (computed on that step only: the layers keep their sparse backward
        otherwise); "random": uniformly among the inactive weights (SET).
    random_state : int or None
        Seed for random growth.

    Notes
    -----
    Targets are ``nn.Linear`` weights (a mask parametrization, as torch.ao
    does) and sparsecore's :class:`NMSparseLinear` / :class:`BlockSparseLinear`
    (their own mask is updated, their sparse kernels keep running). Regrown
    weights start at zero, and ``step()`` zeroes the weights outside the masks
    (which optimizer momentum or weight decay would otherwise move).
    ``config=None`` targets every such layer.
    """

    def __init__(self, sparsity=0.9, nm=None, update_every=100, update_ratio=0.3,
                 schedule="cosine", prune="magnitude", grow="gradient", *, total_steps=None,
                 block_shape=None, random_state=None):
        if not isinstance(sparsity, numbers.Real) or not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
        if nm is not None:
            try:
                nm = tuple(nm)
                NMPattern.of(*nm)
            except TypeError:
                raise TypeError(f"nm must be an (n, m) pair or None, got {nm!r}") from None
        if block_shape is not None:
            block_shape = tuple(BlockShape.of(block_shape))
        if nm is not None and block_shape is not None:
            raise ValueError("give nm or block_shape, not both")
        if (not isinstance(update_every, numbers.Integral) or isinstance(update_every, bool)
                or update_every < 1):
            raise ValueError(f"update_every must be a positive int, got {update_every!r}")
        if not isinstance(update_ratio, numbers.Real) or not 0 < update_ratio <= 1:
            raise ValueError(f"update_ratio must be in (0, 1], got {update_ratio!r}")
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
        if prune not in _PRUNE:
            raise ValueError(f"prune must be one of {_PRUNE}, got {prune!r}")
        if grow not in _GROW:
            raise ValueError(f"grow must be one of {_GROW}, got {grow!r}")
        if schedule == "cosine":
            if total_steps is None:
                raise ValueError("schedule='cosine' needs total_steps (the step at which "
                                 "updates stop); or use schedule='constant'")
        if total_steps is not None and (not isinstance(total_steps, numbers.Integral)
                                        or total_steps < 1):
            raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
        defaults = {"sparsity": float(sparsity), "nm": nm, "block_shape": block_shape}
        super().__init__(defaults)
        self.update_every = int(update_every)
        self.update_ratio = float(update_ratio)
        self.schedule = schedule
        self.total_steps = None if total_steps is None else int(total_steps)
        self.prune = prune
        self.grow = grow
        self.random_state = random_state
        self.step_count = 0
        self.history = []
        self._generator = torch.Generator()
        if random_state is not None:
            self._generator.manual_seed(int(random_state))

    # ---------------------------------------------------------- preparation
    def make_config_from_model(self, model, SUPPORTED_MODULES=None):
        """Target every ``nn.Linear``, :class:`NMSparseLinear` and
        :class:`BlockSparseLinear` weight of ``model`` (``config=None``).

        Parameters
        ----------
        model : torch.nn.Module
        SUPPORTED_MODULES : ignored
            Kept for the signature of ``BaseSparsifier``.
        """
        self.config = [{"tensor_fqn": f"{name}.weight"} for name, mod in model.named_modules()
                       if type(mod) in (nn.Linear, NMSparseLinear, BlockSparseLinear)]

    def _prepare(self, *args, **kwargs):
        for config in self.groups:
            module = config["module"]
            name = config["tensor_name"]
            fqn = config["tensor_fqn"]
            if isinstance(module, (NMSparseLinear, BlockSparseLinear)):
                mask = self._layer_mask(module, config)
                parametrization = _LayerMask(mask)
            elif isinstance(module, nn.Linear) and name == "weight":
                mask = self._initial_mask(module.weight.detach(), config, fqn)
                parametrization = _DynamicMask(mask)
            else:
                raise TypeError(
                    f"{fqn}: DynamicSparsifier handles the weight of nn.Linear, "
                    f"NMSparseLinear and BlockSparseLinear layers, got "
                    f"{type(module).__name__}.{name}"
                )
            self.state[fqn]["mask"] = mask
            parametrize.register_parametrization(module, name, parametrization)
            if isinstance(parametrization, _DynamicMask):
                with torch.no_grad():
                    module.parametrizations[name].original.mul_(mask)
        self._request_dense_grads()

    def _layer_mask(self, module, config):
        fqn = config["tensor_fqn"]
        if isinstance(module, NMSparseLinear):
            if config["block_shape"] is not None:
                raise ValueError(f"{fqn} is an NMSparseLinear; block_shape does not apply")
            nm = config["nm"]
            if nm is not None and tuple(nm) != (module.n, module.m):
                raise ValueError(f"{fqn} is {module.pattern} but the sparsifier asks for "
                                 f"{nm[0]}:{nm[1]}")
            config["nm"] = (module.n, module.m)
            return module.mask
        if config["nm"] is not None:
            raise ValueError(f"{fqn} is a BlockSparseLinear; nm does not apply")
        config["block_shape"] = tuple(module.block_shape)
        return module.block_mask

    def _initial_mask(self, w, config, fqn):
        wc = w.cpu().float().numpy()
        if config["nm"] is not None:
            n, m = config["nm"]
            return torch.from_numpy(nm_prune(wc, n, m).mask()).to(w.device)
        if config["block_shape"] is not None:
            r, c = config["block_shape"]
            if w.shape[0] % r or w.shape[1] % c:
                raise ValueError(f"{fqn}: block_shape {(r, c)} does not divide the weight "
                                 f"shape {tuple(w.shape)}")
            S = block_prune(wc, (r, c), 1 - config["sparsity"])
            return torch.from_numpy(S.mask()).to(w.device)
        return _uniform_mask(w, config["sparsity"])

    # --------------------------------------------------------------- steps
    def _ratio(self, t):
        if self.total_steps is not None and t >= self.total_steps:
            return 0.0
        if self.schedule == "constant":
            return self.update_ratio
        return self.update_ratio / 2 * (1 + math.cos(math.pi * t / self.total_steps))

    def _is_update(self, t):
        return t > 0 and t % self.update_every == 0 and self._ratio(t) > 0

    def _sink(self, config):
        module = config["module"]
        if isinstance(module, (NMSparseLinear, BlockSparseLinear)):
            return module
        return module.parametrizations[config["tensor_name"]][0]

    def _request_dense_grads(self):
        want = self.grow == "gradient" and self._is_update(self.step_count + 1)
        for config in self.groups:
            sink = self._sink(config)
            sink.want_dense_grad = want
            if not want:
                sink.dense_grad = None

    def step(self, use_path=True):
        """Count an optimizer step; update the masks when one is due.

        Parameters
        ----------
        use_path : bool, optional
            Unused; kept for the ``BaseSparsifier.step`` signature.
        """
        if not self.enable_mask_update:
            return
        self.step_count += 1
        t = self.step_count
        with torch.no_grad():
            if self._is_update(t):
                ratio = self._ratio(t)
                for config in self.groups:
                    self.update_mask(ratio=ratio, **config)
            self._zero_unstored()
        self._request_dense_grads()

    def _zero_unstored(self):
        """Zero the weights outside the masks. Their gradient is zero, but an
        optimizer with momentum (Adam, SGD with momentum) or weight decay
        keeps moving the weights just pruned; without this they drift from
        zero, and a later regrowth would not start them at zero."""
        for config in self.groups:
            module = config["module"]
            w = module.parametrizations[config["tensor_name"]].original
            mask = self.state[config["tensor_fqn"]]["mask"]
            if mask.shape != w.shape:       # BlockSparseLinear: the block mask
                r, c = config["block_shape"]
                mask = mask.repeat_interleave(r, 0).repeat_interleave(c, 1)
            w.mul_(mask.to(w.dtype))

    def update_mask(self, module, tensor_name, ratio=0.0, **kwargs):
        """Drop and regrow ``ratio`` of the stored weights of one tensor.

        Parameters
        ----------
        module : torch.nn.Module
            Module holding the tensor.
        tensor_name : str
            Name of the parametrized tensor.
        ratio : float, optional
            Fraction of the stored weights to drop and regrow.
        **kwargs
            The tensor's config (``tensor_fqn``, ``nm``, ``block_shape``, ...).
        """
        fqn = kwargs["tensor_fqn"]
        sink = self._sink({"module": module, "tensor_name": tensor_name})
        grad = None
        if self.grow == "gradient":
            grad = sink.dense_grad
            if grad is None:
                raise RuntimeError(
                    f"{fqn}: no dense gradient for the growth step {self.step_count}; "
                    f"call loss.backward() before optimizer.step() and sparsifier.step()"
                )
        w = module.parametrizations[tensor_name].original
        mask = self.state[fqn]["mask"]
        nnz_before = int(mask.sum())
        nm, bs = kwargs.get("nm"), kwargs.get("block_shape")
        if nm is not None:
            n, m = nm
            k = int(ratio * nnz_before)
            grown = _prune_grow_nm(mask, w, grad, n, m, k, self._generator)
            w[grown] = 0
        elif bs is not None:
            r, c = bs
            if mask.shape == w.shape:       # nn.Linear: entry mask made of whole blocks
                units = mask[::r, ::c].clone()
            else:                           # BlockSparseLinear: the block mask itself
                units = mask
            k = int(ratio * int(units.sum()))
            g = None if grad is None else _block_norms(grad, r, c)
            grown = _prune_grow_units(units, _block_norms(w.detach(), r, c), g, k,
                                      self._generator)
            full = grown.repeat_interleave(r, 0).repeat_interleave(c, 1)
            w[full] = 0
            if mask.shape == w.shape:
                mask.copy_(units.repeat_interleave(r, 0).repeat_interleave(c, 1))
        else:
            k = int(ratio * nnz_before)
            g = None if grad is None else grad.abs()
            grown = _prune_grow_units(mask, w.detach().abs(), g, k, self._generator)
            w[grown] = 0
        self.history.append({"step": self.step_count, "tensor_fqn": fqn, "ratio": ratio,
                             "grown": int(grown.sum()), "nnz": int(mask.sum())})
        sink.dense_grad = None

    # ---------------------------------------------------------------- state
    def state_dict(self):
        """The masks, the configuration and the step count.

        Returns
        -------
        dict
            torch.ao's sparsifier state with ``step_count`` added.
        """
        sd = super().state_dict()
        sd["step_count"] = self.step_count
        return sd

    def load_state_dict(self, state_dict, strict=True):
        """Load masks and step count into a sparsifier prepared on the same
        model; masks are checked (shape, bool, N:M validity) before any is
        written.

        Parameters
        ----------
        state_dict : dict
            As returned by ``state_dict()``.
        strict : bool, optional
            Raise on a tensor missing from the model (otherwise it is skipped).
        """
        if getattr(self, "model", None) is None:
            raise RuntimeError("call prepare(model, config) before load_state_dict")
        groups = copy.deepcopy(state_dict["groups"])
        states = state_dict["state"]
        plan = []
        for fqn, s in states.items():
            info = get_arg_info_from_tensor_fqn(self.model, fqn)
            if info["module"] is None:
                if strict:
                    raise RuntimeError(f"error loading {fqn}: no such module in the model")
                continue
            current = self.state.get(fqn, {}).get("mask")
            if current is None:
                raise RuntimeError(f"error loading {fqn}: this sparsifier was not prepared on it")
            mask = s.get("mask")
            if mask is not None:
                if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                    raise TypeError(f"state['{fqn}']['mask'] must be a bool tensor")
                if mask.shape != current.shape:
                    raise ValueError(f"state['{fqn}']['mask'] has shape {tuple(mask.shape)}, "
                                     f"expected {tuple(current.shape)}")
                group = next((g for g in groups if g["tensor_fqn"] == fqn), {})
                nm = group.get("nm")
                if nm is not None:
                    _check_nm_mask(mask, mask.shape[0], mask.shape[1], NMPattern.of(*nm),
                                   f"state['{fqn}']['mask']")
                plan.append((current, mask))
            for g in groups:
                if g["tensor_fqn"] == fqn:
                    g.update(info)
        for current, mask in plan:
            current.copy_(mask)
        for fqn, s in states.items():
            if fqn in self.state:
                s["mask"] = self.state[fqn]["mask"]
        self.__setstate__({"state": states, "groups": groups})
        self.step_count = int(state_dict.get("step_count", 0))
        self._request_dense_grads()

    def squash_mask(self, *args, **kwargs):
        """Bake the masks into the weights and remove the parametrizations
        (sparsecore layers keep their own mask).

        Parameters
        ----------
        *args
            Passed to ``BaseSparsifier.squash_mask``.
        **kwargs
            Passed to ``BaseSparsifier.squash_mask``.
        """
        for config in self.groups:
            sink = self._sink(config)
            sink.want_dense_grad = False
            sink.dense_grad = None
        super().squash_mask(*args, **kwargs)

    def sparsity_report(self):
        """Per tensor: stored weights and the fraction of zeros.

        Returns
        -------
        dict
            Per tensor name: ``{'nnz': int, 'sparsity': float}``.
        """
        out = {}
        for config in self.groups:
            fqn = config["tensor_fqn"]
            mask = self.state[fqn]["mask"]
            nnz = int(mask.sum())
            if config.get("block_shape") is not None and mask.shape != \
                    config["module"].parametrizations[config["tensor_name"]].original.shape:
                r, c = config["block_shape"]
                nnz *= r * c
            total = config["module"].parametrizations[config["tensor_name"]].original.numel()
            out[fqn] = {"nnz": nnz, "sparsity": 1 - nnz / total}
        return out

