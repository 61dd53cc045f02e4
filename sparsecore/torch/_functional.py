"""Autograd functions of the sparse layers.

On CPU the products run in sparsecore's kernels, reading and writing torch
tensors through zero-copy numpy views: the forward ``y = x @ W.T`` is
``spmm(W, x.T, out=y.T)``, the input gradient ``dx = dy @ W`` is
``spmm(W.T, dy.T, out=dx.T)`` (the transposed structure is cached by the
format), and the weight gradient is ``sddmm(dy.T, x.T, W)``: ``dy.T @ x``
evaluated only where W stores values. Elsewhere (CUDA, MPS, ...) the same
layers run masked dense torch ops, which give identical results.
"""
import torch

from sparsecore.ops import sddmm, spmm

__all__ = ["mask_with_dense_grad", "monarch_linear", "monarch_reference", "structured_linear"]


def _np(t):
    """A numpy view of a CPU tensor (no copy, no autograd)."""
    return t.detach().numpy()


def _flatten(x, in_features):
    lead = x.shape[:-1]
    return x.reshape(-1, in_features), lead


class _StructuredLinear(torch.autograd.Function):
    """``y = x @ W.T + b`` for a compressed W (BlockSparseMatrix or
    NMSparseMatrix) whose values are the stored entries of ``weight``."""

    @staticmethod
    def forward(ctx, x, weight, bias, S, n_threads, dense_grad_sink):
        B = x.shape[0]
        y = torch.empty((B, S.shape[0]), dtype=x.dtype)
        spmm(S, _np(x).T, out=_np(y).T, n_threads=n_threads)
        if bias is not None:
            y += bias.detach()
        ctx.S = S
        ctx.n_threads = n_threads
        ctx.sink = dense_grad_sink
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        S = ctx.S
        nt = ctx.n_threads
        dy = dy.contiguous()
        dx = dW = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.empty(x.shape, dtype=dy.dtype)
            spmm(S.T, _np(dy).T, out=_np(dx).T, n_threads=nt)
        if ctx.needs_input_grad[1]:
            if ctx.sink is not None and ctx.sink.want_dense_grad:
                # a growth step of a dynamic sparsifier needs |dL/dW| everywhere
                full = dy.T @ x
                ctx.sink.dense_grad = full.detach().clone()
            G = sddmm(_np(dy).T, _np(x).T, S, n_threads=nt)
            dW = torch.from_numpy(G.toarray())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum(0)
        return dx, dW, db, None, None, None


def structured_linear(x, weight, bias, S, *, n_threads, sink=None):
    """``x @ W.T + bias`` with W given compressed as ``S`` (its values taken
    from ``weight`` at the stored positions), on 2-D CPU tensors.

    Parameters
    ----------
    x : Tensor, shape (B, in_features)
    weight : Tensor, shape (out_features, in_features)
        Dense storage of W; its gradient is nonzero only at ``S``'s stored
        positions.
    bias : Tensor of shape (out_features,) or None
    S : BlockSparseMatrix or NMSparseMatrix
        The compressed W (structure and values).
    n_threads : int or None
        Kernel threads.
    sink : object, optional
        When ``sink.want_dense_grad`` is set, backward stores the dense
        weight gradient in ``sink.dense_grad`` (for a dynamic sparsifier).

    Returns
    -------
    Tensor, shape (B, out_features)
    """
    return _StructuredLinear.apply(x, weight, bias, S, n_threads, sink)


def monarch_linear(x, left, right, bias, *, n_threads):
    """``x @ M.T + bias`` through the Monarch kernel (2-D CPU tensors).

    Parameters
    ----------
    x : Tensor, shape (B, k*p)
    left : Tensor, shape (l, s, r)
        Diagonal blocks of L.
    right : Tensor, shape (k, q, p)
        Diagonal blocks of R.
    bias : Tensor of shape (l*s,) or None
    n_threads : int or None
        Kernel threads (None: ``torch.get_num_threads()`` when it runs).

    Returns
    -------
    Tensor, shape (B, l*s)

    Notes
    -----
    Runs the ``torch.ops.sparsecore.monarch_linear`` operator, which
    ``torch.compile`` and ``torch.export`` trace as one node.
    """
    from sparsecore.torch import _ops  # noqa: F401  (registers the operators)

    nt = 0 if n_threads is None else int(n_threads)
    y = torch.ops.sparsecore.monarch_linear(x, left, right, nt)
    return y if bias is None else y + bias


def monarch_reference(x, left, right, bias=None):
    """The same product in plain torch ops (any device; autograd by torch).

    Parameters
    ----------
    x : Tensor, shape (B, k*p)
    left : Tensor, shape (l, s, r)
        Diagonal blocks of L.
    right : Tensor, shape (k, q, p)
        Diagonal blocks of R.
    bias : Tensor of shape (l*s,), optional

    Returns
    -------
    Tensor, shape (B, l*s)
    """
    k, q, p = right.shape
    l, s, r = left.shape
    B = x.shape[0]
    z = torch.bmm(x.reshape(B, k, p).transpose(0, 1), right.transpose(1, 2))   # (k, B, q)
    zp = z.transpose(0, 1).reshape(B, r, l).permute(2, 0, 1)                  # (l, B, r)
    u = torch.bmm(zp, left.transpose(1, 2))                                    # (l, B, s)
    y = u.permute(1, 2, 0).reshape(B, s * l)
    return y if bias is None else y + bias



class _MaskGrad(torch.autograd.Function):
    """``w * mask``; the backward also keeps the dense gradient when asked."""

    @staticmethod
    def forward(ctx, w, mask, sink):
        ctx.save_for_backward(mask)
        ctx.sink = sink
        return w * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        if ctx.sink is not None and ctx.sink.want_dense_grad:
            ctx.sink.dense_grad = g.detach().clone()
        return g * mask, None, None


def mask_with_dense_grad(w, mask, sink=None):
    """``w * mask`` whose backward stores the unmasked gradient in
    ``sink.dense_grad`` when ``sink.want_dense_grad`` is set (what a growth
    step of a dynamic sparsifier needs); the gradient of ``w`` is masked.
    Under torch.func transforms, which take no autograd.Function without
    ``setup_context``, the plain product (no dense gradient kept)."""
    if torch._C._are_functorch_transforms_active():
        return w * mask
    return _MaskGrad.apply(w, mask, sink)
