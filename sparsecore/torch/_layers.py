"""Sparse drop-in replacements for ``torch.nn.Linear``."""
import copy
import fnmatch
import math
import numbers
import weakref
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sparsecore.formats import BlockShape, BlockSparseMatrix, NMPattern, NMSparseMatrix
from sparsecore.formats._block import BLOCK_DIMS
from sparsecore.formats._monarch import monarch_layout
from sparsecore.ops import block_prune, monarch_project, nm_prune
from sparsecore.torch import _ops  # registers torch.ops.sparsecore.*
from sparsecore.torch._functional import mask_with_dense_grad, monarch_reference

__all__ = ["BlockSparseLinear", "CompactBitmaskLinear", "CompactBlockLinear", "CompactNMLinear",
           "MonarchLinear", "NMSparseLinear", "compact", "sparsify"]

_BACKENDS = ("auto", "sparsecore", "masked")

#: the activations the compact layers' kernels can apply to their output,
#: as torch modules (applied where a gradient is wanted or off the CPU, and
#: what ``to_dense`` returns beside the Linear)
ACTIVATIONS = {
    "relu": nn.ReLU(),
    "gelu": nn.GELU(),
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "silu": nn.SiLU(),
}


def _check_features(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    return backend


def _check_linear(linear):
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    return linear


class _SparseLinearBase(nn.Module):
    """Shared input checks, dispatch and dense-gradient hook."""

    def _init_common(self, in_features, out_features, bias, backend, n_threads, device, dtype):
        self.in_features = _check_features(in_features, "in_features")
        self.out_features = _check_features(out_features, "out_features")
        self.backend = _check_backend(backend)
        self.n_threads = n_threads
        # set by a DynamicSparsifier before a growth step: the next backward
        # also stores the dense weight gradient in ``dense_grad``
        self.want_dense_grad = False
        self.dense_grad = None
        factory = {"device": device, "dtype": dtype}
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)

    def _reset_bias(self, fan_in):
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def _threads(self):
        return _ops._threads(self._op_threads())

    def _op_threads(self):
        # 0: the operator reads the thread count when it runs, so a
        # compiled or exported graph follows later thread settings
        return 0 if self.n_threads is None else int(self.n_threads)

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        ref = self._reference_param()
        if x.dtype != ref.dtype:
            raise TypeError(
                f"input has dtype {x.dtype} but the layer's weights are {ref.dtype}; "
                f"convert one of them (e.g. layer.to({x.dtype}))"
            )
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must have shape (..., {self.in_features}) (in_features), got "
                f"{tuple(x.shape)}"
            )
        if x.device != ref.device:
            raise ValueError(
                f"input is on {x.device} but the layer's weights are on {ref.device}"
            )

    def _use_kernel(self, x):
        if self.backend == "masked":
            return False
        if torch._C._are_functorch_transforms_active():
            # torch.func (grad, vmap, jacrev, ...) cannot see into the
            # operators' autograd: the torch-op form serves there
            if self.backend == "sparsecore":
                raise ValueError("torch.func transforms run the torch-op form of the layer; "
                                 "backend='sparsecore' forbids it (use backend='auto')")
            return False
        ok = x.device.type == "cpu" and x.dtype in _ops.KERNEL_DTYPES
        if self.backend == "sparsecore" and not ok:
            raise ValueError(
                f"backend='sparsecore' needs float32/float64 tensors on the CPU, got "
                f"{x.dtype} on {x.device}; use backend='auto'"
            )
        return ok

    def forward(self, x):
        # under autocast a dense Linear computes in the autocast dtype; these
        # layers compute in their own and return the autocast dtype, as it would
        cast = None
        if (isinstance(x, torch.Tensor) and x.is_floating_point()
                and torch.is_autocast_enabled(x.device.type)):
            cast = torch.get_autocast_dtype(x.device.type)
            x = x.to(self._reference_param().dtype)
        self._check_input(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if self._use_kernel(x):
            y = self._kernel_forward(x2)
        else:
            y = self._masked_forward(x2)
        y = y.reshape(*lead, self.out_features)
        return y if cast is None else y.to(cast)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, {self._pattern_repr()}")


class _MaskedLinear(_SparseLinearBase):
    """A dense ``weight`` (out, in) whose entries outside ``mask`` are zero
    and never used."""

    def _reference_param(self):
        return self.weight

    def _init_weight(self, device, dtype):
        self.weight = nn.Parameter(
            torch.empty(self.out_features, self.in_features, device=device, dtype=dtype))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self._reset_bias(self.in_features)

    @property
    def density(self):
        """Fraction of weights stored."""
        return float(self.mask.float().mean())

    @property
    def nnz(self):
        """Number of weights stored."""
        return int(self.mask.sum())

    def masked_weight(self):
        """``weight * mask`` (differentiable; the gradient is masked)."""
        return mask_with_dense_grad(self.weight, self.mask, self)

    def _masked_forward(self, x2):
        return F.linear(x2, self.masked_weight(), self.bias)

    def _kernel_forward(self, x2):
        if self.want_dense_grad:
            # a growth step of a dynamic sparsifier needs dL/dW everywhere: the
            # masked dense product gives it (same values, dense backward)
            return self._masked_forward(x2)
        y = self._op_forward(x2)
        return y if self.bias is None else y.add_(self.bias)

    @torch.no_grad()
    def apply_mask(self):
        """Zero the weights outside the mask (in place)."""
        self.weight.mul_(self.mask.to(self.weight.dtype))

    def to_dense(self):
        """An ``nn.Linear`` holding ``weight * mask`` (a copy)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.masked_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin


class NMSparseLinear(_MaskedLinear):
    """A linear layer whose weight keeps ``n`` of every ``m`` consecutive
    entries along ``in_features`` (N:M "semi-structured" sparsity; 2:4 is
    NVIDIA's, Mishra et al. 2021, arXiv 2104.08378).

    Parameters
    ----------
    in_features, out_features : int
    n, m : int, default 2, 4
        The pattern, ``1 <= n < m <= 16``. ``in_features`` need not be a
        multiple of ``m`` (the last group is then partial).
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
        "auto": sparsecore's N:M kernels for float32/float64 on the CPU,
        masked dense torch ops elsewhere; "masked": always the latter.
    n_threads : int or None
        Kernel threads (None: ``torch.get_num_threads()``, less the CPUs other
        processes keep busy).
    device, dtype : optional
        Where and in which floating dtype to allocate the parameters (as for
        ``torch.nn.Linear``).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        Dense storage; only the entries under ``mask`` are used.
    mask : bool buffer, shape (out_features, in_features)
        At most ``n`` True entries in every group of ``m``; initialised by the
        magnitude of the random initial weights.

    Notes
    -----
    The CPU forward compresses ``weight`` under ``mask`` (values plus in-group
    offsets) and runs :func:`sparsecore.ops.spmm`; backward gives the input
    gradient by the transposed product and the weight gradient by
    :func:`sparsecore.ops.sddmm`, zero outside the mask.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import NMSparseLinear
    >>> dense = torch.nn.Linear(16, 4)
    >>> layer = NMSparseLinear.from_dense(dense, n=2, m=4)   # keep 2 of every 4 weights
    >>> x = torch.randn(3, 16)
    >>> layer(x).shape
    torch.Size([3, 4])
    >>> layer.nnz, layer.density
    (32, 0.5)
    >>> torch.allclose(layer(x), layer.to_dense()(x), atol=1e-6)   # same as its dense twin
    True
    """

    def __init__(self, in_features, out_features, n=2, m=4, bias=True, *, backend="auto",
                 n_threads=None, device=None, dtype=None):
        super().__init__()
        self.pattern = NMPattern.of(n, m)
        self._init_common(in_features, out_features, bias, backend, n_threads, device, dtype)
        self._init_weight(device, dtype)
        W = self.weight.detach().cpu().float().numpy()
        mask = nm_prune(W, self.pattern.n, self.pattern.m).mask()
        self.register_buffer("mask", torch.from_numpy(mask).to(self.weight.device))
        self.apply_mask()

    @property
    def n(self):
        """Weights kept in every group (the ``n`` of the N:M pattern)."""
        return self.pattern.n

    @property
    def m(self):
        """Group size along ``in_features`` (the ``m`` of the N:M pattern)."""
        return self.pattern.m

    def _pattern_repr(self):
        return f"pattern={self.pattern}"

    @classmethod
    def from_dense(cls, linear, n=2, m=4, *, score=None, backend="auto", n_threads=None):
        """Prune a (trained) ``nn.Linear`` to N:M, keeping in every group the
        ``n`` weights of largest magnitude (or ``score``, e.g. ``|W| * |grad|``).

        Parameters
        ----------
        linear : torch.nn.Linear
        n, m : int
        score : Tensor of shape (out_features, in_features), optional
        backend : {"auto", "sparsecore", "masked"}, default="auto"
            As for the constructor.
        n_threads : int or None
            Kernel threads (None: ``torch.get_num_threads()``, less the CPUs
            other processes keep busy).

        Returns
        -------
        NMSparseLinear
        """
        _check_linear(linear)
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, n, m, bias=linear.bias is not None,
                    backend=backend, n_threads=n_threads, device=W.device, dtype=W.dtype)
        sc = None
        if score is not None:
            sc = torch.as_tensor(score).detach().cpu().numpy()
        with torch.no_grad():
            Wc = W.cpu()
            if Wc.dtype not in _ops.KERNEL_DTYPES:
                Wc = Wc.float()
            mask = nm_prune(Wc.numpy(), layer.n, layer.m, score=sc).mask()
            layer.mask.copy_(torch.from_numpy(mask))
            layer.weight.copy_(W)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
            layer.apply_mask()
        return layer

    def compressed(self):
        """The weight as a :class:`sparsecore.formats.NMSparseMatrix`: the
        values under ``mask`` gathered from ``weight`` (a copy).

        The in-group offsets are derived once per mask and cached; the cache
        follows in-place changes of ``mask`` made by ordinary tensor ops (a
        write through ``mask.data`` needs :meth:`refresh`).

        Returns
        -------
        sparsecore.formats.NMSparseMatrix
        """
        W = self.weight.detach()
        if W.device.type != "cpu" or W.dtype not in _ops.KERNEL_DTYPES:
            W = W.to("cpu", torch.float64 if W.dtype == torch.float64 else torch.float32)
        cols, idx, valid = self._nm_layout()
        values = torch.gather(W, 1, cols)
        if valid is not None:
            values = values * valid
        return NMSparseMatrix._from_trusted(values.numpy(), idx,
                                            (self.out_features, self.in_features),
                                            self.pattern, 1)

    def refresh(self):
        """Forget the cached offsets of ``mask`` (after writing it through ``.data``)."""
        self._layout = None

    def _op_forward(self, x2):
        if torch.compiler.is_compiling():
            cols, offsets, valid = _nm_layout_torch(self.mask, self.n, self.m)
        else:
            cols, _, valid = self._nm_layout()
            offsets = self._offsets
        values = torch.gather(self.weight, 1, cols)
        if valid is not None:
            values = values * valid
        return torch.ops.sparsecore.nm_linear(x2, values, offsets, self.n, self.m,
                                              self.in_features, self._op_threads())

    def compact(self):
        """This layer in compact inference form: a :class:`CompactNMLinear`
        holding only the kept values and their in-group offsets (copies).

        Groups whose mask keeps fewer than ``n`` entries store explicit zeros,
        which become trainable weights of the compact layer.

        Returns
        -------
        CompactNMLinear
        """
        S = self.compressed()
        return CompactNMLinear._from_parts(
            torch.from_numpy(np.array(S.values)).to(self.weight.dtype),
            torch.from_numpy(np.array(S.indices)), self.in_features, self.n, self.m,
            self.bias, backend=self.backend, n_threads=self.n_threads)

    def _nm_layout(self):
        mask = self.mask
        key = (mask._version, mask.data_ptr(), mask.device)
        cached = getattr(self, "_layout", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        self.check_mask()
        mcpu = mask.detach().cpu()
        rows, K = self.out_features, self.in_features
        S0 = NMSparseMatrix.from_mask(np.zeros((rows, K), dtype=np.float32), mcpu.numpy(),
                                      self.n, self.m, n_threads=self._threads())
        idx = S0.indices
        groups = torch.arange(idx.shape[1]) // self.n * self.m
        cols = groups + torch.from_numpy(idx.astype(np.int64))
        inside = cols < K
        cols = cols.clamp_(max=K - 1).contiguous()
        valid = inside & torch.gather(mcpu, 1, cols)
        layout = (cols, idx, None if bool(valid.all()) else valid)
        self._layout = (key, layout)
        self._offsets = torch.from_numpy(np.array(idx))
        return layout

    def check_mask(self, mask=None, name="mask"):
        """Raise ValueError unless ``mask`` (default: this layer's) is a valid
        N:M boolean pattern of the layer's shape.

        Parameters
        ----------
        mask : torch.Tensor of bool or None, optional
            Mask to check (default: ``self.mask``).
        name : str, optional
            Argument name used in error messages.
        """
        mask = self.mask if mask is None else mask
        _check_nm_mask(mask, self.out_features, self.in_features, self.pattern, name)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        key = prefix + "mask"
        if key in state_dict:
            self.check_mask(state_dict[key], f"state_dict[{key!r}]")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)


def _nm_layout_torch(mask, n, m):
    """Columns, in-group offsets (uint8) and validity of the ``n`` slots of
    every group of ``mask``, in torch ops (traceable; no data pointers)."""
    R, K = mask.shape
    G = -(-K // m)
    mk = F.pad(mask.to(torch.int16), (0, G * m - K)).reshape(R, G, m)
    pos = torch.arange(m, device=mask.device, dtype=torch.int16)
    # True entries first (in increasing position), then the False ones
    score = mk * (2 * m) - pos
    off = torch.topk(score, n, dim=-1).indices.sort(dim=-1).values
    valid = torch.gather(mk, 2, off).bool().reshape(R, G * n)
    cols = (off + (torch.arange(G, device=mask.device) * m)[None, :, None]).reshape(R, G * n)
    return cols.clamp(max=K - 1), off.to(torch.uint8).reshape(R, G * n), valid


def _check_nm_mask(mask, rows, cols, pattern, name):
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got dtype {mask.dtype}")
    if tuple(mask.shape) != (rows, cols):
        raise ValueError(f"{name} must have shape {(rows, cols)}, got {tuple(mask.shape)}")
    n, m = pattern.n, pattern.m
    G = -(-cols // m)
    padded = torch.zeros(rows, G * m, dtype=torch.int16, device=mask.device)
    padded[:, :cols] = mask
    counts = padded.reshape(rows, G, m).sum(-1)
    bad = counts > n
    if bool(bad.any()):
        i, g = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"{name} is not {pattern}: row {i}, columns {g * m}..{min(cols, (g + 1) * m) - 1} "
            f"hold {int(counts[i, g])} True entries, at most {n} allowed"
        )


class BlockSparseLinear(_MaskedLinear):
    """A linear layer whose weight is stored in dense ``r x c`` blocks, a
    fraction ``density`` of them (block sparsity as in Gray, Radford and
    Kingma, "GPU Kernels for Block-Sparse Weights", 2017).

    Parameters
    ----------
    in_features, out_features : int
        Multiples of the block columns and rows.
    block_shape : (int, int), default=(16, 16)
        Each of 1, 2, 4, 8, 16, 32.
    density : float in (0, 1], default=0.1
        Fraction of blocks kept (chosen by the norm of the random initial
        weights, i.e. at random).
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
    n_threads : int or None
        Kernel threads (None: ``torch.get_num_threads()``, less the CPUs other
        processes keep busy).
    device, dtype : optional
        Where and in which floating dtype to allocate the parameters (as for
        ``torch.nn.Linear``).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        Dense storage; only the stored blocks are used.
    block_mask : bool buffer, shape (out_features / r, in_features / c)
        Which blocks are stored. ``mask`` is its expansion to entries.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import BlockSparseLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = BlockSparseLinear(64, 32, block_shape=(8, 8), density=0.25)
    >>> layer(torch.randn(5, 64)).shape
    torch.Size([5, 32])
    >>> layer.density
    0.25
    """

    def __init__(self, in_features, out_features, block_shape=(16, 16), density=0.1,
                 bias=True, *, backend="auto", n_threads=None, device=None, dtype=None):
        super().__init__()
        self.block_shape = BlockShape.of(block_shape)
        if not isinstance(density, numbers.Real) or isinstance(density, bool):
            raise TypeError(f"density must be a number in (0, 1], got {density!r}")
        if not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density}")
        self._init_common(in_features, out_features, bias, backend, n_threads, device, dtype)
        r, c = self.block_shape
        if self.out_features % r or self.in_features % c:
            raise ValueError(
                f"block_shape {(r, c)} does not divide the weight shape "
                f"(out_features, in_features) = {(self.out_features, self.in_features)}; "
                f"choose a block shape whose rows divide out_features and whose columns "
                f"divide in_features (or pad the features)"
            )
        self._init_weight(device, dtype)
        W = self.weight.detach().cpu().float().numpy()
        keep = _block_keep(block_prune(W, self.block_shape, density))
        self.register_buffer("block_mask", torch.from_numpy(keep).to(self.weight.device))
        self.apply_mask()

    def _pattern_repr(self):
        r, c = self.block_shape
        return f"block_shape=({r}, {c}), density={self.density:.3g}"

    @property
    def mask(self):
        """Boolean (out_features, in_features): True inside stored blocks."""
        r, c = self.block_shape
        return self.block_mask.repeat_interleave(r, 0).repeat_interleave(c, 1)

    @property
    def density(self):
        return float(self.block_mask.float().mean())

    @property
    def nnz(self):
        r, c = self.block_shape
        return int(self.block_mask.sum()) * r * c

    @classmethod
    def from_dense(cls, linear, block_shape=(16, 16), density=0.1, *, backend="auto",
                   n_threads=None):
        """Prune a (trained) ``nn.Linear`` to the blocks of largest Frobenius
        norm (:func:`sparsecore.ops.block_prune`).

        Parameters
        ----------
        linear : torch.nn.Linear
            Layer to prune.
        block_shape : (int, int), optional
            Block shape.
        density : float, optional
            Fraction of blocks kept.
        backend : str, optional
            As for the constructor.
        n_threads : int or None, optional
            As for the constructor.

        Returns
        -------
        BlockSparseLinear
        """
        _check_linear(linear)
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, block_shape, density,
                    bias=linear.bias is not None, backend=backend, n_threads=n_threads,
                    device=W.device, dtype=W.dtype)
        with torch.no_grad():
            Wc = W.cpu()
            if Wc.dtype not in _ops.KERNEL_DTYPES:
                Wc = Wc.float()
            keep = _block_keep(block_prune(Wc.numpy(), layer.block_shape, density))
            layer.block_mask.copy_(torch.from_numpy(keep))
            layer.weight.copy_(W)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
            layer.apply_mask()
        return layer

    def compressed(self):
        """The weight as a :class:`sparsecore.formats.BlockSparseMatrix` (the
        stored blocks gathered from ``weight``, a copy).

        Returns
        -------
        sparsecore.formats.BlockSparseMatrix
        """
        W = self.weight.detach()
        if W.device.type != "cpu" or W.dtype not in _ops.KERNEL_DTYPES:
            W = W.to("cpu", torch.float64 if W.dtype == torch.float64 else torch.float32)
        r, c = self.block_shape
        mb, nb = self.block_mask.shape
        P4 = W.numpy().reshape(mb, r, nb, c)
        keep = self.block_mask.detach().cpu().numpy()
        return BlockSparseMatrix._from_pattern(P4, keep, (self.out_features, self.in_features),
                                               self.block_shape)

    def _block_layout(self):
        bm = self.block_mask
        key = (bm._version, bm.data_ptr(), bm.device)
        cached = getattr(self, "_layout", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        keep = bm.detach().cpu().numpy()
        S = BlockSparseMatrix._from_pattern(np.zeros((keep.shape[0], 1, keep.shape[1], 1)),
                                            keep, (self.out_features, self.in_features),
                                            self.block_shape)
        ib = torch.from_numpy(np.repeat(np.arange(keep.shape[0]), np.diff(S.indptr)))
        jb = torch.from_numpy(S.indices.astype(np.int64))
        r, c = self.block_shape
        # the weight as (out_features * in_features / c) rows of c entries:
        # the index of each stored block row there, block by block
        # (index_select's backward is an index_add, quicker than that of
        # advanced indexing)
        rows = ib[:, None] * r + torch.arange(r)[None, :]
        flat = (rows * (self.in_features // c) + jb[:, None]).reshape(-1).to(bm.device)
        layout = (flat, torch.from_numpy(np.array(S.indices)), torch.from_numpy(np.array(S.indptr)))
        self._layout = (key, layout)
        return layout

    def _op_forward(self, x2):
        if torch.compiler.is_compiling():
            # the number of stored blocks depends on the mask's data, which a
            # traced graph cannot size: run the equivalent masked product
            return F.linear(x2, self.masked_weight())
        flat, indices, indptr = self._block_layout()
        r, c = self.block_shape
        blocks = torch.index_select(self.weight.reshape(-1, c), 0, flat).view(-1, r, c)
        return torch.ops.sparsecore.block_linear(x2, blocks, indices, indptr,
                                                 self.out_features, self._op_threads())

    def compact(self):
        """This layer in compact inference form: a :class:`CompactBlockLinear`
        holding only the stored blocks and their block-CSR structure (copies).

        Returns
        -------
        CompactBlockLinear
        """
        S = self.compressed()
        return CompactBlockLinear._from_parts(
            torch.from_numpy(np.array(S.blocks)).to(self.weight.dtype),
            torch.from_numpy(np.array(S.indices)), torch.from_numpy(np.array(S.indptr)),
            self.in_features, self.out_features, self.bias, backend=self.backend,
            n_threads=self.n_threads)


def _block_keep(S):
    """(mb, nb) boolean map of the stored blocks of a BlockSparseMatrix."""
    m, n = S.shape
    r, c = S.block_shape
    keep = np.zeros((-(-m // r), -(-n // c)), dtype=bool)
    ib = np.repeat(np.arange(keep.shape[0]), np.diff(S.indptr))
    keep[ib, S.indices] = True
    return keep


def _plain_eager(x):
    """Whether a product on ``x`` may call the kernel without the operator's
    dispatch (tens of microseconds, as much as the product of a small layer on
    one token): a plain tensor, and nothing that records or transforms
    operators is active (torch.compile, torch.jit.trace, dispatch or
    function modes such as make_fx or FlopCounterMode, vmap/grad)."""
    return (type(x) is torch.Tensor and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing() and torch._C._len_torch_dispatch_stack() == 0
            and not torch._C._is_torch_function_mode_enabled()
            and not torch._C._are_functorch_transforms_active())


#: layer -> (key of its stored tensors, their dense weight): the views that
#: ``weight`` handed out (weakly keyed, so never copied with a layer)
_DENSE_VIEWS = weakref.WeakKeyDictionary()


def _dense_view(layer):
    """The layer's dense weight, detached, rebuilt only after its stored
    tensors changed (in place, replaced, or converted by ``.to``)."""
    stored = [t for name, t in (*layer.named_parameters(recurse=False),
                                *layer.named_buffers(recurse=False)) if name != "bias"]
    if (torch.compiler.is_compiling() or torch.is_inference_mode_enabled()
            or torch._C._are_functorch_transforms_active()
            or any(type(t) not in (torch.Tensor, nn.Parameter) or t.is_inference()
                   for t in stored)):
        # built each time: traced by torch.compile (and dropped from the
        # graph when only its dtype, device or shape is read); inference and
        # functorch tensors have no version counter or storage to key on
        return layer.dense_weight().detach()
    key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in stored)
    hit = _DENSE_VIEWS.get(layer)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        W = layer.dense_weight().detach()
    _DENSE_VIEWS[layer] = (key, W)
    return W


def _apply_dropping_view(self, fn, *args, **kwargs):
    """``nn.Module._apply`` (``.to``, ``.half``, ...) that first forgets the
    dense view: a conversion may reuse an address and keep the version."""
    _DENSE_VIEWS.pop(self, None)
    return nn.Module._apply(self, fn, *args, **kwargs)


#: ``weight`` of the layers that store a compact form: what code written for
#: ``nn.Linear`` reads (transformers' T5 blocks compare their input's dtype
#: with ``wo.weight.dtype`` on every call)
_WEIGHT_PROPERTY = property(_dense_view, doc="""The dense (out_features, in_features) weight, read-only and detached,
    for code written against ``nn.Linear`` that reads ``layer.weight`` (its
    dtype, device, shape or values). Built from the compact storage on first
    access and kept, in dense memory, while the layer lives and that storage
    is unchanged (a write through ``.data`` goes unseen); the forward never
    uses it, it is not part of the ``state_dict``, and writing to it changes
    nothing else. :meth:`dense_weight` rebuilds it, differentiably, on each
    call.""")


class _CompactLinear(_SparseLinearBase):
    """Shared parts of the compact layers: forward through a custom operator
    on the CPU, through the dense weight rebuilt by torch ops elsewhere.

    ``activation`` (None, or a key of ``ACTIVATIONS``, set by
    :func:`sparsecore.torch.fuse_activations`) is applied to the output: by
    the kernel while each output tile is in cache when no gradient is wanted,
    by torch after the product otherwise."""

    weight = _WEIGHT_PROPERTY
    _apply = _apply_dropping_view

    @property
    def activation(self):
        """The fused activation (a key of ``ACTIVATIONS``) or None."""
        return self.__dict__.get("_activation")

    @activation.setter
    def activation(self, value):
        if value is not None and value not in ACTIVATIONS:
            raise ValueError(f"activation must be None or one of {tuple(ACTIVATIONS)}, "
                             f"got {value!r}")
        self.__dict__["_activation"] = value

    def extra_repr(self):
        act = "" if self.activation is None else f", activation={self.activation}"
        return super().extra_repr() + act

    def _masked_forward(self, x2):
        y = F.linear(x2, self.dense_weight(), self.bias)
        return y if self.activation is None else ACTIVATIONS[self.activation](y)

    def _kernel_forward(self, x2):
        act = self.activation
        if torch.is_grad_enabled() and (
                x2.requires_grad or any(p.requires_grad for p in self.parameters(recurse=False))):
            # through the operator's autograd; the fused activation has no backward
            y = self._op_forward(x2, "none")
            return y if act is None else ACTIVATIONS[act](y)
        return self._op_forward(x2, "none" if act is None else act, _plain_eager(x2))

    def to_dense(self):
        """An ``nn.Linear`` holding the dense weight (a copy); with a fused
        ``activation``, an ``nn.Sequential`` of it and the activation.

        Returns
        -------
        torch.nn.Linear or torch.nn.Sequential
        """
        W = self._reference_param()
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=W.device, dtype=W.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.dense_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        if self.activation is None:
            return lin
        return nn.Sequential(lin, copy.deepcopy(ACTIVATIONS[self.activation]))

    def _check_unfused(self):
        if self.activation is not None:
            raise ValueError(
                f"this layer applies a fused activation ({self.activation!r}); the training "
                f"form has none: set layer.activation = None and put the activation back "
                f"in the model first")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # the format first (a state_dict of another pattern or shape), then
        # the structure, before anything is copied
        try:
            key = prefix + "_extra_state"
            if key in state_dict:
                self.set_extra_state(state_dict[key])
            self._prepare_load(state_dict, prefix)
        except (TypeError, ValueError) as exc:
            error_msgs.append(str(exc))
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def set_extra_state(self, state):
        """Check that a loaded state_dict was saved by a layer of this format.

        Parameters
        ----------
        state : dict
            What :meth:`get_extra_state` returned.
        """
        want = self.get_extra_state()
        if not isinstance(state, dict) or any(state.get(k) != v for k, v in want.items()):
            raise ValueError(f"state_dict was saved by a layer with {state!r}; this layer is "
                             f"{want!r}")

    def _structure_keys(self, state_dict, prefix, names):
        """The state_dict keys of the tensors that together make this
        layer's structure, or None when the state_dict holds none of them;
        ValueError when it holds only some (copying those alone would pair a
        structure with another's values: reads out of bounds)."""
        keys = [prefix + k for k in names]
        present = [k in state_dict for k in keys]
        if not any(present):
            return None
        if not all(present):
            missing = [k for k, p in zip(keys, present) if not p]
            raise ValueError(f"state_dict holds part of this layer's structure; missing "
                             f"{missing} (load {list(names)} together)")
        return keys

    @classmethod
    def _built(cls, in_features, out_features, bias, backend, n_threads, *parts):
        """A layer of this class holding copies of its stored ``parts`` (what
        ``_setup`` takes after the common arguments), without ``__init__``'s
        random weights."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer._setup(in_features, out_features, bias, backend, n_threads, *parts)
        return layer

    def _block_training_form(self, block_shape, block_mask):
        """A :class:`BlockSparseLinear` of ``block_shape`` blocks holding this
        layer's weights, ``block_mask`` its stored blocks."""
        self._check_unfused()
        ref = self._reference_param()
        layer = BlockSparseLinear(self.in_features, self.out_features, block_shape, 1.0,
                                  bias=self.bias is not None, backend=self.backend,
                                  n_threads=self.n_threads, device=ref.device, dtype=ref.dtype)
        return self._fill_masked(layer, layer.block_mask, block_mask)

    def _fill_masked(self, layer, layer_mask, mask):
        """Copy this layer's weights, mask and bias into its training form."""
        with torch.no_grad():
            layer.weight.copy_(self.dense_weight())
            layer_mask.copy_(mask)
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return layer

    def _copy_bias(self, bias):
        if bias is not None:
            with torch.no_grad():
                self.bias.copy_(bias)


class CompactNMLinear(_CompactLinear):
    """A linear layer stored N:M: only the ``n`` kept weights of every group of
    ``m`` consecutive inputs, with their in-group offsets (the compact
    inference form of :class:`NMSparseLinear`; N:M sparsity as in Mishra et
    al. 2021, arXiv 2104.08378).

    The stored values are trainable (their gradient is the SDDMM
    ``dy.T @ x`` at the kept positions); the positions are fixed. A 2:4
    float32 layer stores 2.5 bytes per dense weight (4 bytes of value and 1
    byte of offset for half of them), 0.625 of ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    n, m : int, default 2, 4
        The pattern, ``n`` kept of every ``m``, ``1 <= n < m <= 16``.
        ``in_features`` need not be a multiple of ``m``.
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
        "auto": the ``torch.ops.sparsecore.nm_linear`` operator for
        float32/float64 on the CPU, a dense product of the rebuilt weight
        elsewhere; "masked": always the latter.
    n_threads : int or None
        Kernel threads (None: ``torch.get_num_threads()`` when the layer runs,
        less the CPUs other processes keep busy).
    device, dtype : optional
        Where and in which floating dtype to allocate the parameters.

    Attributes
    ----------
    values : Parameter, shape (out_features, G * n)
        The kept weights of every row, G = ceil(in_features / m) groups of
        ``n``, in increasing column order.
    offsets : uint8 buffer, shape (out_features, G * n)
        Offset of each value inside its group (increasing within a group).
        Slots of a partial last group that point past ``in_features`` hold
        zero values.

    See Also
    --------
    NMSparseLinear : the training form (a dense weight and a mask, whose
        mask a :class:`DynamicSparsifier` can change); ``.compact()`` converts.
    compact : convert every sparse layer of a model.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import CompactNMLinear
    >>> dense = torch.nn.Linear(16, 4)
    >>> layer = CompactNMLinear.from_dense(dense, n=2, m=4)
    >>> sorted(layer.state_dict())
    ['_extra_state', 'bias', 'offsets', 'values']
    >>> layer.values.shape, layer.offsets.dtype
    (torch.Size([4, 8]), torch.uint8)
    >>> x = torch.randn(3, 16)
    >>> torch.allclose(layer(x), layer.to_dense()(x), atol=1e-6)
    True
    """

    def __init__(self, in_features, out_features, n=2, m=4, bias=True, *, backend="auto",
                 n_threads=None, device=None, dtype=None):
        super().__init__()
        self.pattern = NMPattern.of(n, m)
        self._init_common(in_features, out_features, bias, backend, n_threads, device, dtype)
        G = -(-self.in_features // self.m)
        factory = {"device": device, "dtype": dtype}
        W = torch.empty(self.out_features, self.in_features, **factory)
        nn.init.kaiming_uniform_(W, a=math.sqrt(5))
        self._reset_bias(self.in_features)
        S = nm_prune(W.detach().cpu().double().numpy(), self.n, self.m)
        self.values = nn.Parameter(torch.empty(self.out_features, G * self.n, **factory))
        self.register_buffer("offsets", torch.from_numpy(np.array(S.indices)).to(device))
        with torch.no_grad():
            self.values.copy_(torch.from_numpy(np.array(S.values)))

    @property
    def n(self):
        """Weights kept in every group."""
        return self.pattern.n

    @property
    def m(self):
        """Group size along ``in_features``."""
        return self.pattern.m

    def _reference_param(self):
        return self.values

    def _pattern_repr(self):
        return f"pattern={self.pattern}, compact"

    @classmethod
    def _from_parts(cls, values, offsets, in_features, n, m, bias, *, backend="auto",
                    n_threads=None):
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.pattern = NMPattern.of(n, m)
        layer._init_common(in_features, values.shape[0], bias is not None, backend, n_threads,
                           values.device, values.dtype)
        layer.values = nn.Parameter(values.detach().clone())
        layer.register_buffer("offsets", offsets.detach().to(torch.uint8).clone())
        layer._copy_bias(bias)
        return layer

    @classmethod
    def from_dense(cls, linear, n=2, m=4, *, score=None, mask=None, backend="auto",
                   n_threads=None):
        """Prune an ``nn.Linear`` to N:M and keep only the compact parts.

        Parameters
        ----------
        linear : torch.nn.Linear
        n, m : int
            The pattern: ``n`` kept of every ``m`` along ``in_features``.
        score : Tensor of shape (out_features, in_features), optional
            Keep the ``n`` entries of largest score in each group (default:
            largest magnitude).
        mask : bool Tensor of shape (out_features, in_features), optional
            Keep exactly these entries (at most ``n`` per group); excludes
            ``score``.
        backend : {"auto", "sparsecore", "masked"}, default="auto"
        n_threads : int or None

        Returns
        -------
        CompactNMLinear
        """
        _check_linear(linear)
        pattern = NMPattern.of(n, m)
        if score is not None and mask is not None:
            raise ValueError("give score or mask, not both")
        W = linear.weight.detach()
        Wc = W.cpu()
        if Wc.dtype not in _ops.KERNEL_DTYPES:
            Wc = Wc.float()
        if mask is not None:
            _check_nm_mask(mask, linear.out_features, linear.in_features, pattern, "mask")
            S = NMSparseMatrix.from_mask(Wc.numpy(), mask.detach().cpu().numpy(), n, m)
        else:
            sc = None if score is None else _check_score(score, W.shape)
            S = nm_prune(Wc.numpy(), n, m, score=sc)
        values = torch.from_numpy(np.array(S.values)).to(W.device, W.dtype)
        offsets = torch.from_numpy(np.array(S.indices)).to(W.device)
        return cls._from_parts(values, offsets, linear.in_features, n, m, linear.bias,
                               backend=backend, n_threads=n_threads)

    def _columns(self):
        G = self.values.shape[1] // self.n
        base = torch.arange(G, device=self.offsets.device).repeat_interleave(self.n) * self.m
        return base + self.offsets.long()

    def dense_weight(self):
        """The (out_features, in_features) weight with zeros outside the
        pattern (differentiable with respect to ``values``).

        Returns
        -------
        torch.Tensor
        """
        G = self.values.shape[1] // self.n
        W = self.values.new_zeros(self.out_features, G * self.m)
        return W.scatter(1, self._columns(), self.values)[:, :self.in_features]

    @property
    def mask(self):
        """Boolean (out_features, in_features): True at the stored positions."""
        G = self.values.shape[1] // self.n
        M = torch.zeros(self.out_features, G * self.m, dtype=torch.bool,
                        device=self.offsets.device)
        M.scatter_(1, self._columns(), True)
        return M[:, :self.in_features]

    @property
    def nnz(self):
        """Number of stored weights (slots inside the shape)."""
        return int(self.mask.sum())

    @property
    def density(self):
        """Stored weights over ``in_features * out_features``."""
        return self.nnz / (self.in_features * self.out_features)

    def _op_forward(self, x2, activation, direct=False):
        op = _ops.nm_linear_eager if direct else torch.ops.sparsecore.nm_linear
        return op(x2, self.values, self.offsets, self.n, self.m, self.in_features,
                  self._op_threads(), self.bias, activation)

    def to_masked(self):
        """The training form: an :class:`NMSparseLinear` with a dense weight
        and mask (for :class:`DynamicSparsifier`); a copy.

        Returns
        -------
        NMSparseLinear
        """
        self._check_unfused()
        layer = NMSparseLinear(self.in_features, self.out_features, self.n, self.m,
                               bias=self.bias is not None, backend=self.backend,
                               n_threads=self.n_threads, device=self.values.device,
                               dtype=self.values.dtype)
        return self._fill_masked(layer, layer.mask, self.mask)

    def get_extra_state(self):
        """The pattern and in_features (checked when a state_dict is loaded;
        a fused activation belongs to the model's structure, not its state).

        Returns
        -------
        dict
        """
        return {"format": "nm", "n": self.n, "m": self.m, "in_features": self.in_features}

    def _prepare_load(self, state_dict, prefix):
        key = prefix + "offsets"
        if key in state_dict:
            _check_offsets(state_dict[key], tuple(self.offsets.shape), self.n, self.m,
                           f"state_dict[{key!r}]")


def _check_offsets(off, shape, n, m, name):
    if not isinstance(off, torch.Tensor) or off.dtype != torch.uint8:
        raise TypeError(f"{name} must be a uint8 tensor, got "
                        f"{getattr(off, 'dtype', type(off).__name__)}")
    if tuple(off.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(off.shape)}")
    o = off.reshape(shape[0], -1, n).to(torch.int16)
    if off.numel() and (bool((o >= m).any()) or bool((o.diff(dim=-1) <= 0).any())):
        raise ValueError(f"{name} must hold offsets in 0..{m - 1}, increasing within each "
                         f"group of {n}")


def _check_score(score, shape):
    sc = torch.as_tensor(score).detach().cpu()
    if tuple(sc.shape) != tuple(shape):
        raise ValueError(f"score must have shape {tuple(shape)}, got {tuple(sc.shape)}")
    return sc.double().numpy()


class CompactBlockLinear(_CompactLinear):
    """A linear layer stored as dense ``r x c`` blocks in block-CSR form: only
    the stored blocks and their block-column indices and row pointers (the
    compact inference form of :class:`BlockSparseLinear`; block sparsity as
    in Gray, Radford and Kingma, "GPU Kernels for Block-Sparse Weights", 2017).

    The blocks are trainable (gradient: the block SDDMM ``dy.T @ x`` at the
    stored blocks); the structure is fixed.

    Parameters
    ----------
    in_features, out_features : int
        Multiples of the block columns and rows.
    block_shape : (int, int), default=(16, 16)
    density : float in (0, 1], default=0.1
        Fraction of blocks stored (chosen by the norm of a random init).
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
    n_threads : int or None
    device, dtype : optional

    Attributes
    ----------
    blocks : Parameter, shape (nnzb, r, c)
    indices : int32/int64 buffer, shape (nnzb,)
        Block column of each block, increasing within a block row.
    indptr : buffer of the same dtype, shape (out_features / r + 1,)

    Notes
    -----
    Loading a state_dict whose number of blocks differs from the layer's
    replaces ``blocks`` by a new Parameter of the loaded size (an optimizer
    built before then still refers to the old one).

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import CompactBlockLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = CompactBlockLinear(64, 32, block_shape=(8, 8), density=0.25)
    >>> layer.blocks.shape, layer.indptr.tolist()
    (torch.Size([8, 8, 8]), [0, 3, 4, 7, 8])
    >>> layer(torch.randn(5, 64)).shape
    torch.Size([5, 32])
    """

    def __init__(self, in_features, out_features, block_shape=(16, 16), density=0.1,
                 bias=True, *, backend="auto", n_threads=None, device=None, dtype=None):
        super().__init__()
        src = BlockSparseLinear(in_features, out_features, block_shape, density, bias,
                                backend=backend, n_threads=n_threads, device=device,
                                dtype=dtype)
        S = src.compressed()
        self._setup(in_features, out_features, src.bias, backend, n_threads,
                    torch.from_numpy(np.array(S.blocks)).to(src.weight.device,
                                                           src.weight.dtype),
                    torch.from_numpy(np.array(S.indices)).to(src.weight.device),
                    torch.from_numpy(np.array(S.indptr)).to(src.weight.device))

    def _setup(self, in_features, out_features, bias, backend, n_threads, blocks, indices,
               indptr):
        self._init_common(in_features, out_features, bias is not None, backend, n_threads,
                          blocks.device, blocks.dtype)
        self.block_shape = BlockShape.of((blocks.shape[1], blocks.shape[2]))
        self.blocks = nn.Parameter(blocks.detach().clone())
        self.register_buffer("indices", indices.detach().clone())
        self.register_buffer("indptr", indptr.detach().clone())
        self._copy_bias(bias)

    @classmethod
    def _from_parts(cls, blocks, indices, indptr, in_features, out_features, bias, *,
                    backend="auto", n_threads=None):
        return cls._built(in_features, out_features, bias, backend, n_threads, blocks, indices,
                          indptr)

    @classmethod
    def from_dense(cls, linear, block_shape=(16, 16), density=0.1, *, score=None, mask=None,
                   backend="auto", n_threads=None):
        """Prune an ``nn.Linear`` to its blocks of largest Frobenius norm (or
        ``score``, summed over each block; or exactly ``mask``).

        Parameters
        ----------
        linear : torch.nn.Linear
        block_shape : (int, int), default=(16, 16)
        density : float in (0, 1], default=0.1
            Fraction of blocks kept (ignored with ``mask``).
        score : Tensor of shape (out_features, in_features), optional
            Keep the blocks of largest summed score.
        mask : bool Tensor of shape (out_features / r, in_features / c), optional
            The blocks to keep.
        backend : {"auto", "sparsecore", "masked"}, default="auto"
        n_threads : int or None

        Returns
        -------
        CompactBlockLinear
        """
        _check_linear(linear)
        bs = BlockShape.of(block_shape)
        r, c = bs
        out_f, in_f = linear.out_features, linear.in_features
        if out_f % r or in_f % c:
            raise ValueError(f"block_shape {(r, c)} does not divide the weight shape "
                             f"{(out_f, in_f)}")
        W = linear.weight.detach()
        Wc = W.cpu()
        if Wc.dtype not in _ops.KERNEL_DTYPES:
            Wc = Wc.float()
        if mask is not None:
            if score is not None:
                raise ValueError("give score or mask, not both")
            keep = torch.as_tensor(mask).detach().cpu()
            if keep.dtype != torch.bool or tuple(keep.shape) != (out_f // r, in_f // c):
                raise ValueError(f"mask must be a bool tensor of shape {(out_f // r, in_f // c)}"
                                 f", got {keep.dtype} {tuple(keep.shape)}")
            keep = keep.numpy()
        else:
            if not isinstance(density, numbers.Real) or not 0 < density <= 1:
                raise ValueError(f"density must be in (0, 1], got {density!r}")
            if score is None:
                keep = _block_keep(block_prune(Wc.numpy(), bs, density))
            else:
                sc = torch.from_numpy(_check_score(score, W.shape))
                norms = sc.reshape(out_f // r, r, in_f // c, c).sum(dim=(1, 3))
                k = max(1, int(round(density * norms.numel())))
                flat = torch.zeros(norms.numel(), dtype=torch.bool)
                flat[torch.topk(norms.flatten(), k).indices] = True
                keep = flat.reshape(norms.shape).numpy()
        S = BlockSparseMatrix._from_pattern(Wc.numpy().reshape(out_f // r, r, in_f // c, c),
                                            keep, (out_f, in_f), bs)
        return cls._from_parts(torch.from_numpy(np.array(S.blocks)).to(W.device, W.dtype),
                               torch.from_numpy(np.array(S.indices)).to(W.device),
                               torch.from_numpy(np.array(S.indptr)).to(W.device),
                               in_f, out_f, linear.bias, backend=backend, n_threads=n_threads)

    def _reference_param(self):
        return self.blocks

    def _pattern_repr(self):
        r, c = self.block_shape
        return f"block_shape=({r}, {c}), density={self.density:.3g}, compact"

    @property
    def density(self):
        """Fraction of blocks stored."""
        r, c = self.block_shape
        return self.blocks.shape[0] / ((self.out_features // r) * (self.in_features // c))

    @property
    def nnz(self):
        """Number of stored weights."""
        return self.blocks.numel()

    def _block_rows(self):
        mb = self.out_features // self.block_shape.rows
        return torch.repeat_interleave(torch.arange(mb, device=self.indptr.device),
                                       self.indptr.diff().long())

    @property
    def block_mask(self):
        """Boolean (out_features / r, in_features / c): the stored blocks."""
        r, c = self.block_shape
        keep = torch.zeros(self.out_features // r, self.in_features // c, dtype=torch.bool,
                           device=self.indptr.device)
        keep[self._block_rows(), self.indices.long()] = True
        return keep

    @property
    def mask(self):
        """Boolean (out_features, in_features): True inside stored blocks."""
        r, c = self.block_shape
        return self.block_mask.repeat_interleave(r, 0).repeat_interleave(c, 1)

    def dense_weight(self):
        """The (out_features, in_features) weight with zeros outside the stored
        blocks (differentiable with respect to ``blocks``).

        Returns
        -------
        torch.Tensor
        """
        r, c = self.block_shape
        mb, nb = self.out_features // r, self.in_features // c
        W4 = self.blocks.new_zeros(mb, nb, r, c)
        W4 = W4.index_put((self._block_rows(), self.indices.long()), self.blocks)
        return W4.transpose(1, 2).reshape(self.out_features, self.in_features)

    def _op_forward(self, x2, activation, direct=False):
        op = _ops.block_linear_eager if direct else torch.ops.sparsecore.block_linear
        return op(x2, self.blocks, self.indices, self.indptr, self.out_features,
                  self._op_threads(), self.bias, activation)

    def to_masked(self):
        """The training form: a :class:`BlockSparseLinear` with a dense weight
        and block mask (for :class:`DynamicSparsifier`); a copy.

        Returns
        -------
        BlockSparseLinear
        """
        return self._block_training_form(tuple(self.block_shape), self.block_mask)

    def get_extra_state(self):
        """Block shape and features (checked when a state_dict is loaded).

        Returns
        -------
        dict
        """
        r, c = self.block_shape
        return {"format": "block", "block_shape": [r, c], "in_features": self.in_features,
                "out_features": self.out_features}

    def _prepare_load(self, state_dict, prefix):
        keys = self._structure_keys(state_dict, prefix, ("blocks", "indices", "indptr"))
        if keys:
            blocks, indices, indptr = (state_dict[k] for k in keys)
            self._check_structure(blocks, indices, indptr, keys)
            if blocks.shape != self.blocks.shape or indices.dtype != self.indices.dtype:
                # a different number of stored blocks: resize before the copy
                self.blocks = nn.Parameter(self.blocks.new_empty(blocks.shape),
                                           requires_grad=self.blocks.requires_grad)
                self.indices = self.indices.new_empty(indices.shape, dtype=indices.dtype)
                self.indptr = self.indptr.new_empty(indptr.shape, dtype=indptr.dtype)

    def _check_structure(self, blocks, indices, indptr, names):
        r, c = self.block_shape
        mb, nb = self.out_features // r, self.in_features // c
        for t, name in zip((blocks, indices, indptr), names):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"state_dict[{name!r}] must be a tensor")
        if blocks.dim() != 3 or tuple(blocks.shape[1:]) != (r, c):
            raise ValueError(f"state_dict[{names[0]!r}] must have shape (nnzb, {r}, {c}), got "
                             f"{tuple(blocks.shape)}")
        if indices.dtype not in (torch.int32, torch.int64) or indptr.dtype != indices.dtype:
            raise TypeError(f"state_dict[{names[1]!r}] and [{names[2]!r}] must share an int32 "
                            f"or int64 dtype, got {indices.dtype} and {indptr.dtype}")
        if tuple(indices.shape) != (blocks.shape[0],) or tuple(indptr.shape) != (mb + 1,):
            raise ValueError(f"state_dict[{names[1]!r}] must have shape ({blocks.shape[0]},) and "
                             f"[{names[2]!r}] ({mb + 1},); got {tuple(indices.shape)} and "
                             f"{tuple(indptr.shape)}")
        p = indptr.long()
        if int(p[0]) != 0 or int(p[-1]) != blocks.shape[0] or bool((p.diff() < 0).any()):
            raise ValueError(f"state_dict[{names[2]!r}] must rise from 0 to {blocks.shape[0]}")
        j = indices.long()
        if j.numel() and (int(j.min()) < 0 or int(j.max()) >= nb):
            raise ValueError(f"state_dict[{names[1]!r}] must hold block columns in 0..{nb - 1}")
        rows = torch.repeat_interleave(torch.arange(mb), p.diff())
        key = rows * nb + j
        if key.numel() > 1 and bool((key.diff() <= 0).any()):
            raise ValueError(f"state_dict[{names[1]!r}] must increase within each block row")


#: fraction of weights kept from which unstructured sparsity is stored as a
#: row bitmask rather than CSR (1 x 1 blocks). The bitmask costs 4 bytes a
#: kept weight and 1/8 byte a weight, CSR 8 bytes a kept weight; the
#: bitmask's products cost what the rows' lengths do (or a dense GEMM past 16
#: batch rows), CSR's what their nonzeros do. Layers of 768..5632 features,
#: 1 thread: at 50 % kept the bitmask ran 1.1-1.7x dense on 1-8 rows and
#: 0.75-0.9x on 128-512, CSR 0.75-1.35x and 0.57-0.78x; at 35 % kept CSR
#: was ahead from 8 rows up (1.0-2.2x against 0.6-1.9x).
BITMASK_MIN_DENSITY = Fraction(2, 5)


def prefers_bitmask(nnz, numel):
    """Whether ``nnz`` stored weights of ``numel`` make a row bitmask
    rather than CSR (at least BITMASK_MIN_DENSITY, compared exactly)."""
    return nnz >= BITMASK_MIN_DENSITY * numel


def bitmask_parts(W, keep):
    """The row-bitmask form of the entries of W (out, in) where ``keep``
    (bool, same shape) is True: values in row-major order, the uint8
    bitmask (out, ceil(in / 8); column j is bit j % 8 of byte j // 8) and
    each row's start in values (int64, (out,))."""
    keep = keep.detach().cpu().bool()
    counts = keep.sum(1)
    bits = torch.from_numpy(np.packbits(keep.numpy(), axis=-1, bitorder="little"))
    return (W.detach()[keep.to(W.device)].contiguous(), bits.to(W.device),
            (torch.cumsum(counts, 0) - counts).to(torch.int64).to(W.device))


class CompactBitmaskLinear(_CompactLinear):
    """A linear layer of unstructured sparsity stored as a row bitmask: the
    stored weights in row-major order, one bit per weight that says whether
    it is stored, and where each row's values start. This is the
    ``sparse-bitmask`` layout of compressed-tensors (the unstructured format
    llm-compressor writes). A float32 layer stores 4 bytes a kept weight and
    1/8 byte a weight: at 50 % density 0.53 of ``nn.Linear`` (CSR needs 8
    bytes a kept weight, as many as dense at 50 %).

    On the CPU, batches of up to 16 rows (decoding) run in a kernel that
    reads each row once for all of them, expanding 16 weights at a time from
    their mask bits (AVX-512; AVX2: 8 at a time by a permute); wider batches
    expand the weight to dense (a block of rows at a time when large) and use
    torch's GEMM (0.75-1.0x the dense layer's speed). The values are trainable (gradient: ``dy.T @ x`` at the
    stored positions); the positions are fixed.

    Parameters
    ----------
    in_features, out_features : int
    density : float in (0, 1], default=0.5
        Fraction of weights stored (the largest of a random init).
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
    n_threads : int or None
    device, dtype : optional

    Attributes
    ----------
    values : Parameter, shape (nnz,)
    bitmask : uint8 buffer, shape (out_features, ceil(in_features / 8))
    row_offsets : int64 buffer, shape (out_features,)

    See Also
    --------
    CompactBlockLinear : 1 x 1 blocks (CSR), the better form below about 40 %
        of the weights stored.

    Notes
    -----
    The vector kernels multiply a whole 8 or 16 columns of a row by x, the
    weights a row does not store as zeros: an inf or NaN of x in such a
    column reaches the row's output there, as in a dense product (and in the
    GEMM of wide batches), while the float64 kernel and the CSR layer skip
    unstored columns.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import CompactBitmaskLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = CompactBitmaskLinear.from_dense(torch.nn.Linear(64, 32), density=0.5)
    >>> layer.values.shape, layer.bitmask.shape
    (torch.Size([1024]), torch.Size([32, 8]))
    >>> x = torch.randn(3, 64)
    >>> torch.allclose(layer(x), layer.to_dense()(x), atol=1e-6)
    True
    """

    def __init__(self, in_features, out_features, density=0.5, bias=True, *, backend="auto",
                 n_threads=None, device=None, dtype=None):
        super().__init__()
        src = nn.Linear(_check_features(in_features, "in_features"),
                        _check_features(out_features, "out_features"), bias=bias,
                        device=device, dtype=dtype)
        W = src.weight.detach()
        self._setup(in_features, out_features, src.bias, backend, n_threads,
                    *bitmask_parts(W, _top_fraction(W.abs(), _check_density(density))))

    def _setup(self, in_features, out_features, bias, backend, n_threads, values, bitmask,
               row_offsets):
        self._init_common(in_features, out_features, bias is not None, backend, n_threads,
                          values.device, values.dtype)
        self.values = nn.Parameter(values.detach().clone())
        self.register_buffer("bitmask", bitmask.detach().to(torch.uint8).clone())
        self.register_buffer("row_offsets", row_offsets.detach().to(torch.int64).clone())
        self._copy_bias(bias)

    @classmethod
    def _from_parts(cls, values, bitmask, row_offsets, in_features, out_features, bias, *,
                    backend="auto", n_threads=None):
        return cls._built(in_features, out_features, bias, backend, n_threads, values, bitmask,
                          row_offsets)

    @classmethod
    def from_dense(cls, linear, density=None, *, score=None, mask=None, backend="auto",
                   n_threads=None):
        """Store an ``nn.Linear``'s weights as a row bitmask.

        Parameters
        ----------
        linear : torch.nn.Linear
        density : float in (0, 1], optional
            Keep this fraction of the weights, those of largest magnitude (or
            ``score``) in the whole layer. None (the default): keep the
            nonzero weights (a weight pruned elsewhere).
        score : Tensor of shape (out_features, in_features), optional
            Ranks the weights for ``density``.
        mask : bool Tensor of shape (out_features, in_features), optional
            Keep exactly these entries; excludes ``density`` and ``score``.
        backend : {"auto", "sparsecore", "masked"}, default="auto"
        n_threads : int or None

        Returns
        -------
        CompactBitmaskLinear
        """
        _check_linear(linear)
        W = linear.weight.detach()
        shape = tuple(W.shape)
        if mask is not None:
            if density is not None or score is not None:
                raise ValueError("give mask alone, without density or score")
            keep = torch.as_tensor(mask).detach().cpu()
            if keep.dtype != torch.bool or tuple(keep.shape) != shape:
                raise ValueError(f"mask must be a bool tensor of shape {shape}, got "
                                 f"{keep.dtype} {tuple(keep.shape)}")
        elif density is None:
            if score is not None:
                raise ValueError("score needs a density")
            keep = W.cpu() != 0
        else:
            rank = W.abs() if score is None else torch.from_numpy(_check_score(score, shape))
            keep = _top_fraction(rank.cpu(), _check_density(density))
        return cls._from_parts(*bitmask_parts(W, keep), linear.in_features, linear.out_features,
                               linear.bias, backend=backend, n_threads=n_threads)

    def _reference_param(self):
        return self.values

    def _pattern_repr(self):
        return f"density={self.density:.3g}, bitmask, compact"

    @property
    def nnz(self):
        """Number of stored weights."""
        return self.values.numel()

    @property
    def density(self):
        """Stored weights over ``in_features * out_features``."""
        return self.nnz / (self.in_features * self.out_features)

    @property
    def mask(self):
        """Boolean (out_features, in_features): True at the stored positions."""
        return _ops.bitmask_unpack(self.bitmask, self.in_features)

    def dense_weight(self):
        """The (out_features, in_features) weight with zeros outside the
        stored positions (differentiable with respect to ``values``).

        Returns
        -------
        torch.Tensor
        """
        return _ops.bitmask_dense(self.values, self.bitmask, self.row_offsets,
                                  self.in_features, self._op_threads(),
                                  kernel=_plain_eager(self.values.detach()))

    def _op_forward(self, x2, activation, direct=False):
        op = _ops.bitmask_linear_eager if direct else torch.ops.sparsecore.bitmask_linear
        return op(x2, self.values, self.bitmask, self.row_offsets, self.in_features,
                  self._op_threads(), self.bias, activation)

    def to_masked(self):
        """The training form: a :class:`BlockSparseLinear` of 1 x 1 blocks with
        a dense weight and mask (for :class:`DynamicSparsifier`); a copy.

        Returns
        -------
        BlockSparseLinear
        """
        return self._block_training_form((1, 1), self.mask)

    def get_extra_state(self):
        """Format and features (checked when a state_dict is loaded).

        Returns
        -------
        dict
        """
        return {"format": "bitmask", "in_features": self.in_features,
                "out_features": self.out_features}

    def _prepare_load(self, state_dict, prefix):
        keys = self._structure_keys(state_dict, prefix, ("values", "bitmask", "row_offsets"))
        if keys:
            values, bitmask, row_offsets = (state_dict[k] for k in keys)
            check_bitmask(values, bitmask, row_offsets, self.out_features, self.in_features,
                          keys)
            if values.shape != self.values.shape:
                # a different number of stored weights: resize before the copy
                self.values = nn.Parameter(self.values.new_empty(values.shape),
                                           requires_grad=self.values.requires_grad)


def check_bitmask(values, bitmask, row_offsets, out_features, in_features, names):
    """Raise unless (values, bitmask, row_offsets) is a valid row bitmask of
    an (out_features, in_features) weight; ``names`` name the three in the
    messages."""
    for t, name in zip((values, bitmask, row_offsets), names):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    mld = -(-in_features // 8)
    if bitmask.dtype != torch.uint8 or tuple(bitmask.shape) != (out_features, mld):
        raise ValueError(f"{names[1]} must be uint8 of shape {(out_features, mld)}, got "
                         f"{bitmask.dtype} {tuple(bitmask.shape)}")
    if in_features % 8 and bool((bitmask[:, -1] >> (in_features % 8)).any()):
        raise ValueError(f"{names[1]} sets bits past in_features={in_features}")
    counts = _ops.bitmask_unpack(bitmask, in_features).sum(1)
    if values.dim() != 1 or not values.dtype.is_floating_point or values.numel() != int(
            counts.sum()):
        raise ValueError(f"{names[0]} must be a 1-D floating tensor with one value per set "
                         f"bit ({int(counts.sum())}), got {values.dtype} "
                         f"{tuple(values.shape)}")
    if (row_offsets.dtype != torch.int64 or tuple(row_offsets.shape) != (out_features,)
            or not torch.equal(row_offsets.cpu(), (torch.cumsum(counts, 0) - counts).cpu())):
        raise ValueError(f"{names[2]} must be int64 of shape ({out_features},) holding where "
                         f"each row starts in {names[0]}")


def _check_density(density):
    if isinstance(density, bool) or not isinstance(density, numbers.Real) or not (
            0 < density <= 1):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return float(density)


def _top_fraction(rank, density):
    """Boolean mask of the round(density * size) largest entries of rank
    (at least one; ties keep the lower index)."""
    k = max(1, int(round(density * rank.numel())))
    flat = torch.zeros(rank.numel(), dtype=torch.bool, device=rank.device)
    order = torch.sort(rank.flatten(), descending=True, stable=True).indices
    flat[order[:k]] = True
    return flat.reshape(rank.shape)


class MonarchLinear(_SparseLinearBase):
    """A linear layer whose weight is a Monarch matrix ``P L P^T R`` with
    block-diagonal ``L`` and ``R`` (Dao et al., "Monarch: Expressive
    Structured Matrices for Efficient and Accurate Training", ICML 2022).

    Parameters
    ----------
    in_features, out_features : int
    n_blocks : int, (int, int) or None
        Blocks of L and R, as in :func:`sparsecore.ops.monarch_project`
        (None: about ``sqrt(min(in, out))``).
    bias : bool, default=True
    backend : {"auto", "sparsecore", "masked"}, default="auto"
        "masked" here means the stacked-matmul torch reference.
    n_threads : int or None
        Kernel threads (None: ``torch.get_num_threads()``, less the CPUs other
        processes keep busy).
    device, dtype : optional
        Where and in which floating dtype to allocate the parameters (as for
        ``torch.nn.Linear``).

    Attributes
    ----------
    left : Parameter, shape (l, s, r)
        Diagonal blocks of L (``out_features = l * s``).
    right : Parameter, shape (k, q, p)
        Diagonal blocks of R (``in_features = k * p``).

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import MonarchLinear
    >>> layer = MonarchLinear(256, 256, n_blocks=16)
    >>> layer(torch.randn(2, 256)).shape
    torch.Size([2, 256])
    >>> layer.in_features * layer.out_features    # a dense layer's weights
    65536
    >>> sum(p.numel() for p in layer.parameters())  # Monarch factors and bias
    8448
    """

    weight = _WEIGHT_PROPERTY
    _apply = _apply_dropping_view

    def __init__(self, in_features, out_features, n_blocks=None, bias=True, *, backend="auto",
                 n_threads=None, device=None, dtype=None):
        super().__init__()
        self._init_common(in_features, out_features, bias, backend, n_threads, device, dtype)
        (k, q, p), (l, s, r) = monarch_layout((self.out_features, self.in_features), n_blocks)
        factory = {"device": device, "dtype": dtype}
        self.right = nn.Parameter(torch.empty(k, q, p, **factory))
        self.left = nn.Parameter(torch.empty(l, s, r, **factory))
        # each factor keeps unit gain like nn.Linear's default init per fan-in
        nn.init.uniform_(self.right, -1 / math.sqrt(p), 1 / math.sqrt(p))
        nn.init.uniform_(self.left, -1 / math.sqrt(r), 1 / math.sqrt(r))
        self._reset_bias(self.in_features)

    def _reference_param(self):
        return self.left

    def _pattern_repr(self):
        return f"n_blocks=({self.left.shape[0]}, {self.right.shape[0]})"

    @property
    def n_params(self):
        """Stored weights (bias excluded)."""
        return self.left.numel() + self.right.numel()

    def _kernel_forward(self, x2):
        y = torch.ops.sparsecore.monarch_linear(x2, self.left, self.right, self._op_threads())
        return y if self.bias is None else y.add_(self.bias)

    def _masked_forward(self, x2):
        return monarch_reference(x2, self.left, self.right, self.bias)

    @classmethod
    def from_dense(cls, linear, n_blocks=None, *, method="svd", backend="auto", n_threads=None):
        """Project a (trained) ``nn.Linear`` onto the nearest Monarch matrix in
        Frobenius norm (:func:`sparsecore.ops.monarch_project`).

        Parameters
        ----------
        linear : torch.nn.Linear
            Layer to project.
        n_blocks : int or None, optional
            Number of blocks, as for the constructor.
        method : str, optional
            Projection method of :func:`sparsecore.ops.monarch_project`.
        backend : str, optional
            As for the constructor.
        n_threads : int or None, optional
            As for the constructor.

        Returns
        -------
        MonarchLinear
        """
        _check_linear(linear)
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, n_blocks,
                    bias=linear.bias is not None, backend=backend, n_threads=n_threads,
                    device=W.device, dtype=W.dtype)
        Wc = W.cpu()
        if Wc.dtype not in _ops.KERNEL_DTYPES:
            Wc = Wc.float()
        M = monarch_project(Wc.numpy(), (layer.left.shape[0], layer.right.shape[0]),
                            method=method)
        with torch.no_grad():
            layer.left.copy_(torch.from_numpy(np.array(M.left)))
            layer.right.copy_(torch.from_numpy(np.array(M.right)))
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer

    def dense_weight(self):
        """The (out_features, in_features) weight ``P L P^T R`` (differentiable).

        Returns
        -------
        torch.Tensor of shape (out_features, in_features)
        """
        eye = torch.eye(self.in_features, dtype=self.left.dtype, device=self.left.device)
        return monarch_reference(eye, self.left, self.right).T

    def to_dense(self):
        """An ``nn.Linear`` holding the Monarch weight (a copy).

        Returns
        -------
        torch.nn.Linear
        """
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.left.device, dtype=self.left.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.dense_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin


_KINDS = {"nm": NMSparseLinear, "block": BlockSparseLinear, "monarch": MonarchLinear}
_COMPACT_KINDS = {"nm": CompactNMLinear, "block": CompactBlockLinear}


def parse_structure(text):
    """("nm", n, m) for "N:M" (1 <= N < M <= 16), ("block", r, c) for "RxC"
    (sides in ``BLOCK_DIMS``), None for any other value."""
    if not isinstance(text, str):
        return None
    p = text.strip().lower()
    sep = ":" if ":" in p else "x" if "x" in p else None
    if sep is None:
        return None
    try:
        a, b = (int(v) for v in p.split(sep))
    except ValueError:
        return None
    if sep == ":" and 1 <= a < b <= 16:
        return ("nm", a, b)
    if sep == "x" and a in BLOCK_DIMS and b in BLOCK_DIMS:
        return ("block", a, b)
    return None


def is_conv1d(module):
    """Whether ``module`` is transformers' ``Conv1D`` (GPT-2 and its kin): a
    linear layer that stores its weight transposed, (in_features,
    out_features), and computes ``bias + x @ weight``."""
    cls = type(module)
    return (cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")
            and isinstance(getattr(module, "weight", None), torch.Tensor)
            and module.weight.dim() == 2)


def linear_features(module):
    """(in_features, out_features) of an ``nn.Linear`` or a transformers
    ``Conv1D``."""
    if is_conv1d(module):
        return tuple(module.weight.shape)
    return module.in_features, module.out_features


def as_linear(module):
    """``module`` itself when it is an ``nn.Linear``; a transformers
    ``Conv1D`` as the ``nn.Linear`` that computes the same (weight transposed
    and copied, bias copied, same device, dtype and mode)."""
    if not is_conv1d(module):
        return module
    n_in, n_out = module.weight.shape
    W = module.weight
    lin = nn.Linear(n_in, n_out, bias=module.bias is not None, device=W.device, dtype=W.dtype)
    with torch.no_grad():
        lin.weight.copy_(W.T)
        if module.bias is not None:
            lin.bias.copy_(module.bias)
    lin.weight.requires_grad_(W.requires_grad)
    lin.train(module.training)
    return lin


def linear_targets(model, include, exclude):
    """(name, module) of every ``nn.Linear`` and transformers ``Conv1D`` of
    ``model`` (not the model itself) whose qualified name matches a pattern of
    ``include`` and none of ``exclude`` (``fnmatch``; a str is one pattern)."""
    include = (include,) if isinstance(include, str) else tuple(include)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    return [(name, mod) for name, mod in model.named_modules()
            if (type(mod) is nn.Linear or is_conv1d(mod)) and name
            and any(fnmatch.fnmatchcase(name, p) for p in include)
            and not any(fnmatch.fnmatchcase(name, p) for p in exclude)]


def sparsify(model, kind="nm", *, include="*", exclude=(), **kwargs):
    """Replace the ``nn.Linear`` layers of ``model`` (and transformers'
    ``Conv1D``, GPT-2's linear layers) in place by sparse ones.

    Parameters
    ----------
    model : torch.nn.Module
    kind : {"nm", "block", "monarch"}
        NMSparseLinear, BlockSparseLinear or MonarchLinear, each built by its
        ``from_dense`` (pruning/projecting the trained weights).
    include : str or sequence of str, default="*"
        ``fnmatch`` patterns on the qualified module names (``"encoder.*.fc1"``).
    exclude : str or sequence of str
        Patterns of names to leave dense (e.g. the classifier head).
    **kwargs
        Passed to ``from_dense`` (``n=2, m=4``; ``block_shape, density``;
        ``n_blocks``).

    Returns
    -------
    dict of str to Module
        The replaced layers by name (empty if no layer matched).

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import sparsify
    >>> model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(),
    ...                             torch.nn.Linear(64, 10))
    >>> replaced = sparsify(model, "nm", exclude="2", n=2, m=4)   # leave the head dense
    >>> sorted(replaced), type(model[0]).__name__
    (['0'], 'NMSparseLinear')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cls = _KINDS[kind]
    replaced = {}
    for name, mod in linear_targets(model, include, exclude):
        try:
            new = cls.from_dense(as_linear(mod), **kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"cannot sparsify layer {name!r}: {exc}") from exc
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        replaced[name] = new
    return replaced


def compact(model, *, inplace=False):
    """Convert the training-form sparse layers of ``model`` to their compact
    inference form (:class:`NMSparseLinear` to :class:`CompactNMLinear`,
    :class:`BlockSparseLinear` to :class:`CompactBlockLinear`); other modules,
    :class:`MonarchLinear` included (already compact), are kept.

    Parameters
    ----------
    model : torch.nn.Module
        A model, or a single layer. A :class:`DynamicSparsifier` must have
        squashed its masks first (``sparsifier.squash_mask()``).
    inplace : bool, default=False
        Convert ``model`` itself; otherwise a deep copy is converted and
        ``model`` is left as it was (as ``torch.ao.quantization.convert``).

    Returns
    -------
    torch.nn.Module
        The converted model (``model`` itself when ``inplace``). A single
        layer given as ``model`` is returned converted.

    Examples
    --------
    >>> import torch
    >>> from sparsecore.torch import NMSparseLinear, compact
    >>> model = torch.nn.Sequential(NMSparseLinear(16, 8), torch.nn.ReLU())
    >>> small = compact(model)
    >>> type(small[0]).__name__, type(model[0]).__name__
    ('CompactNMLinear', 'NMSparseLinear')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, (NMSparseLinear, BlockSparseLinear)):
        return model.compact()
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod):
            raise ValueError(f"module {name!r} still has parametrizations (a sparsifier's "
                             f"masks?); call sparsifier.squash_mask() before compact()")
    if not inplace:
        model = copy.deepcopy(model)
    targets = [(name, mod) for name, mod in model.named_modules()
               if isinstance(mod, (NMSparseLinear, BlockSparseLinear))]
    for name, mod in targets:
        _set_module(model, name, mod.compact())
    return model


def _set_module(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
