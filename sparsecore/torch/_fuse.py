"""Folding the activation that follows a compact sparse layer into its kernel."""
import contextlib
import copy
import inspect
from collections.abc import Mapping

import torch

from sparsecore.torch._layers import ACTIVATIONS, _CompactLinear

__all__ = ["eval_mode", "fuse_activations", "run_batch"]


@contextlib.contextmanager
def eval_mode(model):
    """Put every submodule in eval mode, and give each its own mode back
    afterwards (``model.train(flag)`` would reset them all to one)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def run_batch(model, batch, forward=None):
    """Run one batch: ``forward(model, batch)``, or ``model(**batch)`` for a
    mapping (a dict, a tokenizer's ``BatchEncoding``; the mapping itself to a
    model whose forward wants it whole), ``model(*batch)`` for a tuple or
    list, ``model(batch)`` otherwise."""
    if forward is not None:
        return forward(model, batch)
    if isinstance(batch, Mapping):
        return model(batch) if _takes_mapping(model, batch) else model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _takes_mapping(model, batch):
    """Whether ``model``'s forward takes a mapping of inputs whole (one
    required parameter, not among the mapping's keys: sentence-transformers'
    models take their tokenizer's output as ``forward(input)``)."""
    # torch.compile's and DataParallel's wrappers forward (*args, **kwargs)
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        model = model.module
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 1 and required[0].name not in batch


def _activation_name(module):
    """The key of ``ACTIVATIONS`` that a parameter-free, child-free module
    computes (compared on a probe), or None."""
    if (next(module.parameters(), None) is not None or next(module.buffers(), None) is not None
            or next(module.children(), None) is not None):
        return None
    # moderate values densely, then large ones: a clamp or saturation that
    # only shows far out (e.g. Hardtanh(0, 10)) is not one of them
    far = torch.tensor([12.0, 20.0, 50.0, 100.0, 1e3, 1e4], dtype=torch.float64)
    probe = torch.cat([torch.linspace(-8.0, 8.0, 321, dtype=torch.float64), far, -far])
    try:
        with torch.no_grad():
            out = module(probe.clone())
    except Exception:  # noqa: BLE001 (any module that cannot take a tensor is not one)
        return None
    if not isinstance(out, torch.Tensor) or out.shape != probe.shape:
        return None
    for name, f in ACTIVATIONS.items():
        if torch.allclose(out.double(), f(probe), rtol=1e-6, atol=1e-9):
            return name
    return None


def _same(a, b):
    """Whether two module outputs agree to float32 rounding, recursively
    (outputs that cannot be compared count as different)."""
    try:
        return _same_or_raise(a, b)
    except Exception:  # noqa: BLE001 (e.g. a dataclass of tensors: == is ambiguous)
        return False


def _same_or_raise(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        if not a.is_floating_point():
            return bool(torch.equal(a, b))
        scale = float(b.detach().abs().max()) if b.numel() else 0.0
        return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, scale)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_or_raise(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_or_raise(x, y) for x, y in zip(a, b))
    return a is b or bool(a == b)


def fuse_activations(model, batch, *, forward=None, inplace=False):
    """Apply each activation that directly follows a compact sparse layer
    inside the layer's kernel, while the output tile is in cache.

    Looks in every module for a child :class:`CompactNMLinear`,
    :class:`CompactBlockLinear` or :class:`CompactBitmaskLinear` and a sibling
    activation module (one without parameters that computes ReLU, GELU, its
    tanh form or SiLU, whatever its class, e.g. ``nn.GELU`` or transformers'
    ``GELUActivation``). For each
    such pair the parent is run on the inputs it received from ``batch``
    with the activation moved into the layer (the module replaced by
    ``nn.Identity``); the change is kept only when the parent's output is
    unchanged (to float32 rounding), so a model whose forward uses the
    activation elsewhere keeps it. This is the epilogue fusion inference
    compilers do after a matrix product; in a transformer's MLP the
    activation pass costs as much as a tenth of the forward on the CPU.

    Parameters
    ----------
    model : torch.nn.Module
        A model with compact sparse layers (e.g. from :func:`prune`).
    batch : Tensor, tuple or dict
        One input the model runs on (as for :func:`prune`'s calibration).
    forward : callable, optional
        ``forward(model, batch)`` runs it.
    inplace : bool, default=False
        Change ``model`` itself instead of a deep copy.

    Returns
    -------
    torch.nn.Module
        The model; fused layers have ``activation`` set. The activation
        runs in the kernel when no gradient is wanted (``torch.no_grad()``,
        inference mode, or frozen parameters and inputs), by torch otherwise.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import CompactNMLinear, fuse_activations
    >>> _ = torch.manual_seed(0)
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(),
    ...                           torch.nn.Linear(32, 8))
    >>> mlp[0] = CompactNMLinear.from_dense(mlp[0], 2, 4)
    >>> x = torch.randn(4, 16)
    >>> fused = fuse_activations(mlp, x)
    >>> fused[0].activation, type(fused[1]).__name__
    ('gelu', 'Identity')
    >>> with torch.no_grad():
    ...     torch.allclose(fused(x), mlp(x), atol=1e-6)
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    with eval_mode(model):
        _fuse_model(model, batch, forward)
    return model


def _fuse_model(model, batch, forward):
    # a layer that is the child of two modules could be checked in one only
    parents_of = {}
    for parent in model.modules():
        for child in parent.children():
            parents_of[id(child)] = parents_of.get(id(child), 0) + 1
    candidates = {}
    for parent in model.modules():
        children = list(parent.named_children())
        layers = [n for n, c in children
                  if isinstance(c, _CompactLinear) and c.activation is None
                  and parents_of[id(c)] == 1]
        acts = [(n, a) for n, c in children if layers and (a := _activation_name(c))]
        if layers and acts:
            candidates[parent] = (layers, acts)
    if not candidates:
        return
    inputs = {}

    def capture(module, args, kwargs):
        inputs.setdefault(module, (args, kwargs))

    hooks = [p.register_forward_pre_hook(capture, with_kwargs=True) for p in candidates]
    with torch.no_grad():
        try:
            run_batch(model, batch, forward)
        finally:
            for h in hooks:
                h.remove()
        for parent, (layers, acts) in candidates.items():
            if parent in inputs:
                _fuse_in(parent, layers, acts, *inputs[parent])


def _fuse_in(parent, layers, acts, args, kwargs):
    """Try each (layer, activation) pair of one parent; keep the ones that
    leave its output unchanged."""
    ref = parent(*args, **kwargs)
    for act_name, kind in acts:
        act_module = getattr(parent, act_name)
        for name in layers:
            layer = getattr(parent, name)
            if layer.activation is not None:
                continue
            layer.activation = kind
            setattr(parent, act_name, torch.nn.Identity())
            if _same(parent(*args, **kwargs), ref):
                break
            layer.activation = None
            setattr(parent, act_name, act_module)
