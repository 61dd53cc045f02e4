"""Post-training pruning of the ``nn.Linear`` layers of a trained model.

One driver serves every method: calibration batches run through the model
with forward hooks on the selected layers, which accumulate a summary of each
layer's input (never the activations themselves): the squared column norms
``sum_t x_tj^2`` for Wanda, the Gram matrix ``X^T X`` for SparseGPT. The
layers are pruned group by group in the order the model calls them (a group
is one block of a ``ModuleList`` of blocks, e.g. one transformer layer, or a
single layer outside such a list), and each group's statistics are gathered
with the earlier groups already pruned, as in the SparseGPT and Wanda
reference implementations.
"""
import copy
import math
import numbers
import sys
import time
from collections.abc import Mapping

import torch
from torch import nn

from sparsecore.torch._fuse import eval_mode, fuse_activations, run_batch
from sparsecore.torch._layers import (CompactBitmaskLinear, CompactBlockLinear,
                                      CompactNMLinear, as_linear, linear_features,
                                      linear_targets, parse_structure, prefers_bitmask)

__all__ = ["prune"]

_METHODS = ("magnitude", "wanda", "sparsegpt", "dsnot")
_DEFAULT_EXCLUDE = ("*classifier*", "*pooler*", "*lm_head*")


class _Stop(Exception):
    """Raised by a hook to end a calibration pass early."""


# ------------------------------------------------------------ patterns ----

def _parse_pattern(pattern, sparsity):
    """("nm", n, m) | ("block", r, c) | ("unstructured",), and the sparsity."""
    if isinstance(pattern, tuple) and len(pattern) == 2:
        pattern = f"{pattern[0]}:{pattern[1]}"
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str such as '2:4', '16x16' or 'unstructured', got "
                        f"{type(pattern).__name__}")
    if sparsity is not None and (not isinstance(sparsity, numbers.Real)
                                 or isinstance(sparsity, bool) or not 0 < sparsity < 1):
        raise ValueError(f"sparsity must be a number in (0, 1), got {sparsity!r}")
    kind = parse_structure(pattern)
    if kind is None and pattern.strip().lower() == "unstructured":
        kind = ("unstructured",)
    if kind is None:
        raise ValueError(
            f"pattern must be 'N:M' (N kept of every M consecutive inputs, 1 <= N < M <= 16), "
            f"'RxC' (blocks, each of 1, 2, 4, 8, 16, 32) or 'unstructured'; got {pattern!r}")
    if kind[0] == "nm":
        n, m = kind[1:]
        if sparsity is not None and not math.isclose(sparsity, 1 - n / m):
            raise ValueError(f"pattern {pattern!r} keeps {n} of every {m} weights (sparsity "
                             f"{1 - n / m:g}); it does not combine with sparsity={sparsity}")
        return kind, 1 - n / m
    if sparsity is None:
        raise ValueError(f"pattern {pattern!r} needs sparsity= (the fraction of weights "
                         f"removed, e.g. 0.5)")
    return kind, float(sparsity)


def _nm_mask(score, n, m):
    """Keep the ``n`` largest scores of every ``m`` consecutive columns
    (stable: among equal scores the lower column is kept)."""
    R, K = score.shape
    s = score.reshape(R, K // m, m)
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices[..., :n]
    keep = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, order, True)
    return keep.reshape(R, K)


def _lowest(score, k):
    """Boolean of the ``k`` lowest entries of a 1-D score (stable)."""
    out = torch.zeros(score.numel(), dtype=torch.bool)
    out[torch.sort(score, stable=True).indices[:k]] = True
    return out


def _row_mask(score, sparsity):
    """Per row, prune the ``floor(sparsity * cols)`` lowest scores."""
    R, K = score.shape
    k = int(sparsity * K)
    order = torch.sort(score, dim=1, stable=True).indices[:, :k]
    return torch.ones_like(score, dtype=torch.bool).scatter_(1, order, False)


def _block_mask(score, r, c, sparsity):
    """Keep the blocks of largest summed score, ``round((1 - sparsity) * blocks)``
    of them (at least one); returns the (R/r, K/c) block map."""
    R, K = score.shape
    bs = score.reshape(R // r, r, K // c, c).sum(dim=(1, 3)).flatten()
    keep = max(1, int(round((1 - sparsity) * bs.numel())))
    return ~_lowest(bs, bs.numel() - keep).reshape(R // r, K // c)


def _expand(block_mask, r, c):
    return block_mask.repeat_interleave(r, 0).repeat_interleave(c, 1)


# ------------------------------------------------------------- methods ----

def _score_mask(W, score, kind, sparsity, layer_wide):
    if kind[0] == "nm":
        return _nm_mask(score, kind[1], kind[2]), None
    if kind[0] == "block":
        bm = _block_mask(score, kind[1], kind[2], sparsity)
        return _expand(bm, kind[1], kind[2]), bm
    if layer_wide:
        flat = score.flatten()
        return ~_lowest(flat, int(sparsity * flat.numel())).reshape(score.shape), None
    return _row_mask(score, sparsity), None


def _sparsegpt(W, H, kind, sparsity, blocksize=128, percdamp=0.01):
    """SparseGPT (Frantar and Alistarh, ICML 2023, Algorithm 1): prune the
    columns left to right, choosing the mask from the OBS saliency
    ``w^2 / [H^-1]_jj`` of the not yet updated weights and spreading each
    pruned weight's error over the later columns through the Cholesky factor
    of the damped inverse Hessian; updates are applied lazily per block of
    columns. Returns the updated weight and its mask."""
    W = W.double().clone()
    H = H.double().clone()
    R, K = W.shape
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    damp = percdamp * torch.diagonal(H).mean()
    H.diagonal().add_(damp)
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    U = torch.linalg.cholesky(Hinv, upper=True)
    keep = torch.ones(R, K, dtype=torch.bool)
    step = kind[2] if kind[0] in ("nm", "block") else 1
    blocksize = max(step, blocksize // step * step)
    for i1 in range(0, K, blocksize):
        i2 = min(i1 + blocksize, K)
        W1 = W[:, i1:i2].clone()
        U1 = U[i1:i2, i1:i2]
        d1 = torch.diagonal(U1)
        E1 = torch.zeros_like(W1)
        k1 = torch.ones_like(W1, dtype=torch.bool)
        if kind[0] == "unstructured":
            # adaptive mask: the sparsity holds per column block, not per row
            sal = (W1 ** 2 / d1 ** 2).flatten()
            k1 = ~_lowest(sal, int(sparsity * sal.numel())).reshape(W1.shape)
        elif kind[0] == "block":
            # the same for r x c blocks, scored by their summed saliency
            sal = W1 ** 2 / d1 ** 2
            k1 = _expand(_block_mask(sal, kind[1], kind[2], sparsity), kind[1], kind[2])
        for i in range(i2 - i1):
            if kind[0] == "nm" and i % step == 0:
                sal = W1[:, i:i + step] ** 2 / d1[i:i + step] ** 2
                k1[:, i:i + step] = _nm_mask(sal, kind[1], kind[2])
            w = W1[:, i]
            q = torch.where(k1[:, i], w, torch.zeros_like(w))
            err = (w - q) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            W1[:, i] = q
            E1[:, i] = err
        W[:, i1:i2] = W1
        keep[:, i1:i2] = k1
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return W * keep, keep


def _dsnot(W, keep, stats, kind, max_cycles=50, gamma=1.0, threshold=0.1):
    """DSnoT (Zhang et al., "Dynamic Sparse No Training: Training-Free
    Fine-tuning for Sparse LLMs", ICLR 2024): starting from ``keep``, swap a
    pruned and a kept weight of the same row (of the same group of M for
    N:M) while it shrinks the row's expected reconstruction error
    ``eps_i = sum_{j pruned} W_ij E[x_j]``. The regrown weight is the pruned
    one whose ``W_ij E[x_j] / Var(x_j)^gamma`` pulls ``eps_i`` most towards
    zero; the weight pruned in exchange has the sign that also pulls it
    towards zero (any sign for N:M) and the lowest Wanda score. Weights are
    not changed. As in the authors' implementation, a row swaps once per
    cycle until ``|eps_i|`` falls to ``threshold`` in units of the mean
    sequence length times the mean input (0.1, their default), or after
    ``max_cycles``; under N:M a swap that would flip the sign of ``eps_i`` is
    rejected and ends the row."""
    W = W.double()
    keep = keep.clone()
    R, K = W.shape
    mean = stats.sum / max(stats.tokens, 1)
    var = (stats.sq / max(stats.tokens, 1) - mean ** 2).clamp_min(1e-12)
    c = W * mean[None, :]
    grow_score = c / var[None, :] ** gamma
    wanda = W.abs() * stats.sq.sqrt()[None, :]
    eps = (c * ~keep).sum(1)
    # eps is per token here; the threshold is per sequence length of tokens
    tol = threshold * max(stats.seqs, 1) / max(stats.tokens, 1)
    active = eps.abs() > tol
    rows = torch.arange(R)
    inf = torch.tensor(math.inf, dtype=torch.float64)
    for _ in range(max_cycles):
        if not bool(active.any()):
            break
        sgn = torch.sign(eps)
        gs = torch.where(keep, -inf, grow_score * sgn[:, None])
        g_val, j_grow = gs.max(dim=1)
        if kind[0] == "nm":
            m = kind[2]
            start = j_grow // m * m
            cols = start[:, None] + torch.arange(m)[None, :]
            ws = torch.where(keep[rows[:, None], cols], wanda[rows[:, None], cols], inf)
            j_prune = start + ws.argmin(dim=1)
            p_ok = torch.isfinite(ws.min(dim=1).values)
        else:
            cand = keep & (c * sgn[:, None] < 0)
            ws = torch.where(cand, wanda, inf)
            p_val, j_prune = ws.min(dim=1)
            p_ok = torch.isfinite(p_val)
        new_eps = eps - c[rows, j_grow] + c[rows, j_prune]
        ok = active & (g_val > 0) & p_ok
        if kind[0] == "nm":
            ok &= torch.sign(new_eps) == sgn     # a swap may not flip the error's sign
        idx = rows[ok]
        keep[idx, j_grow[ok]] = True
        keep[idx, j_prune[ok]] = False
        eps = torch.where(ok, new_eps, eps)
        active &= ok & (eps.abs() > tol)
    return keep


# ----------------------------------------------------------- the driver ----

class _Stats:
    """Running input summary of one layer (sum of squares or Gram matrix)."""

    def __init__(self, in_features, gram):
        self.sq = torch.zeros(in_features, dtype=torch.float64)
        self.sum = torch.zeros(in_features, dtype=torch.float64)
        self.H = torch.zeros(in_features, in_features, dtype=torch.float64) if gram else None
        self.tokens = 0
        self.seqs = 0

    def add(self, x, seqs=None):
        """Accumulate the rows of ``x`` (``seqs`` sequences: by default one
        per leading index, or per row of a 2-D ``x``)."""
        if seqs is None:
            seqs = int(math.prod(x.shape[:-2])) if x.dim() >= 3 else x.shape[0]
        self.seqs += seqs
        x = x.detach().reshape(-1, x.shape[-1])
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()
        self.sq += (x * x).sum(0).double()
        self.sum += x.sum(0).double()
        if self.H is not None:
            self.H += (x.T @ x).double()
        self.tokens += x.shape[0]


def _groups(model, names, order):
    """Targets grouped by the block (child of a ModuleList) that holds them,
    groups in call order."""
    lists = [(ln, lm) for ln, lm in model.named_modules() if isinstance(lm, nn.ModuleList)]
    best, best_count = None, 0
    for ln, lm in lists:
        prefixes = [f"{ln}.{i}." if ln else f"{i}." for i in range(len(lm))]
        count = sum(any(n.startswith(p) for n in names) for p in prefixes)
        if count > best_count:
            best, best_count = (ln, prefixes), count
    key = {}
    for n in names:
        key[n] = n
        if best is not None:
            for p in best[1]:
                if n.startswith(p):
                    key[n] = p[:-1]
    groups = {}
    for n in sorted(names, key=lambda n: order.get(n, math.inf)):
        groups.setdefault(key[n], []).append(n)
    return list(groups.items())


class _Progress:
    def __init__(self, total, verbose):
        self.bar = None
        self.total = total
        self.verbose = verbose
        self.t0 = time.perf_counter()
        if verbose:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="prune", unit="group", file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, i, name, n_layers):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(name)
            self.bar.update(1)
            return
        tty = getattr(sys.stderr, "isatty", lambda: False)()
        start, end = ("\r", "\n" if i == self.total else "") if tty else ("", "\n")
        sys.stderr.write(f"{start}prune: {i}/{self.total} groups ({name}: {n_layers} layer(s)), "
                         f"{time.perf_counter() - self.t0:.1f} s{end}")
        sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def prune(model, calibration=None, pattern="2:4", method="wanda", *, sparsity=None,
          include="*", exclude=_DEFAULT_EXCLUDE, forward=None, blocksize=128,
          percdamp=0.01, fuse=True, inplace=False, verbose=1):
    """Prune the ``nn.Linear`` layers of a trained model (and transformers'
    ``Conv1D``, GPT-2's linear layers) without retraining and return it with
    compact sparse layers.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model (left unchanged unless ``inplace``).
    calibration : iterable of batches, optional
        Inputs the model is run on to measure each layer's input statistics
        (e.g. 128 sequences of real text). A batch is a Tensor
        (``model(batch)``), a tuple (``model(*batch)``) or a mapping of keyword
        arguments such as a tokenizer's output (``model(**batch)``); a
        mapping's ``"attention_mask"`` of shape
        (batch, length) excludes padded tokens from the statistics. Needed by
        "wanda" and "sparsegpt"; "magnitude" ignores it.
    pattern : str, default="2:4"
        "N:M": keep N of every M consecutive inputs of each output (the
        convention of :class:`sparsecore.formats.NMSparseMatrix`; the Wanda
        and SparseGPT code bases write the number *pruned* first, which
        agrees for 2:4 and 4:8 only). "RxC": R x C blocks (each of 1, 2, 4,
        8, 16, 32). "unstructured".
    method : {"wanda", "sparsegpt", "magnitude", "dsnot"}, default="wanda"
        "magnitude": keep the largest ``|W|`` (per group of M for N:M, per layer
        otherwise; no calibration). "wanda" (Sun, Liu, Bair and Kolter, "A
        Simple and Effective Pruning Approach for Large Language Models",
        2023): score ``|W_ij| * ||X_j||_2``, compared per output row, no
        weight update. "sparsegpt" (Frantar and Alistarh, "SparseGPT: Massive
        Language Models Can Be Accurately Pruned in One-Shot", ICML 2023):
        OBS mask selection and reconstruction of the kept weights from the
        Cholesky factor of the damped inverse Hessian ``X^T X``. "dsnot"
        (Zhang et al., "Dynamic Sparse No Training", ICLR 2024): the Wanda
        mask, then swaps of pruned and kept weights within each row (each
        group of M for N:M) that shrink the row's expected output error, no
        weight update; "N:M" and "unstructured" only.
    sparsity : float in (0, 1), optional
        Fraction of weights removed; required for "RxC" and "unstructured",
        implied by "N:M" (given, it must equal ``1 - N/M``).
    include, exclude : str or sequence of str
        ``fnmatch`` patterns on qualified module names. By default every
        Linear is pruned except names matching ``*classifier*``,
        ``*pooler*`` or ``*lm_head*``.
    forward : callable, optional
        ``forward(model, batch)`` runs one batch. Without it a mapping goes
        whole to a forward with one required parameter that is not among its
        keys (a sentence-transformers model's ``forward(input)``), as keyword
        arguments to any other.
    blocksize : int, default=128
        SparseGPT's column block for lazy batch updates.
    percdamp : float, default=0.01
        SparseGPT's damping, a fraction of the mean diagonal of ``X^T X``.
    fuse : bool, default=True
        Then move each activation that directly follows a pruned layer into
        the layer's kernel (:func:`fuse_activations`, checked on the first
        calibration batch; needs ``calibration``, for "magnitude" too).
    inplace : bool, default=False
        Prune ``model`` itself instead of a deep copy.
    verbose : int, default=1
        0: silent; otherwise a progress bar on stderr (tqdm when installed).

    Returns
    -------
    torch.nn.Module
        The pruned model: every selected Linear replaced by a
        :class:`CompactNMLinear` ("N:M"), :class:`CompactBlockLinear`
        ("RxC") or, "unstructured", a :class:`CompactBitmaskLinear` (row
        bitmask) when at least 40 % of the weights are kept, else 1 x 1
        blocks (CSR), which are faster at lower densities.

    Notes
    -----
    Layers are processed group by group in call order; a group is one child
    of the ``ModuleList`` holding most selected layers (a transformer block),
    or a single Linear outside it. All layers of a group are scored from one
    pass with the group still dense, and later groups see the pruned earlier
    ones. A pass stops after the group it measures. Statistics are
    accumulated in float64, so the result does not depend on how the
    calibration data is batched beyond rounding, and is deterministic (ties
    keep the lower index).

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import prune
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
    ...                             torch.nn.Linear(32, 4))
    >>> calib = [torch.randn(64, 16) for _ in range(4)]
    >>> pruned = prune(model, calib, "2:4", "wanda", verbose=0)
    >>> [type(m).__name__ for m in pruned]   # the ReLU moved into the first layer
    ['CompactNMLinear', 'Identity', 'CompactNMLinear']
    >>> pruned[0].activation
    'relu'
    >>> type(model[0]).__name__          # the input model is unchanged
    'Linear'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    kind, sp = _parse_pattern(pattern, sparsity)
    if method == "dsnot" and kind[0] == "block":
        raise ValueError("method='dsnot' swaps single weights; it does not combine with a "
                         "block pattern (use 'N:M' or 'unstructured')")
    if not isinstance(blocksize, numbers.Integral) or blocksize < 1:
        raise ValueError(f"blocksize must be a positive int, got {blocksize!r}")
    if not isinstance(percdamp, numbers.Real) or not percdamp > 0:
        raise ValueError(f"percdamp must be a positive number, got {percdamp!r}")
    if forward is not None and not callable(forward):
        raise TypeError(f"forward must be callable, got {type(forward).__name__}")
    targets = linear_targets(model, include, exclude)
    if not targets:
        raise ValueError(f"no nn.Linear (or transformers Conv1D) of the model matches "
                         f"include={include!r} and exclude={exclude!r}")
    names = [name for name, _ in targets]
    for name, lin in targets:
        n_in, n_out = linear_features(lin)
        if lin.weight.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"layer {name!r} has dtype {lin.weight.dtype}; float32 or float64 "
                            f"is needed")
        if kind[0] == "nm" and n_in % kind[2]:
            raise ValueError(f"layer {name!r} has in_features={n_in}, not a multiple "
                             f"of M={kind[2]} of pattern {pattern!r}")
        if kind[0] == "block" and (n_out % kind[1] or n_in % kind[2]):
            raise ValueError(f"layer {name!r} of shape (out, in) = {(n_out, n_in)} is not a "
                             f"whole number of {kind[1]}x{kind[2]} blocks")
    batches = None
    if method != "magnitude":
        if calibration is None:
            raise ValueError(f"method={method!r} needs calibration data")
        if isinstance(calibration, (torch.Tensor, Mapping)):
            raise TypeError("calibration must be an iterable of batches (e.g. a list of "
                            "tensors or of dicts), not a single batch; wrap it in a list")
        batches = list(calibration)
        if not batches:
            raise ValueError("calibration is empty")
        for i, b in enumerate(batches):
            if isinstance(b, Mapping) and "attention_mask" in b:
                am = b["attention_mask"]
                if not isinstance(am, torch.Tensor) or am.dim() != 2:
                    raise ValueError(f"calibration[{i}]['attention_mask'] must be a 2-D "
                                     f"(batch, length) tensor")

    # the batch that checks the activation fusion ("magnitude" takes no
    # statistics, but a list of batches given to it still serves here)
    fuse_batch = None
    if fuse and batches is not None:
        fuse_batch = batches[0]
    elif fuse and isinstance(calibration, (list, tuple)) and calibration:
        fuse_batch = calibration[0]
    if not inplace:
        model = copy.deepcopy(model)
    # each replaced layer's own train/eval mode, for its compact successor
    modes = {name: model.get_submodule(name).training for name in names}
    with eval_mode(model):
        order = _call_order(model, names, batches, forward)  # checks the batches
        for name in names:  # transformers Conv1D (GPT-2) as the Linear it computes
            _set_module(model, name, as_linear(model.get_submodule(name)))
        groups = _groups(model, names, order)
        pruned = {}
        progress = _Progress(len(groups), verbose)
        try:
            for gi, (gname, members) in enumerate(groups, 1):
                stats = (_measure(model, members, gname, batches, forward, method)
                         if batches is not None else None)
                for name in members:
                    lin = model.get_submodule(name)
                    pruned[name] = _prune_layer(lin, None if stats is None else stats[name],
                                                kind, sp, method, blocksize, percdamp)
                    # later groups are measured through a dense Linear holding
                    # the pruned weight (BLAS is quicker than re-dispatching
                    # each calibration batch to the sparse kernel here)
                    _set_module(model, name, pruned[name][0])
                progress.update(gi, gname, len(members))
        finally:
            progress.close()
        for name, (src, keep, bm) in pruned.items():
            _set_module(model, name, _compact_layer(src, kind, keep, bm).to(
                src.weight.device))
        if fuse_batch is not None:
            fuse_activations(model, fuse_batch, forward=forward, inplace=True)
    for name, mode in modes.items():
        model.get_submodule(name).training = mode
    return model


def _call_order(model, names, batches, forward):
    """The order in which the model calls the target layers (one forward of
    the first calibration batch, which also checks that the batches fit)."""
    if batches is None:
        return {n: i for i, n in enumerate(names)}
    order = {}
    hooks = []
    for name in names:
        def hook(mod, args, name=name):
            order.setdefault(name, len(order))
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            run_batch(model, batches[0], forward)
    except Exception as exc:
        raise ValueError(f"the model cannot run calibration[0] ({type(exc).__name__}: {exc}); "
                         f"check the batches' shapes, or pass forward=") from exc
    finally:
        for h in hooks:
            h.remove()
    return order


def _measure(model, members, gname, batches, forward, method):
    stats = {}
    mask_now = [None]
    hooks = []

    def make_hook(name):
        def hook(mod, args):
            x = args[0]
            am = mask_now[0]
            seqs = int(math.prod(x.shape[:-2])) if x.dim() >= 3 else x.shape[0]
            if am is not None and tuple(x.shape[:-1]) == tuple(am.shape):
                x = x[am.bool()]
            stats[name].add(x, seqs)
        return hook

    for name in members:
        lin = model.get_submodule(name)
        stats[name] = _Stats(lin.in_features, method == "sparsegpt")
        hooks.append(lin.register_forward_pre_hook(make_hook(name)))
    stop_at = model.get_submodule(gname)

    def stop(mod, args, out):
        raise _Stop

    hooks.append(stop_at.register_forward_hook(stop))
    try:
        with torch.no_grad():
            for b in batches:
                mask_now[0] = b.get("attention_mask") if isinstance(b, Mapping) else None
                try:
                    run_batch(model, b, forward)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return stats


def _prune_layer(lin, stats, kind, sp, method, blocksize, percdamp):
    W = lin.weight.detach().cpu()
    Wd = W.double()
    if method == "sparsegpt":
        Wn, keep = _sparsegpt(Wd, stats.H, kind, sp, blocksize, percdamp)
        bm = None
        if kind[0] == "block":
            r, c = kind[1], kind[2]
            bm = keep.reshape(W.shape[0] // r, r, W.shape[1] // c, c)[:, 0, :, 0]
    else:
        if method == "magnitude":
            score = Wd.abs() if kind[0] != "block" else Wd ** 2
        else:
            score = Wd.abs() * stats.sq.sqrt()[None, :]
        keep, bm = _score_mask(Wd, score, kind, sp, layer_wide=(method == "magnitude"))
        if method == "dsnot":
            keep = _dsnot(Wd, keep, stats, kind)
        Wn = Wd * keep
    src = nn.Linear(lin.in_features, lin.out_features, bias=lin.bias is not None,
                    dtype=W.dtype)
    with torch.no_grad():
        src.weight.copy_(Wn.to(W.dtype))
        if lin.bias is not None:
            src.bias.copy_(lin.bias.detach().cpu())
    return src.to(lin.weight.device), keep, bm


def _compact_layer(src, kind, keep, bm):
    if kind[0] == "nm":
        return CompactNMLinear.from_dense(src, kind[1], kind[2], mask=keep)
    if kind[0] == "block":
        return CompactBlockLinear.from_dense(src, (kind[1], kind[2]), mask=bm)
    if prefers_bitmask(int(keep.sum()), keep.numel()):
        return CompactBitmaskLinear.from_dense(src, mask=keep)
    return CompactBlockLinear.from_dense(src, (1, 1), mask=keep)


def _set_module(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
