"""Sparse drop-in replacements for ``torch.nn.Linear``."""
import fnmatch
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsecore.formats import BlockShape, BlockSparseMatrix, NMPattern, NMSparseMatrix
from sparsecore.formats._monarch import monarch_layout
from sparsecore.ops import block_prune, monarch_project, nm_prune
from sparsecore.torch._functional import (
    mask_with_dense_grad,
    monarch_linear,
    monarch_reference,
    structured_linear,
)

__all__ = ["BlockSparseLinear", "MonarchLinear", "NMSparseLinear", "sparsify"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_BACKENDS = ("auto", "sparsecore", "masked")


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
        return torch.get_num_threads() if self.n_threads is None else self.n_threads

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
        ok = x.device.type == "cpu" and x.dtype in _KERNEL_DTYPES
        if self.backend == "sparsecore" and not ok:
            raise ValueError(
                f"backend='sparsecore' needs float32/float64 tensors on the CPU, got "
                f"{x.dtype} on {x.device}; use backend='auto'"
            )
        return ok

    def forward(self, x):
        self._check_input(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if self._use_kernel(x):
            y = self._kernel_forward(x2)
        else:
            y = self._masked_forward(x2)
        return y.reshape(*lead, self.out_features)

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
        S = self.compressed()
        return structured_linear(x2, self.weight, self.bias, S, n_threads=self._threads(),
                                 sink=self)

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
        Kernel threads (None: ``torch.get_num_threads()``).
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
            Kernel threads (None: ``torch.get_num_threads()``).

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
            if Wc.dtype not in _KERNEL_DTYPES:
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
        if W.device.type != "cpu" or W.dtype not in _KERNEL_DTYPES:
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
        Kernel threads (None: ``torch.get_num_threads()``).
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
            if Wc.dtype not in _KERNEL_DTYPES:
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
        if W.device.type != "cpu" or W.dtype not in _KERNEL_DTYPES:
            W = W.to("cpu", torch.float64 if W.dtype == torch.float64 else torch.float32)
        r, c = self.block_shape
        mb, nb = self.block_mask.shape
        P4 = W.numpy().reshape(mb, r, nb, c)
        keep = self.block_mask.detach().cpu().numpy()
        return BlockSparseMatrix._from_pattern(P4, keep, (self.out_features, self.in_features),
                                               self.block_shape)


def _block_keep(S):
    """(mb, nb) boolean map of the stored blocks of a BlockSparseMatrix."""
    m, n = S.shape
    r, c = S.block_shape
    keep = np.zeros((-(-m // r), -(-n // c)), dtype=bool)
    ib = np.repeat(np.arange(keep.shape[0]), np.diff(S.indptr))
    keep[ib, S.indices] = True
    return keep


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
        Kernel threads (None: ``torch.get_num_threads()``).
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
        return monarch_linear(x2, self.left, self.right, self.bias, n_threads=self._threads())

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
        if Wc.dtype not in _KERNEL_DTYPES:
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


def sparsify(model, kind="nm", *, include="*", exclude=(), **kwargs):
    """Replace the ``nn.Linear`` layers of ``model`` in place by sparse ones.

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
    include = (include,) if isinstance(include, str) else tuple(include)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    cls = _KINDS[kind]
    targets = [(name, mod) for name, mod in model.named_modules()
               if type(mod) is nn.Linear and name
               and any(fnmatch.fnmatchcase(name, p) for p in include)
               and not any(fnmatch.fnmatchcase(name, p) for p in exclude)]
    replaced = {}
    for name, mod in targets:
        try:
            new = cls.from_dense(mod, **kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"cannot sparsify layer {name!r}: {exc}") from exc
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        replaced[name] = new
    return replaced
