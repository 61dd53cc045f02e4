"""Recovery fine-tuning of a pruned model by distillation from its dense
original, with the sparsity pattern fixed.

The student (the pruned model) is trained to reproduce the teacher's (the
dense model's) outputs on calibration inputs, and optionally the outputs of
its blocks (the per-layer hidden states), as in the sparse fine-tuning
recipes of Kurtic, Kuznedelev, Frantar, Goin and Alistarh, "Sparse
Fine-tuning for Inference Acceleration of Large Language Models" (2023,
arXiv 2310.06927: "SquareHead" distillation, a per-layer mean squared error
normalised by the teacher's variance) and of Sanh, Wolf and Rush, "Movement
Pruning" (NeurIPS 2020) / Kurtic et al., "The Optimal BERT Surgeon" (EMNLP
2022), which fine-tune pruned BERT models with a distillation loss and fixed
masks. Sparse layers keep their stored positions: the compact layers train
only their stored values (the gradient is the SDDMM at the kept positions),
the masked training forms keep their masks, so forward and backward run
through sparsecore's sparse operators.
"""
import copy
import fnmatch
import math
import numbers
import sys
import time
from collections.abc import Mapping

import torch
from torch import nn

from sparsecore.torch._fuse import run_batch
from sparsecore.torch._layers import (
    BlockSparseLinear,
    CompactBitmaskLinear,
    CompactBlockLinear,
    CompactNMLinear,
    MonarchLinear,
    NMSparseLinear,
    _MaskedLinear,
)

__all__ = ["recover"]

_LOSSES = ("mse", "cosine")
_SPARSE = (CompactNMLinear, CompactBlockLinear, CompactBitmaskLinear, NMSparseLinear,
           BlockSparseLinear, MonarchLinear)


def _first_tensor(out, what):
    """The tensor to match in a model's output: the output itself, else its
    ``logits``, ``last_hidden_state`` or ``sentence_embedding`` (attribute or
    key), else the first tensor of a tuple or list."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state", "sentence_embedding"):
        v = out.get(key) if isinstance(out, Mapping) else getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    if isinstance(out, (tuple, list)):
        for v in out:
            if isinstance(v, torch.Tensor):
                return v
    raise TypeError(f"{what} returned {type(out).__name__}, in which no tensor to match was "
                    f"found; pass output= to pick it")


def _block_names(model):
    """Children of the ModuleList holding the most sparse layers (the
    transformer blocks), in order."""
    sparse = [n for n, m in model.named_modules() if isinstance(m, _SPARSE)]
    best, best_count = [], 0
    for ln, lm in model.named_modules():
        if not isinstance(lm, nn.ModuleList):
            continue
        prefixes = [f"{ln}.{i}" if ln else f"{i}" for i in range(len(lm))]
        count = sum(any(n.startswith(p + ".") for n in sparse) for p in prefixes)
        if count > best_count:
            best, best_count = prefixes, count
    return best


def _tokens(t, mask):
    """The rows of ``t`` (…, d) at the tokens kept by ``mask`` (a 2-D
    attention mask matching t's leading dims), flattened to (tokens, d)."""
    if t.dim() == 1:
        t = t[None, :]
    if mask is not None and tuple(t.shape[:-1]) == tuple(mask.shape):
        return t[mask]
    return t.reshape(-1, t.shape[-1])


def _distance(s, t, loss):
    """Normalised MSE (SquareHead: MSE over the teacher's variance) or mean
    cosine distance between the student's rows ``s`` and the teacher's ``t``."""
    s = s.float() if s.dtype not in (torch.float32, torch.float64) else s
    t = t.to(s.dtype)
    if s.shape[0] == 0:
        return s.sum() * 0.0
    if loss == "mse":
        var = t.var(unbiased=False).clamp_min(torch.finfo(t.dtype).tiny)
        return (s - t).pow(2).mean() / var
    return (1.0 - nn.functional.cosine_similarity(s, t, dim=-1, eps=1e-12)).mean()


class _Capture:
    """Forward hooks keeping the first tensor output of named modules."""

    def __init__(self, model, names):
        self.out = {}
        self.handles = []
        for name in names:
            def hook(mod, args, out, name=name):
                self.out[name] = _first_tensor(out, f"module {name!r}")
            self.handles.append(model.get_submodule(name).register_forward_hook(hook))

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


class _Bar:
    def __init__(self, total, verbose):
        self.bar = None
        self.verbose = verbose
        self.total = total
        self.t0 = time.perf_counter()
        self.last = 0.0
        if verbose:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="recover", unit="step", file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, step, loss):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss={loss:.4g}")
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last >= 5.0 or step == self.total:
            self.last = now
            sys.stderr.write(f"recover: step {step}/{self.total}, loss {loss:.4g}, "
                             f"{now - self.t0:.1f} s\n")
            sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _check_positive(value, name, integer=False, allow_none=False, allow_zero=False):
    if value is None and allow_none:
        return None
    if integer:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok:
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if not (value >= 0 if allow_zero else value > 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value!r}")
    return value


def _names(arg, what):
    if isinstance(arg, str):
        return (arg,)
    try:
        names = tuple(arg)
    except TypeError:
        raise TypeError(f"{what} must be a str or a sequence of str, got "
                        f"{type(arg).__name__}") from None
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must hold str only")
    return names


def recover(model, teacher, data, *, steps=None, epochs=1, max_time=None, lr=1e-4,
            weight_decay=0.0, warmup=0.1, loss="mse", hidden_states=True, hidden_weight=1.0,
            output=None, forward=None, trainable="*", grad_clip=1.0, seed=0, inplace=False,
            verbose=1):
    """Fine-tune a pruned model with its sparsity pattern fixed, by
    distillation from the dense model it was pruned from.

    The student ``model`` is trained to reproduce the ``teacher``'s output on
    the batches of ``data`` (and, with ``hidden_states``, the outputs of its
    blocks), as in the "SquareHead" sparse fine-tuning of Kurtic et al.,
    "Sparse Fine-tuning for Inference Acceleration of Large Language Models"
    (2023, arXiv 2310.06927). The sparse layers keep their stored positions:
    :class:`CompactNMLinear`, :class:`CompactBlockLinear` and
    :class:`CompactBitmaskLinear` train their stored values only, :class:`NMSparseLinear` and
    :class:`BlockSparseLinear` keep their masks (and are re-masked after each
    step); forward and backward run through the sparse operators.

    Parameters
    ----------
    model : torch.nn.Module
        The pruned model (e.g. from :func:`prune`); left unchanged unless
        ``inplace``.
    teacher : torch.nn.Module
        The dense model, run without gradients in eval mode; never modified
        (its train/eval flags are restored).
    data : iterable of batches
        Calibration inputs, as for :func:`prune`: a Tensor (``model(batch)``),
        a tuple (``model(*batch)``) or a mapping of keyword arguments such as
        a tokenizer's output (``model(**batch)``). A mapping's 2-D
        ``"attention_mask"`` leaves padded tokens out of the loss.
    steps : int, optional
        Optimizer steps (one batch each), cycling over ``data``; default
        ``epochs * len(data)``.
    epochs : int, default=1
        Passes over ``data`` when ``steps`` is not given.
    max_time : float, optional
        Stop after the step during which this many seconds have passed. The
        learning rate then also decays to zero by this time (whichever of
        ``steps`` and ``max_time`` comes first), so a run cut by the clock
        ends annealed; its result depends on the machine's speed.
    lr : float, default=1e-4
        Peak learning rate of AdamW (Loshchilov and Hutter, ICLR 2019), with
        a linear warmup and a linear decay to zero at ``steps``.
    weight_decay : float, default=0.0
    warmup : float in [0, 1), default=0.1
        Fraction of ``steps`` spent warming up.
    loss : {"mse", "cosine"}, default="mse"
        Distance between the student's and the teacher's rows (tokens):
        "mse", the mean squared error divided by the variance of the
        teacher's values (SquareHead); "cosine", the mean of
        ``1 - cos(student, teacher)``.
    hidden_states : bool or sequence of str, default=True
        Also match the outputs of these modules (their first tensor output);
        True: every child of the ``ModuleList`` holding most of the sparse
        layers (the transformer blocks); False: the output only.
    hidden_weight : float, default=1.0
        Weight of the mean hidden-state loss added to the output loss.
    output : callable, optional
        ``output(model_output) -> Tensor`` picks what is matched (default:
        the output if a tensor, else its ``logits``, ``last_hidden_state``
        or ``sentence_embedding`` entry, else the first tensor of a tuple).
    forward : callable, optional
        ``forward(model, batch)`` runs one batch (as for :func:`prune`).
    trainable : str or sequence of str, default="*"
        ``fnmatch`` patterns on parameter names; the other parameters stay
        frozen. Parameters that do not require gradients are never trained.
    grad_clip : float or None, default=1.0
        Clip the gradient's global norm.
    seed : int, default=0
        Seeds the order of the batches (shuffled every pass) and any
        randomness inside the model; the global RNG state is restored.
        Stopped by ``steps``, the result is deterministic.
    inplace : bool, default=False
        Train ``model`` itself instead of a deep copy.
    verbose : int, default=1
        0: silent; otherwise a progress bar on stderr (tqdm when installed)
        showing the loss.

    Returns
    -------
    torch.nn.Module
        The fine-tuned student, with the same layers and sparsity pattern,
        in the train/eval mode it came in.

    Notes
    -----
    The student runs in eval mode (no dropout) while it trains. The loss of
    a step is ``d(out_s, out_t) + hidden_weight * mean_l d(h_s^l, h_t^l)``
    over the tokens of the batch. Dense ``nn.Linear`` layers of the student
    are trained densely (zeros in them may become nonzero); only sparsecore's
    sparse layers hold a fixed pattern.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import prune, recover
    >>> _ = torch.manual_seed(0)
    >>> dense = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(),
    ...                             torch.nn.Linear(32, 8))
    >>> calib = [torch.randn(64, 16) for _ in range(8)]
    >>> pruned = prune(dense, calib, "2:4", "wanda", verbose=0)
    >>> tuned = recover(pruned, dense, calib, epochs=5, lr=1e-2, hidden_states=False,
    ...                 verbose=0)
    >>> x = torch.randn(256, 16)
    >>> with torch.no_grad():
    ...     before = (pruned(x) - dense(x)).pow(2).mean()
    ...     after = (tuned(x) - dense(x)).pow(2).mean()
    >>> bool(after < before)
    True
    >>> torch.equal(tuned[0].mask, pruned[0].mask)        # the pattern is kept
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    if model is teacher:
        raise ValueError("model and teacher are the same module; pass the pruned model and "
                         "the dense model it came from")
    if isinstance(data, (torch.Tensor, Mapping)):
        raise TypeError("data must be an iterable of batches (e.g. a list of tensors or of "
                        "dicts), not a single batch; wrap it in a list")
    try:
        batches = list(data)
    except TypeError:
        raise TypeError(f"data must be an iterable of batches, got "
                        f"{type(data).__name__}") from None
    if not batches:
        raise ValueError("data is empty")
    for i, b in enumerate(batches):
        if isinstance(b, Mapping) and "attention_mask" in b:
            am = b["attention_mask"]
            if not isinstance(am, torch.Tensor) or am.dim() != 2:
                raise ValueError(f"data[{i}]['attention_mask'] must be a 2-D (batch, length) "
                                 f"tensor")
    _check_positive(epochs, "epochs", integer=True)
    steps = _check_positive(steps, "steps", integer=True, allow_none=True)
    if steps is None:
        steps = epochs * len(batches)
    _check_positive(max_time, "max_time", allow_none=True)
    _check_positive(lr, "lr")
    _check_positive(weight_decay, "weight_decay", allow_zero=True)
    _check_positive(warmup, "warmup", allow_zero=True)
    if warmup >= 1:
        raise ValueError(f"warmup must be in [0, 1), got {warmup!r}")
    _check_positive(hidden_weight, "hidden_weight", allow_zero=True)
    _check_positive(grad_clip, "grad_clip", allow_none=True)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    if output is not None and not callable(output):
        raise TypeError(f"output must be callable, got {type(output).__name__}")
    if forward is not None and not callable(forward):
        raise TypeError(f"forward must be callable, got {type(forward).__name__}")
    patterns = _names(trainable, "trainable")

    if hidden_states is True:
        layers = _block_names(model)
    elif hidden_states is False or hidden_states is None:
        layers = []
    else:
        layers = list(_names(hidden_states, "hidden_states"))
    student_mods = dict(model.named_modules())
    teacher_mods = dict(teacher.named_modules())
    for name in layers:
        for who, mods in (("model", student_mods), ("teacher", teacher_mods)):
            if name not in mods:
                raise ValueError(f"hidden_states names {name!r}, which is not a module of "
                                 f"the {who}")
    names = [n for n, p in model.named_parameters()
             if p.requires_grad and any(fnmatch.fnmatchcase(n, pt) for pt in patterns)]
    if not names:
        raise ValueError(f"no parameter of the model that requires grad matches "
                         f"trainable={trainable!r}")

    pick = output if output is not None else (lambda out: out)

    def run(m, batch, what):
        return _first_tensor(pick(run_batch(m, batch, forward)), what)

    teacher_flags = {mod: mod.training for mod in teacher.modules()}
    teacher.eval()
    try:
        # check that both models run the first batch and agree in shape,
        # before any copy or training
        try:
            with torch.no_grad():
                t0 = run(teacher, batches[0], "the teacher")
        except Exception as exc:
            raise ValueError(f"the teacher cannot run data[0] ({type(exc).__name__}: "
                             f"{exc}); check the batches, or pass forward=") from exc
        if not inplace:
            model = copy.deepcopy(model)
        student_flags = {mod: mod.training for mod in model.modules()}
        grad_flags = {n: p.requires_grad for n, p in model.named_parameters()}
        try:
            model.eval()
            params = []
            keep = set(names)
            for n, p in model.named_parameters():
                p.requires_grad_(n in keep)
                if n in keep:
                    params.append(p)
            with torch.no_grad():
                try:
                    s0 = run(model, batches[0], "the model")
                except Exception as exc:
                    raise ValueError(f"the model cannot run data[0] ({type(exc).__name__}: "
                                     f"{exc}); check the batches, or pass forward=") from exc
            if s0.shape != t0.shape:
                raise ValueError(f"the model's output has shape {tuple(s0.shape)} but the "
                                 f"teacher's {tuple(t0.shape)}; they must match")
            del s0, t0
            _train(model, teacher, batches, params, layers, steps, max_time, lr,
                   weight_decay, warmup, loss, hidden_weight, grad_clip, seed, run, verbose)
        finally:
            for n, p in model.named_parameters():
                p.requires_grad_(grad_flags.get(n, p.requires_grad))
                p.grad = None
            for mod, flag in student_flags.items():
                mod.training = flag
    finally:
        for mod, flag in teacher_flags.items():
            mod.training = flag
    return model


def _train(model, teacher, batches, params, layers, steps, max_time, lr, weight_decay,
           warmup, loss, hidden_weight, grad_clip, seed, run, verbose):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n_warm = int(warmup * steps)

    def factor(step, elapsed):
        if step < n_warm:
            f = (step + 1) / (n_warm + 1)
        else:
            f = max(0.0, (steps - step) / max(1, steps - n_warm))
        if max_time is not None:
            # the decay also reaches zero at max_time, so that a run cut by
            # the clock ends annealed, like one that ran all its steps
            f = min(f, max(0.0, (max_time - elapsed) / (max_time * (1 - warmup))))
        return f

    masked = [m for m in model.modules() if isinstance(m, _MaskedLinear)]
    gen = torch.Generator().manual_seed(int(seed))
    order = []
    cap_s = _Capture(model, layers)
    cap_t = _Capture(teacher, layers)
    bar = _Bar(steps, verbose)
    t_start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for step in range(steps):
                if not order:
                    order = torch.randperm(len(batches), generator=gen).tolist()
                batch = batches[order.pop(0)]
                f = factor(step, time.perf_counter() - t_start)
                for group in opt.param_groups:
                    group["lr"] = lr * f
                am = batch.get("attention_mask") if isinstance(batch, Mapping) else None
                am = None if am is None else am.bool()
                with torch.no_grad():
                    t_out = run(teacher, batch, "the teacher")
                    t_hid = {k: v for k, v in cap_t.out.items()}
                s_out = run(model, batch, "the model")
                total = _distance(_tokens(s_out, am), _tokens(t_out, am), loss)
                if layers and hidden_weight:
                    h = sum(_distance(_tokens(cap_s.out[k], am), _tokens(t_hid[k], am), loss)
                            for k in layers)
                    total = total + hidden_weight * h / len(layers)
                cap_s.out.clear()
                cap_t.out.clear()
                opt.zero_grad(set_to_none=True)
                total.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                if masked:
                    with torch.no_grad():
                        for m in masked:
                            m.apply_mask()
                bar.update(step + 1, float(total.detach()))
                if max_time is not None and time.perf_counter() - t_start >= max_time:
                    break
    finally:
        bar.close()
        cap_s.remove()
        cap_t.remove()
