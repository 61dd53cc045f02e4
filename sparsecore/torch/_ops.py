"""sparsecore's kernels as ``torch.library`` custom operators.

Each product is one functional operator in the ``sparsecore`` namespace
(``torch.ops.sparsecore.<name>``) with a fake (meta) implementation, so that
``torch.compile(fullgraph=True)`` and ``torch.export`` trace the operator
instead of the kernel's data pointers, and an autograd formula whose backward
calls the other operators:

==========================  ===============================================
operator                    product (x: (B, in), dy: (B, out))
==========================  ===============================================
``nm_linear``               ``y = act(x @ W.T + b)``, W stored N:M (values, offsets)
``nm_linear_grad_input``    ``dx = dy @ W``
``nm_linear_grad_values``   ``dW = dy.T @ x`` at W's stored entries (SDDMM)
``block_linear``            ``y = act(x @ W.T + b)``, W stored as r x c blocks (BSR)
``block_linear_grad_input`` ``dx = dy @ W``
``block_linear_grad_blocks`` ``dW`` at W's stored blocks (SDDMM)
``bitmask_linear``          ``y = act(x @ W.T + b)``, W stored as a row bitmask
``bitmask_linear_grad_input`` ``dx = dy @ W``
``bitmask_linear_grad_values`` ``dW = dy.T @ x`` at W's stored entries
``monarch_linear``          ``y = x @ M.T``, ``M = P L P^T R``
``monarch_linear_grad_input`` ``dx = dy @ M``
==========================  ===============================================

The forward products take an optional bias and activation (``"none"``,
``"relu"``, ``"gelu"``, ``"gelu_tanh"``, ``"silu"``) that the kernel applies
while each tile of the output is in cache; a product with an activation has
no backward (the layers fuse one only when no gradient is wanted).

The bodies read and write CPU tensors through zero-copy numpy views (no
autograd inside) and always return fresh C-contiguous tensors, which is what
the fake implementations promise. ``n_threads`` 0 means the thread count of
``torch.get_num_threads()``, read when the operator runs (not when it is
traced), less the CPUs other processes keep busy (read from /proc/loadavg,
as for sparsecore's other products). Inputs are trusted: the layers validate
them once, at construction.

The operator names are a serialised API: an exported program refers to
``torch.ops.sparsecore.nm_linear.default`` and can be loaded once
``sparsecore.torch`` has been imported.
"""
import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sparsecore._ext import _monarch, _spmm
from sparsecore._threads import effective_n_threads
from sparsecore.formats import BlockSparseMatrix, NMPattern, NMSparseMatrix
from sparsecore.ops import spmm

__all__ = [
    "bitmask_linear",
    "bitmask_linear_grad_input",
    "bitmask_linear_grad_values",
    "block_linear",
    "block_linear_grad_blocks",
    "block_linear_grad_input",
    "monarch_linear",
    "monarch_linear_grad_input",
    "nm_linear",
    "nm_linear_grad_input",
    "nm_linear_grad_values",
]


#: the dtypes the kernels compute in
KERNEL_DTYPES = (torch.float32, torch.float64)


def _threads(n_threads):
    """A positive ``n_threads`` as given; otherwise ``torch.get_num_threads()``,
    less the CPUs that other processes keep busy (a team thread on such a CPU
    gets slices of it and every short product waits for it)."""
    if n_threads > 0:
        return n_threads
    return max(1, min(torch.get_num_threads(), effective_n_threads(None)))


@contextlib.contextmanager
def _torch_threads(n_threads):
    """Run torch's own products inside at no more threads than
    :func:`_threads` gives (the CPUs other processes keep busy left out, as
    the kernels do): torch's GEMM at two threads with one core taken ran 2x
    slower than at one. With OpenMP and MKL the setting is the calling
    thread's own, so other threads' products are not affected."""
    want, have = _threads(n_threads), torch.get_num_threads()
    if want >= have:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(have)


def _np(t):
    """A numpy view of a CPU tensor (no copy unless its conj/neg bits are set)."""
    if t.requires_grad:
        t = t.detach()
    try:
        return t.numpy()
    except RuntimeError:  # a conj or neg bit: resolve it into a copy
        return t.resolve_conj().resolve_neg().numpy()


def _check_2d(x, name):
    if x.dim() != 2:
        raise ValueError(f"sparsecore: {name} must be 2-D, got shape {tuple(x.shape)}")


def _direct(x, values, bias, activation):
    """Whether a product may go straight to the kernel binding, skipping the
    checks and conversions of :func:`sparsecore.ops.spmm` (about 15
    microseconds, as much as the product of a small layer on one token): the
    weights' dtype, a non-empty, aligned x, a bias of the same dtype and a
    kernel activation. Anything else takes the checked path."""
    return (x.dtype == values.dtype and x.dtype in KERNEL_DTYPES and x.numel() > 0
            and values.numel() > 0 and x.data_ptr() % x.element_size() == 0
            and values.is_contiguous() and activation in _spmm.ACTIVATIONS
            and (bias is None or (bias.dtype == x.dtype and bias.dim() == 1
                                  and bias.is_contiguous())))


def _epilogue(bias, activation):
    """The bias as a numpy view and the activation for ``spmm`` (None: none)."""
    return (None if bias is None else _np(bias.contiguous()),
            None if activation == "none" else activation)


def _bias_grad(ctx, dy, index):
    # needs_input_grad covers the arguments the call passed (bias may be left out)
    needs = ctx.needs_input_grad
    return dy.sum(0) if index < len(needs) and needs[index] else None


def _check_differentiable(activation, name):
    if activation != "none":
        raise RuntimeError(
            f"sparsecore: {name} with a fused activation ({activation!r}) has no backward; "
            f"apply the activation after the product where gradients are needed")


# ---------------------------------------------------------------- N:M ----

def _nm_matrix(values, offsets, n, m, in_features):
    return NMSparseMatrix._from_trusted(
        _np(values.contiguous()), _np(offsets.contiguous()),
        (values.shape[0], in_features), NMPattern.of(n, m), 1)


def nm_linear_eager(x, values, offsets, n, m, in_features, n_threads=0, bias=None,
                    activation="none"):
    """The body of :func:`nm_linear`, callable on plain CPU tensors without
    the operator's dispatch (about 30 microseconds a call); no autograd."""
    _check_2d(x, "x")
    y = torch.empty((x.shape[0], values.shape[0]), dtype=x.dtype)
    if (_direct(x, values, bias, activation) and x.shape[1] == in_features
            and offsets.shape == values.shape and offsets.dtype == torch.uint8
            and offsets.is_contiguous()
            and (bias is None or bias.shape[0] == values.shape[0])):
        _spmm.spmm_nm(_np(values), _np(offsets), values.shape[0], in_features, n, m,
                      _np(x).T, _np(y).T, _threads(n_threads),
                      None if bias is None else _np(bias), activation)
        return y
    S = _nm_matrix(values, offsets, n, m, in_features)
    b, act = _epilogue(bias, activation)
    spmm(S, _np(x).T, out=_np(y).T, bias=b, activation=act, n_threads=_threads(n_threads))
    return y


@torch.library.custom_op("sparsecore::nm_linear", mutates_args=(), device_types="cpu")
def nm_linear(x: Tensor, values: Tensor, offsets: Tensor, n: int, m: int, in_features: int,
              n_threads: int = 0, bias: Optional[Tensor] = None,
              activation: str = "none") -> Tensor:
    """``act(x @ W.T + bias)`` for W of shape (out, in_features) stored N:M
    along its rows.

    Parameters
    ----------
    x : Tensor, shape (B, in_features)
    values : Tensor, shape (out, G * n)
        The kept values of each row, G = ceil(in_features / m) groups.
    offsets : uint8 Tensor, shape (out, G * n)
        In-group offset of each value (increasing within a group).
    n, m : int
        The pattern: ``n`` kept of every ``m``.
    in_features : int
    n_threads : int, default=0
        Kernel threads (0: ``torch.get_num_threads()``, less busy CPUs).
    bias : Tensor, shape (out,), optional
    activation : {"none", "relu", "gelu", "gelu_tanh", "silu"}, default="none"
        Applied by the kernel as the output is stored (no backward).

    Returns
    -------
    Tensor, shape (B, out), C-contiguous
    """
    return nm_linear_eager(x, values, offsets, n, m, in_features, n_threads, bias, activation)


@nm_linear.register_fake
def _(x, values, offsets, n, m, in_features, n_threads=0, bias=None, activation="none"):
    return x.new_empty((x.shape[0], values.shape[0]))


@torch.library.custom_op("sparsecore::nm_linear_grad_input", mutates_args=(),
                         device_types="cpu")
def nm_linear_grad_input(dy: Tensor, values: Tensor, offsets: Tensor, n: int, m: int,
                         in_features: int, n_threads: int = 0) -> Tensor:
    """``dy @ W`` (the input gradient of :func:`nm_linear`), shape (B, in_features).

    Parameters
    ----------
    dy : Tensor, shape (B, out)
    values, offsets, n, m, in_features, n_threads
        As for :func:`nm_linear`.

    Returns
    -------
    Tensor, shape (B, in_features), C-contiguous
    """
    _check_2d(dy, "dy")
    S = _nm_matrix(values, offsets, n, m, in_features)
    dx = torch.empty((dy.shape[0], in_features), dtype=dy.dtype)
    spmm(S.T, _np(dy).T, out=_np(dx).T, n_threads=_threads(n_threads))
    return dx


@nm_linear_grad_input.register_fake
def _(dy, values, offsets, n, m, in_features, n_threads=0):
    return dy.new_empty((dy.shape[0], in_features))


#: batch rows from which the values gradient of a dense-enough N:M weight
#: goes through a dense GEMM and a gather instead of the SDDMM kernel
_DENSE_GRAD_MIN_BATCH = 32


@torch.library.custom_op("sparsecore::nm_linear_grad_values", mutates_args=(),
                         device_types="cpu")
def nm_linear_grad_values(dy: Tensor, x: Tensor, offsets: Tensor, n: int, m: int,
                          n_threads: int = 0) -> Tensor:
    """``dy.T @ x`` at the stored entries of an N:M weight (SDDMM): the
    gradient of :func:`nm_linear` with respect to ``values``. At a density
    ``n / m`` of 1/4 or more and 32 or more batch rows the full product runs
    through torch's GEMM (at torch's thread count) and the stored entries are
    gathered from it; otherwise sparsecore's SDDMM kernel computes only them.

    Parameters
    ----------
    dy : Tensor, shape (B, out)
    x : Tensor, shape (B, in_features)
    offsets : uint8 Tensor, shape (out, G * n)
    n, m : int
    n_threads : int, default=0

    Returns
    -------
    Tensor, shape (out, G * n), C-contiguous
    """
    _check_2d(dy, "dy")
    _check_2d(x, "x")
    R, K = offsets.shape[0], x.shape[1]
    if 4 * n >= m and dy.shape[0] >= _DENSE_GRAD_MIN_BATCH and R and K and offsets.numel():
        # At a density of 1/4 or more, the full dy.T @ x through torch's GEMM
        # (register-blocked, every load reused) outruns the SDDMM kernel,
        # which loads an operand per multiply-add (2:4, batch 128: about
        # 2.5x); the stored entries are then gathered from it.
        full = dy.T @ x
        G = offsets.shape[1] // n
        cols = (torch.arange(G) * m).repeat_interleave(n) + offsets.long()
        inside = cols < K  # slots of a partial last group that point past K
        return torch.gather(full, 1, cols.clamp(max=K - 1)).mul_(inside).contiguous()
    out = torch.zeros(tuple(offsets.shape), dtype=dy.dtype)
    if dy.shape[0] and R and K and out.numel():
        _spmm.sddmm_nm(_np(offsets.contiguous()), R, K, n, m, _np(dy).T, _np(x).T,
                       _np(out), _threads(n_threads))
    return out


@nm_linear_grad_values.register_fake
def _(dy, x, offsets, n, m, n_threads=0):
    return dy.new_empty(tuple(offsets.shape))


def _nm_setup(ctx, inputs, output):
    x, values, offsets, n, m, in_features, n_threads, bias, activation = inputs
    ctx.save_for_backward(x, values, offsets)
    ctx.args = (n, m, in_features, n_threads, activation)


def _nm_backward(ctx, dy):
    x, values, offsets = ctx.saved_tensors
    n, m, in_features, nt, activation = ctx.args
    _check_differentiable(activation, "nm_linear")
    dy = dy.contiguous()
    dx = dv = None
    if ctx.needs_input_grad[0]:
        dx = torch.ops.sparsecore.nm_linear_grad_input(dy, values, offsets, n, m,
                                                       in_features, nt)
    if ctx.needs_input_grad[1]:
        dv = torch.ops.sparsecore.nm_linear_grad_values(dy, x, offsets, n, m, nt)
    return dx, dv, None, None, None, None, None, _bias_grad(ctx, dy, 7), None


nm_linear.register_autograd(_nm_backward, setup_context=_nm_setup)


# ------------------------------------------------------------ bitmask ----

#: batch rows up to which a row-bitmask product runs in its kernel, which
#: reads each row of the weight once for all of them (at 50 % density 2.125
#: bytes a weight against a dense layer's 4); wider batches expand the weight
#: a block at a time and run torch's GEMM: past 8 rows the kernel is bound by
#: its loads of x, not by the weight's bytes, and at 16 about as fast as the
#: dense product
BITMASK_MAX_BATCH = 16

#: torch forms of the kernels' activations, for the dense path
_TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda y: F.gelu(y, approximate="tanh"),
    "silu": F.silu,
}


def bitmask_unpack(bitmask, in_features):
    """The boolean (out, in_features) mask of a row bitmask (column j of row
    i is bit j % 8 of ``bitmask[i, j // 8]``)."""
    shifts = torch.arange(8, dtype=torch.uint8, device=bitmask.device)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :in_features].bool()


def bitmask_dense(values, bitmask, row_offsets, in_features, n_threads=0, kernel=True):
    """The dense (out, in_features) weight of a row bitmask: the kernel's
    expansion for float32/float64 CPU tensors that need no gradient, where
    ``kernel`` allows it (not under tracing: the layers pass whether they run
    eagerly), torch ops otherwise (differentiable with respect to
    ``values``)."""
    if (kernel and values.device.type == "cpu" and values.dtype in KERNEL_DTYPES
            and not (torch.is_grad_enabled() and values.requires_grad)
            and values.is_contiguous() and bitmask.is_contiguous()
            and row_offsets.is_contiguous() and values.numel() > 0):
        W = torch.empty((bitmask.shape[0], in_features), dtype=values.dtype)
        if W.numel():
            _spmm.bitmask_expand(_np(values), _np(bitmask), _np(row_offsets), in_features,
                                 _np(W), _threads(n_threads))
        return W
    mask = bitmask_unpack(bitmask, in_features)
    return values.new_zeros(mask.shape).masked_scatter(mask, values)


def bitmask_linear_eager(x, values, bitmask, row_offsets, in_features, n_threads=0, bias=None,
                         activation="none"):
    """The body of :func:`bitmask_linear`, callable on plain CPU tensors
    without the operator's dispatch; no autograd."""
    _check_2d(x, "x")
    out = bitmask.shape[0]
    if (x.shape[0] <= BITMASK_MAX_BATCH and _direct(x, values, bias, activation)
            and x.shape[1] == in_features and bitmask.dtype == torch.uint8
            and bitmask.is_contiguous() and row_offsets.dtype == torch.int64
            and row_offsets.is_contiguous() and (bias is None or bias.shape[0] == out)):
        y = torch.empty((x.shape[0], out), dtype=x.dtype)
        _spmm.spmm_bitmask(_np(values), _np(bitmask), _np(row_offsets), in_features,
                           _np(x).T, _np(y).T, _threads(n_threads),
                           None if bias is None else _np(bias), activation)
        return y
    with torch.no_grad(), _torch_threads(n_threads):
        if (values.dtype == x.dtype and x.dtype in KERNEL_DTYPES and values.is_contiguous()
                and bitmask.is_contiguous() and row_offsets.is_contiguous()):
            y = _bitmask_by_blocks(x.detach(), values, bitmask, row_offsets, in_features,
                                   n_threads, None if bias is None else bias.detach())
        else:
            W = bitmask_dense(values.detach(), bitmask, row_offsets, in_features, n_threads)
            y = F.linear(x.detach(), W.to(x.dtype), None if bias is None else bias.detach())
        if activation != "none":
            y = _TORCH_ACTIVATIONS[activation](y)
    return y.contiguous()


#: a wide bitmask product expands a weight of up to _EXPAND_WHOLE_BYTES
#: whole and multiplies into the output directly (its buffer is reused from
#: the heap between calls); a larger one _EXPAND_BLOCK_BYTES of rows at a
#: time into one buffer (a fresh 46 MB weight faulted its pages in on every
#: call: 20 ms of an 80 ms product), the blocks' products transposed at the
#: end. Blocks of a few MB keep torch's GEMM at full speed (5632 x 2048 at
#: 512 tokens: 69 ms in blocks of 512 rows, 79 in blocks of 128).
_EXPAND_WHOLE_BYTES = 16 << 20
_EXPAND_BLOCK_BYTES = 4 << 20


def _bitmask_by_blocks(x, values, bitmask, row_offsets, in_features, n_threads, bias):
    """x @ W.T + bias for a row bitmask W, expanded a block of rows at a time
    into one reused buffer, each block's product by torch's GEMM
    (float32/float64 CPU tensors)."""
    out = bitmask.shape[0]
    row_bytes = max(1, in_features * x.element_size())
    rows = out if out * row_bytes <= _EXPAND_WHOLE_BYTES else max(
        1, min(out, _EXPAND_BLOCK_BYTES // row_bytes))
    buf = torch.empty((rows, in_features), dtype=x.dtype)
    nt = _threads(n_threads)
    v, bits, start = _np(values), _np(bitmask), _np(row_offsets)
    if rows == out:  # one block: the product lands in y directly, not transposed
        _spmm.bitmask_expand(v, bits, start, in_features, _np(buf), nt)
        return F.linear(x, buf, bias)
    yt = torch.empty((out, x.shape[0]), dtype=x.dtype)
    xt = x.T
    for r0 in range(0, out, rows):
        r1 = min(out, r0 + rows)
        blk = buf[:r1 - r0]
        _spmm.bitmask_expand(v, bits[r0:r1], start[r0:r1], in_features, _np(blk), nt)
        if bias is None:
            torch.mm(blk, xt, out=yt[r0:r1])
        else:
            torch.addmm(bias[r0:r1, None], blk, xt, out=yt[r0:r1])
    return yt.T


@torch.library.custom_op("sparsecore::bitmask_linear", mutates_args=(), device_types="cpu")
def bitmask_linear(x: Tensor, values: Tensor, bitmask: Tensor, row_offsets: Tensor,
                   in_features: int, n_threads: int = 0, bias: Optional[Tensor] = None,
                   activation: str = "none") -> Tensor:
    """``act(x @ W.T + bias)`` for W of shape (out, in_features) stored as a
    row bitmask (the layout of compressed-tensors' ``sparse-bitmask``).

    Batches of up to ``BITMASK_MAX_BATCH`` rows run in the bitmask kernel;
    wider ones expand W and run torch's GEMM (at the kernels' thread count).

    Parameters
    ----------
    x : Tensor, shape (B, in_features)
    values : Tensor, shape (nnz,)
        The stored weights in row-major order.
    bitmask : uint8 Tensor, shape (out, ceil(in_features / 8))
        Column j of row i is stored when bit j % 8 of ``bitmask[i, j // 8]``
        is set (bits past ``in_features`` clear).
    row_offsets : int64 Tensor, shape (out,)
        Where each row's values start in ``values``.
    in_features : int
    n_threads : int, default=0
    bias : Tensor, shape (out,), optional
    activation : {"none", "relu", "gelu", "gelu_tanh", "silu"}, default="none"

    Returns
    -------
    Tensor, shape (B, out), C-contiguous
    """
    return bitmask_linear_eager(x, values, bitmask, row_offsets, in_features, n_threads, bias,
                                activation)


@bitmask_linear.register_fake
def _(x, values, bitmask, row_offsets, in_features, n_threads=0, bias=None, activation="none"):
    return x.new_empty((x.shape[0], bitmask.shape[0]))


@torch.library.custom_op("sparsecore::bitmask_linear_grad_input", mutates_args=(),
                         device_types="cpu")
def bitmask_linear_grad_input(dy: Tensor, values: Tensor, bitmask: Tensor, row_offsets: Tensor,
                              in_features: int, n_threads: int = 0) -> Tensor:
    """``dy @ W`` (the input gradient of :func:`bitmask_linear`), shape
    (B, in_features), through the expanded W and torch's GEMM."""
    _check_2d(dy, "dy")
    with torch.no_grad(), _torch_threads(n_threads):
        W = bitmask_dense(values.detach(), bitmask, row_offsets, in_features, n_threads)
        return (dy.detach() @ W.to(dy.dtype)).contiguous()


@bitmask_linear_grad_input.register_fake
def _(dy, values, bitmask, row_offsets, in_features, n_threads=0):
    return dy.new_empty((dy.shape[0], in_features))


@torch.library.custom_op("sparsecore::bitmask_linear_grad_values", mutates_args=(),
                         device_types="cpu")
def bitmask_linear_grad_values(dy: Tensor, x: Tensor, bitmask: Tensor, nnz: int) -> Tensor:
    """``dy.T @ x`` at the stored entries of a row bitmask, in the order of
    ``values`` (the values gradient of :func:`bitmask_linear`), shape (nnz,)."""
    _check_2d(dy, "dy")
    _check_2d(x, "x")
    with torch.no_grad():
        full = dy.detach().T @ x.detach()
        return full[bitmask_unpack(bitmask, x.shape[1])].contiguous()


@bitmask_linear_grad_values.register_fake
def _(dy, x, bitmask, nnz):
    return dy.new_empty((nnz,))


def _bitmask_setup(ctx, inputs, output):
    x, values, bitmask, row_offsets, in_features, n_threads, bias, activation = inputs
    ctx.save_for_backward(x, values, bitmask, row_offsets)
    ctx.args = (in_features, n_threads, activation)


def _bitmask_backward(ctx, dy):
    x, values, bitmask, row_offsets = ctx.saved_tensors
    in_features, nt, activation = ctx.args
    _check_differentiable(activation, "bitmask_linear")
    dy = dy.contiguous()
    dx = dv = None
    if ctx.needs_input_grad[0]:
        dx = torch.ops.sparsecore.bitmask_linear_grad_input(dy, values, bitmask, row_offsets,
                                                            in_features, nt)
    if ctx.needs_input_grad[1]:
        dv = torch.ops.sparsecore.bitmask_linear_grad_values(dy, x, bitmask, values.shape[0])
    return dx, dv, None, None, None, None, _bias_grad(ctx, dy, 6), None


bitmask_linear.register_autograd(_bitmask_backward, setup_context=_bitmask_setup)


# ---------------------------------------------------------- r x c blocks ----

def _block_matrix(blocks, indices, indptr, out_features, in_features):
    return BlockSparseMatrix._from_trusted(
        _np(blocks.contiguous()), _np(indices.contiguous()), _np(indptr.contiguous()),
        (out_features, in_features))


def block_linear_eager(x, blocks, indices, indptr, out_features, n_threads=0, bias=None,
                       activation="none"):
    """The body of :func:`block_linear`, callable on plain CPU tensors without
    the operator's dispatch; no autograd."""
    _check_2d(x, "x")
    y = torch.empty((x.shape[0], out_features), dtype=x.dtype)
    if (_direct(x, blocks, bias, activation) and out_features > 0 and blocks.dim() == 3
            and indices.dtype == indptr.dtype and indices.dtype in (torch.int32, torch.int64)
            and indices.is_contiguous() and indptr.is_contiguous()
            and (bias is None or bias.shape[0] == out_features)):
        r, c = blocks.shape[1], blocks.shape[2]
        if indptr.shape[0] == -(-out_features // r) + 1 and indices.shape[0] == blocks.shape[0]:
            _spmm.spmm_bsr(_np(indptr), _np(indices), _np(blocks), out_features, x.shape[1],
                           r, c, _np(x).T, _np(y).T, _threads(n_threads),
                           None if bias is None else _np(bias), activation)
            return y
    S = _block_matrix(blocks, indices, indptr, out_features, x.shape[1])
    b, act = _epilogue(bias, activation)
    spmm(S, _np(x).T, out=_np(y).T, bias=b, activation=act, n_threads=_threads(n_threads))
    return y


@torch.library.custom_op("sparsecore::block_linear", mutates_args=(), device_types="cpu")
def block_linear(x: Tensor, blocks: Tensor, indices: Tensor, indptr: Tensor,
                 out_features: int, n_threads: int = 0, bias: Optional[Tensor] = None,
                 activation: str = "none") -> Tensor:
    """``act(x @ W.T + bias)`` for W stored as dense ``r x c`` blocks in
    block-CSR form.

    Parameters
    ----------
    x : Tensor, shape (B, in_features)
    blocks : Tensor, shape (nnzb, r, c)
    indices : int32/int64 Tensor, shape (nnzb,)
        Block column of each block, sorted within a block row.
    indptr : Tensor of the same dtype, shape (out_features / r + 1,)
    out_features : int
    n_threads : int, default=0
    bias : Tensor, shape (out_features,), optional
    activation : {"none", "relu", "gelu", "gelu_tanh", "silu"}, default="none"
        Applied by the kernel as the output is stored (no backward).

    Returns
    -------
    Tensor, shape (B, out_features), C-contiguous
    """
    return block_linear_eager(x, blocks, indices, indptr, out_features, n_threads, bias,
                              activation)


@block_linear.register_fake
def _(x, blocks, indices, indptr, out_features, n_threads=0, bias=None, activation="none"):
    return x.new_empty((x.shape[0], out_features))


@torch.library.custom_op("sparsecore::block_linear_grad_input", mutates_args=(),
                         device_types="cpu")
def block_linear_grad_input(dy: Tensor, blocks: Tensor, indices: Tensor, indptr: Tensor,
                            in_features: int, n_threads: int = 0) -> Tensor:
    """``dy @ W`` (the input gradient of :func:`block_linear`).

    Parameters
    ----------
    dy : Tensor, shape (B, out_features)
    blocks, indices, indptr, n_threads
        As for :func:`block_linear`.
    in_features : int

    Returns
    -------
    Tensor, shape (B, in_features), C-contiguous
    """
    _check_2d(dy, "dy")
    S = _block_matrix(blocks, indices, indptr, dy.shape[1], in_features)
    dx = torch.empty((dy.shape[0], in_features), dtype=dy.dtype)
    spmm(S.T, _np(dy).T, out=_np(dx).T, n_threads=_threads(n_threads))
    return dx


@block_linear_grad_input.register_fake
def _(dy, blocks, indices, indptr, in_features, n_threads=0):
    return dy.new_empty((dy.shape[0], in_features))


@torch.library.custom_op("sparsecore::block_linear_grad_blocks", mutates_args=(),
                         device_types="cpu")
def block_linear_grad_blocks(dy: Tensor, x: Tensor, indices: Tensor, indptr: Tensor,
                             r: int, c: int, n_threads: int = 0) -> Tensor:
    """``dy.T @ x`` at the stored blocks (SDDMM): the gradient of
    :func:`block_linear` with respect to ``blocks``. With a quarter or more
    of the blocks stored and 32 or more batch rows, the full product runs
    through torch's GEMM and the stored blocks are gathered from it.

    Parameters
    ----------
    dy : Tensor, shape (B, out_features)
    x : Tensor, shape (B, in_features)
    indices, indptr : Tensor
        The block structure, as for :func:`block_linear`.
    r, c : int
        Block shape.
    n_threads : int, default=0

    Returns
    -------
    Tensor, shape (nnzb, r, c), C-contiguous
    """
    _check_2d(dy, "dy")
    _check_2d(x, "x")
    M, K = dy.shape[1], x.shape[1]
    mb, nb = -(-M // r), -(-K // c)
    nnzb = indices.shape[0]
    if (4 * nnzb >= mb * nb and dy.shape[0] >= _DENSE_GRAD_MIN_BATCH and M and K
            and nnzb):
        # as for nm_linear_grad_values: from a density of 1/4 the full GEMM
        # and a gather of the stored blocks outrun the SDDMM kernel
        full = torch.nn.functional.pad(dy.T @ x, (0, nb * c - K, 0, mb * r - M))
        tiles = full.view(mb, r, nb, c).transpose(1, 2)
        rows = torch.repeat_interleave(torch.arange(mb), indptr.diff().long())
        return tiles[rows, indices.long()].contiguous()
    out = torch.zeros((nnzb, r, c), dtype=dy.dtype)
    if dy.shape[0] and M and K and out.numel():
        _spmm.sddmm_bsr(_np(indptr.contiguous()), _np(indices.contiguous()), M, K, r, c,
                        _np(dy).T, _np(x).T, _np(out), _threads(n_threads))
    return out


@block_linear_grad_blocks.register_fake
def _(dy, x, indices, indptr, r, c, n_threads=0):
    return dy.new_empty((indices.shape[0], r, c))


def _block_setup(ctx, inputs, output):
    x, blocks, indices, indptr, out_features, n_threads, bias, activation = inputs
    ctx.save_for_backward(x, blocks, indices, indptr)
    ctx.args = (x.shape[1], blocks.shape[1], blocks.shape[2], n_threads, activation)


def _block_backward(ctx, dy):
    x, blocks, indices, indptr = ctx.saved_tensors
    in_features, r, c, nt, activation = ctx.args
    _check_differentiable(activation, "block_linear")
    dy = dy.contiguous()
    dx = db = None
    if ctx.needs_input_grad[0]:
        dx = torch.ops.sparsecore.block_linear_grad_input(dy, blocks, indices, indptr,
                                                          in_features, nt)
    if ctx.needs_input_grad[1]:
        db = torch.ops.sparsecore.block_linear_grad_blocks(dy, x, indices, indptr, r, c, nt)
    return dx, db, None, None, None, None, _bias_grad(ctx, dy, 6), None


block_linear.register_autograd(_block_backward, setup_context=_block_setup)


# ------------------------------------------------------------- Monarch ----

def _monarch_product(x, left, right, transpose, n_threads):
    k, q, p = right.shape
    l, s, r = left.shape
    n_out = k * p if transpose else l * s
    y = torch.empty((x.shape[0], n_out), dtype=x.dtype)
    if x.shape[0] and n_out:
        _monarch.matmul(_np(right.contiguous()), _np(left.contiguous()), _np(x).T, _np(y).T,
                        transpose, _threads(n_threads))
    return y


@torch.library.custom_op("sparsecore::monarch_linear", mutates_args=(), device_types="cpu")
def monarch_linear(x: Tensor, left: Tensor, right: Tensor, n_threads: int = 0) -> Tensor:
    """``x @ M.T`` for the Monarch matrix ``M = P L P^T R`` (Dao et al., ICML 2022).

    Parameters
    ----------
    x : Tensor, shape (B, k * p)
    left : Tensor, shape (l, s, r)
        Diagonal blocks of L (``l * r == k * q``).
    right : Tensor, shape (k, q, p)
        Diagonal blocks of R.
    n_threads : int, default=0

    Returns
    -------
    Tensor, shape (B, l * s), C-contiguous
    """
    _check_2d(x, "x")
    return _monarch_product(x, left, right, False, n_threads)


@monarch_linear.register_fake
def _(x, left, right, n_threads=0):
    return x.new_empty((x.shape[0], left.shape[0] * left.shape[1]))


@torch.library.custom_op("sparsecore::monarch_linear_grad_input", mutates_args=(),
                         device_types="cpu")
def monarch_linear_grad_input(dy: Tensor, left: Tensor, right: Tensor,
                              n_threads: int = 0) -> Tensor:
    """``dy @ M`` (the input gradient of :func:`monarch_linear`).

    Parameters
    ----------
    dy : Tensor, shape (B, l * s)
    left, right, n_threads
        As for :func:`monarch_linear`.

    Returns
    -------
    Tensor, shape (B, k * p), C-contiguous
    """
    _check_2d(dy, "dy")
    return _monarch_product(dy, left, right, True, n_threads)


@monarch_linear_grad_input.register_fake
def _(dy, left, right, n_threads=0):
    return dy.new_empty((dy.shape[0], right.shape[0] * right.shape[2]))


def _monarch_setup(ctx, inputs, output):
    x, left, right, n_threads = inputs
    ctx.save_for_backward(x, left, right)
    ctx.n_threads = n_threads


def _monarch_backward(ctx, dy):
    x, left, right = ctx.saved_tensors
    dy = dy.contiguous()
    k, q, p = right.shape
    l, s, r = left.shape
    B = x.shape[0]
    dx = dL = dR = None
    if ctx.needs_input_grad[0]:
        dx = torch.ops.sparsecore.monarch_linear_grad_input(dy, left, right, ctx.n_threads)
    if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
        # batched products of the factors: x (B, k*p) -> z (B, k*q) -> y (B, l*s)
        xb = x.reshape(B, k, p).transpose(0, 1)                    # (k, B, p)
        z = torch.bmm(xb, right.transpose(1, 2))                   # (k, B, q)
        zp = z.transpose(0, 1).reshape(B, r, l).permute(2, 0, 1)   # (l, B, r)
        g = dy.reshape(B, s, l).permute(2, 0, 1)                   # (l, B, s)
        if ctx.needs_input_grad[1]:
            dL = torch.bmm(g.transpose(1, 2), zp)                  # (l, s, r)
        if ctx.needs_input_grad[2]:
            dzp = torch.bmm(g, left)                               # (l, B, r)
            dz = dzp.permute(1, 2, 0).reshape(B, k, q).transpose(0, 1)  # (k, B, q)
            dR = torch.bmm(dz.transpose(1, 2), xb)                 # (k, q, p)
    return dx, dL, dR, None


monarch_linear.register_autograd(_monarch_backward, setup_context=_monarch_setup)
