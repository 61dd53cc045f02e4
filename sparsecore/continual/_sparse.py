"""Weight-sparse ``nn.Linear`` layers whose forward and backward run through
sparsecore's SpMM/SDDMM kernels, with an exact RigL-style FLOP count.

A :class:`LayerState` holds one layer's weight mask (its CSR structure, the
transposed structure and the gather indices are rebuilt only when the mask
changes) and the pattern of the weight gradient (the whole mask, or the
entries kept by dynamic gradient masking). :func:`patch_linear` replaces the
layer's ``forward`` by :class:`SparseLinearFunction`:

* forward ``Y = X W^T + b`` is ``spmm(W, X^T)`` over the kept weights;
* the input gradient ``dX = dY W`` is ``spmm(W^T, dY^T)``;
* the weight gradient is ``sddmm(dY^T, X^T, pattern)``: only the entries of
  the gradient pattern are computed, the others are exactly zero.

FLOPs (multiply-adds counted as 2) are added to a :class:`FlopCount` as the
kernels run: ``2 B nnz(W)`` forward, ``2 B nnz(W)`` for the input gradient
when one is needed, ``2 B nnz(pattern)`` for the weight gradient (Evci et
al., "Rigging the Lottery", ICML 2020, appendix H; SparCL, Wang et al.,
NeurIPS 2022, appendix D.1). Layers without a mask run the dense torch
product and count ``2 B in out`` for each of the three.
"""
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsecore.ops import sddmm, spmm

__all__ = ["FlopCount", "LayerState", "SparseLinearFunction", "patch_linear", "unpatch_linear"]


@dataclass
class FlopCount:
    """Training FLOPs of the linear layers, split as RigL splits them.

    Attributes
    ----------
    forward : int
        Forward products of every training pass (current batch and replay batches).
    input_grad : int
        Activation gradients (``dY W``), skipped where no input gradient is needed.
    weight_grad : int
        Weight gradients, only over the entries that are computed.
    samples : int
        Examples forwarded in training (current and replayed).
    removed : int
        Training examples removed by dynamic data removal (they no longer cost).
    by_layer : dict
        Layer name -> its FLOPs (forward, input and weight gradients together).
    """

    forward: int = 0
    input_grad: int = 0
    weight_grad: int = 0
    samples: int = 0
    removed: int = 0
    by_layer: dict = field(default_factory=dict)

    @property
    def backward(self):
        """Input plus weight gradients."""
        return self.input_grad + self.weight_grad

    @property
    def total(self):
        """Forward plus backward."""
        return self.forward + self.input_grad + self.weight_grad

    def _add(self, layer, key, value):
        setattr(self, key, getattr(self, key) + int(value))
        self.by_layer[layer] = self.by_layer.get(layer, 0) + int(value)

    def as_dict(self):
        """The counts as a dict.

        Returns
        -------
        dict
            ``forward``, ``input_grad``, ``weight_grad``, ``backward``,
            ``total``, ``samples`` and ``removed`` (not ``by_layer``).
        """
        return {"forward": self.forward, "input_grad": self.input_grad,
                "weight_grad": self.weight_grad, "backward": self.backward,
                "total": self.total, "samples": self.samples, "removed": self.removed}

    def __repr__(self):
        return (f"FlopCount(total={self.total:.3e}, forward={self.forward:.3e}, "
                f"input_grad={self.input_grad:.3e}, weight_grad={self.weight_grad:.3e}, "
                f"samples={self.samples}, removed={self.removed})")


def _csr_structure(mask):
    """CSR of a boolean (m, n) mask with values 0..nnz-1 (canonical order)."""
    flat = np.flatnonzero(mask.reshape(-1))
    m, n = mask.shape
    rows, cols = np.divmod(flat, n)
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    idx = np.int32 if max(m, n, flat.size) < 2**31 - 1 else np.int64
    return flat, indptr.astype(idx), cols.astype(idx)


class LayerState:
    """The mask of one linear layer and its sparse structures.

    Parameters
    ----------
    name : str
        The layer's name in the model (used in the FLOP breakdown).
    module : torch.nn.Linear
        The layer whose weight is masked.
    mask : ndarray of bool, shape (out_features, in_features), optional
        Kept weights; None means the layer is dense.
    n_threads : int, optional
        Threads of the sparse kernels.
    """

    def __init__(self, name, module, mask=None, n_threads=None):
        self.name = name
        self.module = module
        self.n_threads = n_threads
        self.counter = None
        self.mask = None
        self.grad_mask = None
        if mask is not None:
            self.set_mask(mask)

    @property
    def shape(self):
        """Shape ``(out_features, in_features)`` of the layer's weight."""
        return tuple(self.module.weight.shape)

    @property
    def sparse(self):
        """Whether the layer has a weight mask (False: dense)."""
        return self.mask is not None

    def set_mask(self, mask):
        """Install a new weight mask and rebuild the sparse structures.

        Parameters
        ----------
        mask : array_like of bool, shape (out_features, in_features)
            Kept weights. The gradient pattern is reset to the whole mask.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"mask of {self.name} has shape {mask.shape}, the weight {self.shape}")
        self.mask = mask
        dtype = self.module.weight.detach().numpy().dtype if self._cpu_real() else np.float32
        flat, indptr, indices = _csr_structure(mask)
        self.flat = flat
        self.W = sp.csr_array((np.zeros(flat.size, dtype), indices, indptr), shape=self.shape)
        self.W.has_sorted_indices = True
        # transposed structure: W^T's values are W's values gathered by perm
        T = sp.csr_array((np.arange(flat.size, dtype=np.int64), indices, indptr),
                         shape=self.shape).T.tocsr()
        T.sort_indices()
        self.perm = T.data.astype(np.int64)
        self.WT = sp.csr_array((np.zeros(flat.size, dtype), T.indices, T.indptr),
                               shape=self.shape[::-1])
        self.WT.has_sorted_indices = True
        self.set_grad_mask(None)

    def set_grad_mask(self, grad_mask):
        """Restrict the weight gradient to ``grad_mask`` (None: the whole mask).

        Parameters
        ----------
        grad_mask : array_like of bool, shape (out_features, in_features), or None
            Gradient entries to compute, intersected with the weight mask.
        """
        if grad_mask is None:
            self.grad_mask = None
            self.grad_flat = self.flat if self.mask is not None else None
            self.pattern = self.W if self.mask is not None else None
            return
        grad_mask = np.asarray(grad_mask, dtype=bool)
        if self.mask is not None:
            grad_mask = grad_mask & self.mask
        self.grad_mask = grad_mask
        flat, indptr, indices = _csr_structure(grad_mask)
        self.grad_flat = flat
        self.pattern = sp.csr_array((np.ones(flat.size, np.float32), indices, indptr),
                                    shape=self.shape)
        self.pattern.has_sorted_indices = True

    def grad_entries(self):
        """How many weight-gradient entries the backward computes.

        Returns
        -------
        int
            Entries of the gradient mask, else of the weight mask, else every
            weight.
        """
        if self.grad_mask is not None:
            return int(self.grad_flat.size)
        if self.mask is not None:
            return int(self.flat.size)
        return int(np.prod(self.shape))

    def nnz(self):
        """Number of kept weights (every weight of a dense layer).

        Returns
        -------
        int
            Nonzeros of the mask, or ``out_features * in_features``.
        """
        return int(self.flat.size) if self.mask is not None else int(np.prod(self.shape))

    def _cpu_real(self):
        w = self.module.weight
        return w.device.type == "cpu" and w.dtype in (torch.float32, torch.float64)

    def _load_values(self, weight):
        w = weight.detach().numpy().reshape(-1)
        if self.W.data.dtype != w.dtype:
            self.W.data = self.W.data.astype(w.dtype)
            self.WT.data = self.WT.data.astype(w.dtype)
        np.take(w, self.flat, out=self.W.data)
        np.take(self.W.data, self.perm, out=self.WT.data)

    def count(self, key, value):
        """Add FLOPs to the attached :class:`FlopCount` (no-op without one).

        Parameters
        ----------
        key : {"forward", "input_grad", "weight_grad"}
            The count to increase; the layer's ``by_layer`` entry grows too.
        value : int
            FLOPs to add.
        """
        if self.counter is not None:
            self.counter._add(self.name, key, value)


class SparseLinearFunction(torch.autograd.Function):
    """Compute ``X W^T + b`` over the kept weights of a :class:`LayerState` by SpMM.

    The backward runs SpMM for the input gradient and SDDMM for the weight
    gradient. Used as ``SparseLinearFunction.apply(x, weight, bias, state)``;
    like every ``torch.autograd.Function`` it is not instantiated.

    Parameters
    ----------
    *args, **kwargs
        Unused (``torch.autograd.Function`` is not meant to be instantiated).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, state):
        """``x @ (weight * mask).T + bias`` through :func:`sparsecore.ops.spmm`.

        Parameters
        ----------
        ctx : torch.autograd.function.FunctionCtx
            Autograd context.
        x : torch.Tensor of shape (..., in_features)
            Input (CPU).
        weight : torch.Tensor of shape (out_features, in_features)
            Dense weight; only the entries under the mask are used.
        bias : torch.Tensor of shape (out_features,) or None
            Bias.
        state : object
            The layer's sparse state (pattern, CSR copies of the weight, thread count).

        Returns
        -------
        torch.Tensor of shape (..., out_features)
        """
        state._load_values(weight)
        x2 = x.detach().reshape(-1, x.shape[-1])
        xn = x2.numpy()
        B = xn.shape[0]
        y = np.empty((B, state.shape[0]), dtype=state.W.data.dtype)
        if B:
            spmm(state.W, xn.T, out=y.T, n_threads=state.n_threads)
        out = torch.from_numpy(y)
        if bias is not None:
            out += bias.detach()
        ctx.state = state
        ctx.save_for_backward(x2)
        ctx.in_shape = x.shape
        ctx.has_bias = bias is not None
        return out.reshape(*x.shape[:-1], state.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        """Input gradient by the transposed product; weight gradient on the
        gradient pattern only (:func:`sparsecore.ops.sddmm`).

        Parameters
        ----------
        ctx : torch.autograd.function.FunctionCtx
            Context saved by :meth:`forward`.
        grad_out : torch.Tensor of shape (..., out_features)
            Gradient of the output.

        Returns
        -------
        grad_x : torch.Tensor or None
            Gradient of ``x`` (shape of ``x``).
        grad_w : torch.Tensor or None
            Gradient of ``weight``, nonzero only on the gradient pattern.
        grad_b : torch.Tensor or None
            Gradient of ``bias``.
        None
            No gradient for ``state``.
        """
        state = ctx.state
        (x2,) = ctx.saved_tensors
        g = grad_out.reshape(-1, state.shape[0]).contiguous()
        gn = g.numpy()
        B = gn.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            gx = np.empty((B, state.shape[1]), dtype=state.WT.data.dtype)
            if B:
                spmm(state.WT, gn.T, out=gx.T, n_threads=state.n_threads)
            grad_x = torch.from_numpy(gx).reshape(ctx.in_shape)
            state.count("input_grad", 2 * B * state.nnz())
        if ctx.needs_input_grad[1]:
            gw = np.zeros(state.shape, dtype=gn.dtype)
            if B and state.grad_flat.size:
                vals = sddmm(gn.T, x2.numpy().T, state.pattern, n_threads=state.n_threads)
                gw.reshape(-1)[state.grad_flat] = vals.data
            grad_w = torch.from_numpy(gw)
            state.count("weight_grad", 2 * B * state.grad_entries())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        return grad_x, grad_w, grad_b, None


class _DenseCountedFunction(torch.autograd.Function):
    """The dense ``nn.Linear`` product, counting its FLOPs as it runs."""

    @staticmethod
    def forward(ctx, x, weight, bias, state):
        ctx.state = state
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        """Input gradient by the transposed product; weight gradient on the
        gradient pattern only (:func:`sparsecore.ops.sddmm`)."""
        state = ctx.state
        x, weight = ctx.saved_tensors
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        B = g2.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight
            state.count("input_grad", 2 * B * weight.numel())
        if ctx.needs_input_grad[1]:
            grad_w = g2.T @ x.reshape(-1, x.shape[-1])
            if state.grad_mask is not None:
                grad_w = grad_w * torch.from_numpy(state.grad_mask).to(grad_w.device)
            state.count("weight_grad", 2 * B * state.grad_entries())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b, None


def _forward(state, x):
    module = state.module
    B = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if state.counter is not None and torch.is_grad_enabled():
        state.counter._add(state.name, "forward", 2 * B * state.nnz())
    on_cpu = x.device.type == "cpu" and x.dtype == module.weight.dtype
    if state.sparse and on_cpu and state._cpu_real():
        return SparseLinearFunction.apply(x, module.weight, module.bias, state)
    if state.sparse:
        # not a CPU float tensor: the masked dense product (same values)
        w = module.weight * torch.from_numpy(state.mask).to(module.weight.device)
        return torch.nn.functional.linear(x, w, module.bias)
    return _DenseCountedFunction.apply(x, module.weight, module.bias, state)


def patch_linear(state):
    """Route ``state.module``'s forward through :class:`SparseLinearFunction`."""
    module = state.module
    if not isinstance(module, nn.Linear):
        raise TypeError(f"{state.name} must be a torch.nn.Linear, got {type(module).__name__}")
    if "forward" in module.__dict__:
        raise ValueError(
            f"layer {state.name!r} is already driven by a sparsecore trainer (or its "
            f"forward was replaced); one trainer per model"
        )
    module.forward = lambda x: _forward(state, x)


def unpatch_linear(state):
    """Give ``state.module`` its own forward back."""
    state.module.__dict__.pop("forward", None)
