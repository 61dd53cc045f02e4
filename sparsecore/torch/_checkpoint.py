"""Checkpoints in the ``compressed-tensors`` safetensors layouts.

The ``compressed-tensors`` package (vLLM project; written by llm-compressor)
stores a sparse model as safetensors in which the dense key ``P.weight`` of
each compressed module ``P`` is replaced by

==================  ================================  ==============================
key                 ``sparse-24-bitmask`` (2:4)       ``sparse-bitmask`` (any)
==================  ================================  ==============================
``P.shape``         int64 ``[[out], [in]]``           int64 ``[out, in]``
``P.compressed``    ``(out, in / 2)``: the two kept   1-D: every nonzero, row-major
                    values of each group of 4
``P.bitmask``       uint8 ``(out, ceil(in / 8))``     same
``P.row_offsets``   --                                int64 ``(out,)``: where each
                                                      row starts in ``compressed``
==================  ================================  ==============================

The bitmask is little-endian per row: column ``j`` of row ``r`` is bit
``j % 8`` of byte ``(r, j // 8)`` (``numpy.packbits(mask, axis=-1,
bitorder="little")``). Every other tensor is stored as is, and ``config.json``
describes the compression under ``"quantization_config"`` (``"sparsity_config"``
holds the format, the targets and the sparsity). The reader and writer here
follow the layouts of compressed-tensors 0.9 to 0.14 (the sparse compressors
left the package in 0.15) and never go through a dense weight for the 2:4
format: its values are exactly an N:M layer's values, its set bits the
in-group offsets.
"""
import json
import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sparsecore.formats._block import BLOCK_DIMS
from sparsecore.torch._layers import (
    BlockSparseLinear,
    CompactBitmaskLinear,
    CompactBlockLinear,
    CompactNMLinear,
    NMSparseLinear,
    is_conv1d,
    linear_features,
    parse_structure,
    prefers_bitmask,
)

__all__ = ["load_compressed_tensors", "save_compressed_tensors"]

_FORMATS = ("sparse-24-bitmask", "sparse-bitmask")
#: the compressed-tensors release whose layouts are written (the last one
#: with sparse compressors)
_LAYOUT_VERSION = "0.14.0.1"
_WEIGHTS = "model.safetensors"
_INDEX = "model.safetensors.index.json"
_SPARSE = (CompactNMLinear, NMSparseLinear, CompactBlockLinear, BlockSparseLinear,
           CompactBitmaskLinear)


def _safetensors():
    try:
        from safetensors.torch import load_file, save_file
    except ImportError:
        raise ImportError("compressed-tensors checkpoints need the safetensors package: "
                          "pip install safetensors (or \"sparsecore[prune]\")") from None
    return load_file, save_file


def _pack(mask):
    """(out, in) bool -> uint8 (out, ceil(in / 8)), LSB first per row."""
    return torch.from_numpy(np.packbits(mask.cpu().numpy(), axis=-1, bitorder="little"))


def _unpack(bits, cols):
    return torch.from_numpy(np.unpackbits(bits.cpu().numpy(), axis=-1, count=cols,
                                          bitorder="little").astype(bool))


def _is_24(layer):
    return (isinstance(layer, (CompactNMLinear, NMSparseLinear)) and layer.n == 2
            and layer.m == 4 and layer.in_features % 4 == 0)


# --------------------------------------------------------------- writer ----

def save_compressed_tensors(model, save_directory, *, format="auto"):
    """Save a model with sparse layers as a ``compressed-tensors``
    checkpoint (``model.safetensors`` and ``config.json``).

    Every :class:`CompactNMLinear`, :class:`NMSparseLinear`,
    :class:`CompactBlockLinear`, :class:`BlockSparseLinear` and
    :class:`CompactBitmaskLinear` of the model
    is stored compressed; all other tensors of its ``state_dict`` are stored
    as they are. The checkpoint loads with :func:`load_compressed_tensors`
    and with the ``compressed-tensors`` package (releases 0.9 to 0.14, e.g.
    ``ModelCompressor.from_compression_config(config["quantization_config"])
    .decompress(directory, model)``).

    Parameters
    ----------
    model : torch.nn.Module
        Not modified.
    save_directory : str or os.PathLike
        Created if missing. An existing ``config.json`` there is updated
        (its ``"quantization_config"`` replaced); otherwise the model's
        ``config.to_dict()`` (a Hugging Face model) or an empty object is
        written with it.
    format : {"auto", "sparse-24-bitmask", "sparse-bitmask"}, default="auto"
        "sparse-24-bitmask": 2:4 layers only (the two kept values of every
        group of four and a bitmask; a group's slot that holds an explicit
        zero is stored as kept). "sparse-bitmask": any pattern (the nonzero
        values, a bitmask and row offsets; explicit zeros are dropped).
        "auto": the first when every sparse layer is 2:4, else the second.

    Returns
    -------
    pathlib.Path
        The directory.

    Notes
    -----
    ``sparsity_config["targets"]`` lists the compressed modules by name,
    ``"sparsity_structure"`` is ``"2:4"`` when every one is 2:4 (else
    ``"unstructured"``), and ``"global_sparsity"`` is the fraction of zeros
    among all the model's parameters. Weights are written (out_features,
    in_features), as ``nn.Linear`` holds them, also where the layer was pruned
    from a transformers ``Conv1D`` (GPT-2), which holds its weight transposed:
    :func:`load_compressed_tensors` reads such a checkpoint back into the same
    architecture; the compressed-tensors package would load it transposed.

    Examples
    --------
    >>> import tempfile, torch
    >>> from sparsecore.torch import (CompactNMLinear, load_compressed_tensors,
    ...                               save_compressed_tensors)
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(CompactNMLinear(16, 8), torch.nn.ReLU())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_compressed_tensors(model, d)
    ...     loaded = load_compressed_tensors(d, torch.nn.Sequential(
    ...         torch.nn.Linear(16, 8), torch.nn.ReLU()))
    >>> type(loaded[0]).__name__, torch.equal(loaded[0].values, model[0].values)
    ('CompactNMLinear', True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(save_directory, (str, os.PathLike)):
        raise TypeError(f"save_directory must be a str or os.PathLike, got "
                        f"{type(save_directory).__name__}")
    if format not in ("auto",) + _FORMATS:
        raise ValueError(f"format must be 'auto', {_FORMATS[0]!r} or {_FORMATS[1]!r}, got "
                         f"{format!r}")
    _, save_file = _safetensors()
    sparse = {n: m for n, m in model.named_modules() if isinstance(m, _SPARSE)}
    if not sparse:
        raise ValueError("model has no sparse layer (CompactNMLinear, NMSparseLinear, "
                         "CompactBlockLinear, BlockSparseLinear, CompactBitmaskLinear) to "
                         "compress")
    all_24 = all(_is_24(m) for m in sparse.values())
    fmt = format if format != "auto" else ("sparse-24-bitmask" if all_24 else "sparse-bitmask")
    if fmt == "sparse-24-bitmask":
        for name, m in sparse.items():
            if not _is_24(m):
                what = (f"{m.n}:{m.m}" if hasattr(m, "m") else f"{m.block_shape} blocks"
                        if hasattr(m, "block_shape") else "unstructured (a row bitmask)")
                raise ValueError(f"format 'sparse-24-bitmask' stores 2:4 layers with "
                                 f"in_features a multiple of 4; layer {name!r} is {what} with "
                                 f"in_features={m.in_features}: use format='sparse-bitmask'")
    state = model.state_dict()
    prefixes = tuple(n + "." for n in sparse)
    tensors, zeros, total = {}, 0, 0
    for key, val in state.items():
        if key.startswith(prefixes):
            continue
        if not isinstance(val, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] is a {type(val).__name__}; a safetensors "
                            f"checkpoint holds tensors only")
        tensors[key] = val.detach().cpu().contiguous().clone()
    for name, val in model.named_parameters():
        if not name.startswith(prefixes):
            total += val.numel()
            zeros += int((val.detach() == 0).sum())
    for name, m in sparse.items():
        parts, nnz = _compress(m, fmt)
        tensors.update({f"{name}.{k}": v for k, v in parts.items()})
        if m.bias is not None:
            tensors[f"{name}.bias"] = m.bias.detach().cpu().contiguous().clone()
            total += m.bias.numel()
            zeros += int((m.bias.detach() == 0).sum())
        total += m.in_features * m.out_features
        zeros += m.in_features * m.out_features - nnz
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / _WEIGHTS), metadata={"format": "pt"})
    cfg_path = out / "config.json"
    if cfg_path.exists():
        with open(cfg_path) as f:
            config = json.load(f)
    else:
        to_dict = getattr(getattr(model, "config", None), "to_dict", None)
        config = dict(to_dict()) if callable(to_dict) else {}
    config.pop("compression_config", None)
    config["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "version": _LAYOUT_VERSION,
        "sparsity_config": {
            "format": fmt,
            "targets": sorted(sparse),
            "ignore": [],
            "global_sparsity": zeros / total if total else 0.0,
            "sparsity_structure": "2:4" if all_24 else "unstructured",
        },
        "transform_config": {},
    }
    with open(cfg_path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True, default=str)
    return out


def _compress(m, fmt):
    """The compressed tensors of one sparse layer and its count of stored
    nonzeros."""
    out_f, in_f = m.out_features, m.in_features
    if fmt == "sparse-24-bitmask":
        c = m.compact() if isinstance(m, NMSparseLinear) else m
        values = c.values.detach().cpu().contiguous().clone()
        mask = c.mask.cpu()
        return ({"shape": torch.tensor([[out_f], [in_f]], dtype=torch.int64),
                 "compressed": values, "bitmask": _pack(mask)},
                int((values != 0).sum()))
    if isinstance(m, CompactBitmaskLinear):  # already this layout
        return ({"shape": torch.tensor([out_f, in_f], dtype=torch.int64),
                 "compressed": m.values.detach().cpu().contiguous().clone(),
                 "bitmask": m.bitmask.cpu().clone(), "row_offsets": m.row_offsets.cpu().clone()},
                m.nnz)
    if isinstance(m, (NMSparseLinear, BlockSparseLinear)):
        W = m.masked_weight().detach()
    else:
        W = m.dense_weight().detach()
    W = W.cpu()
    mask = W != 0
    counts = mask.sum(1)
    return ({"shape": torch.tensor([out_f, in_f], dtype=torch.int64),
             "compressed": W[mask].contiguous(), "bitmask": _pack(mask),
             "row_offsets": (torch.cumsum(counts, 0) - counts).to(torch.int64)},
            int(counts.sum()))


# --------------------------------------------------------------- reader ----

def _read_config(directory):
    path = directory / "config.json"
    if not path.exists():
        return None
    with open(path) as f:
        config = json.load(f)
    qc = config.get("quantization_config") or config.get("compression_config")
    if not isinstance(qc, dict):
        return None
    if qc.get("config_groups"):
        raise ValueError(f"{path} describes a quantized checkpoint (config_groups); only the "
                         f"sparse formats {_FORMATS} are read")
    sc = qc.get("sparsity_config") or {}
    fmt = sc.get("format")
    if fmt not in (None, "dense") + _FORMATS:
        raise ValueError(f"{path}: sparsity format {fmt!r} is not supported (only "
                         f"{_FORMATS} and 'dense')")
    return sc


def _weight_files(path):
    if path.is_file():
        return [path]
    index = path / _INDEX
    if index.exists():
        with open(index) as f:
            weight_map = json.load(f).get("weight_map", {})
        return [path / name for name in sorted(set(weight_map.values()))]
    if (path / _WEIGHTS).exists():
        return [path / _WEIGHTS]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors file in {path}")
    return files


def _parse_pattern(pattern):
    if pattern in ("auto", "bitmask", "csr", "dense"):
        return pattern
    kind = parse_structure(pattern)
    if kind is None:
        raise ValueError(f"pattern must be 'auto', 'N:M' (1 <= N < M <= 16), 'RxC' (blocks, "
                         f"each of 1, 2, 4, 8, 16, 32), 'bitmask', 'csr' or 'dense', got "
                         f"{pattern!r}")
    return kind


def _block_map(mask, r, c):
    """(out / r, in / c) map of the r x c blocks holding a nonzero."""
    R, K = mask.shape
    return mask.reshape(R // r, r, K // c, c).any(dim=3).any(dim=1)


def _block_shape_of(mask):
    """The largest r x c blocks (r, c of 1, 2, 4, ..., 32; at least 2
    entries) whose kept blocks hold only nonzeros, all but 1 %, as a layer
    pruned to blocks does; None when no such shape tiles the mask."""
    R, K = mask.shape
    nnz = int(mask.sum())

    def full(r, c):
        return nnz >= 0.99 * int(_block_map(mask, r, c).sum()) * r * c

    # a shape that passes passes for every shape dividing it: an unstructured
    # mask is rejected by the two smallest
    if not any(R % r == 0 and K % c == 0 and full(r, c) for r, c in ((1, 2), (2, 1))):
        return None
    shapes = sorted(((r, c) for r in BLOCK_DIMS for c in BLOCK_DIMS
                     if r * c >= 2 and R % r == 0 and K % c == 0),
                    key=lambda rc: (-rc[0] * rc[1], -rc[0]))
    return next(((r, c) for r, c in shapes if full(r, c)), None)


def _fits(mask, n, m):
    R, K = mask.shape
    if K % m:
        return False
    return bool((mask.reshape(R, K // m, m).sum(-1) <= n).all())


def load_compressed_tensors(path, model, *, pattern="auto", strict=True, backend="auto",
                            n_threads=None):
    """Load a ``compressed-tensors`` checkpoint into a model, replacing each
    compressed layer by a compact sparse layer.

    Reads the ``sparse-24-bitmask`` and ``sparse-bitmask`` layouts, as
    written by llm-compressor or the ``compressed-tensors`` package (releases
    0.9 to 0.14) and by :func:`save_compressed_tensors`. Quantized
    checkpoints are not read.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint directory (``config.json`` and ``model.safetensors``, or
        shards listed in ``model.safetensors.index.json``) or one
        ``.safetensors`` file. The format of each compressed weight is read
        from its keys (``row_offsets`` present: ``sparse-bitmask``); a
        ``config.json`` that names another format is an error.
    model : torch.nn.Module
        The model the checkpoint was saved from, or one of the same
        architecture (e.g. built from the same config): its state_dict's
        names are the checkpoint's. Modified in place, as by
        ``load_state_dict``: each module ``P`` whose ``P.weight`` is stored
        compressed (an ``nn.Linear``, a transformers ``Conv1D`` or a sparse
        layer of the same shape) is replaced; all other tensors are copied
        into the model.
    pattern : {"auto", "N:M", "RxC", "bitmask", "csr", "dense"}, default="auto"
        Layer built for a ``sparse-bitmask`` weight: "N:M" a
        :class:`CompactNMLinear` (each group of M along ``in_features`` may
        hold at most N nonzeros), "RxC" a :class:`CompactBlockLinear` of R x C
        blocks (each block holding a nonzero is stored), "bitmask" a
        :class:`CompactBitmaskLinear` (the checkpoint's own layout), "csr" a
        :class:`CompactBlockLinear` of 1 x 1 blocks, "dense" an
        ``nn.Linear``; "auto": 2:4 where the nonzeros fit it, else the largest
        blocks whose stored blocks hold only nonzeros (all but 1 %), as a
        layer pruned to blocks does, else the bitmask where at least 40 % of
        the weights are stored, else CSR.
        ``sparse-24-bitmask`` weights always become 2:4
        :class:`CompactNMLinear` layers (unless "dense").
    strict : bool, default=True
        Raise if the checkpoint and the model do not hold the same names.
    backend : {"auto", "sparsecore", "masked"}, default="auto"
        Backend of the new sparse layers.
    n_threads : int or None
        Kernel threads of the new sparse layers.

    Returns
    -------
    torch.nn.Module
        ``model``. The new layers take the dtype and device of the layers
        they replace. Activations that a pruned model ran inside its kernels
        are not part of the checkpoint (the model's own activation modules
        run them): :func:`fuse_activations` moves them in again.

    Raises
    ------
    ValueError
        Before the model is changed: a malformed compressed weight (shape,
        bit counts, values), a module missing or of another shape, names
        that differ (with ``strict``), a quantized checkpoint.

    Examples
    --------
    >>> import tempfile, torch
    >>> from sparsecore.torch import (CompactNMLinear, load_compressed_tensors,
    ...                               save_compressed_tensors)
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(CompactNMLinear(16, 8), torch.nn.ReLU())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_compressed_tensors(model, d)
    ...     loaded = load_compressed_tensors(d, torch.nn.Sequential(
    ...         torch.nn.Linear(16, 8), torch.nn.ReLU()))
    >>> x = torch.randn(4, 16)
    >>> torch.allclose(loaded(x), model(x))
    True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    kind = _parse_pattern(pattern)
    if n_threads is not None and (not isinstance(n_threads, numbers.Integral)
                                  or isinstance(n_threads, bool) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive int or None, got {n_threads!r}")
    if backend not in ("auto", "sparsecore", "masked"):
        raise ValueError(f"backend must be 'auto', 'sparsecore' or 'masked', got {backend!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    load_file, _ = _safetensors()
    sc = _read_config(path) if path.is_dir() else None
    tensors = {}
    for f in _weight_files(path):
        tensors.update(load_file(str(f)))

    prefixes = sorted(k[:-len(".bitmask")] for k in tensors if k.endswith(".bitmask")
                      and k[:-len(".bitmask")] + ".compressed" in tensors)
    want = sc.get("format") if sc else None
    new, used = {}, set()
    for p in prefixes:
        fmt = "sparse-bitmask" if p + ".row_offsets" in tensors else "sparse-24-bitmask"
        if want is not None and want != fmt:
            raise ValueError(f"config.json names format {want!r}, but {p!r} is stored as "
                             f"{fmt!r}")
        try:
            mod = model.get_submodule(p)
        except AttributeError:
            raise ValueError(f"the checkpoint holds the compressed weight of {p!r}, which is "
                             f"not a module of the model") from None
        if not (isinstance(mod, (nn.Linear,) + _SPARSE) or is_conv1d(mod)):
            raise ValueError(f"module {p!r} is a {type(mod).__name__}; an nn.Linear, a "
                             f"transformers Conv1D or a sparse linear layer is needed for a "
                             f"compressed weight")
        keys = [p + s for s in (".shape", ".compressed", ".bitmask", ".row_offsets")
                if p + s in tensors]
        if p + ".shape" not in tensors:
            raise ValueError(f"checkpoint key {p + '.shape'!r} is missing")
        bias = tensors.get(p + ".bias")
        if bias is not None:
            keys.append(p + ".bias")
        if (bias is None) != (mod.bias is None) and strict:
            raise ValueError(f"module {p!r} {'has' if mod.bias is not None else 'has no'} "
                             f"bias, but the checkpoint {'has none' if bias is None else 'has one'}")
        used.update(keys)
        new[p] = _decode(p, tensors, fmt, mod, kind, bias, backend, n_threads)

    rest = {k: v for k, v in tensors.items() if k not in used}
    cut = tuple(p + "." for p in prefixes)
    expected = {k: v for k, v in model.state_dict().items()
                if not k.startswith(cut) and isinstance(v, torch.Tensor)}
    missing = sorted(set(expected) - set(rest))
    unexpected = sorted(set(rest) - set(expected))
    if strict and (missing or unexpected):
        raise ValueError(f"the checkpoint and the model hold different names: missing "
                         f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, unexpected "
                         f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''} (pass "
                         f"strict=False to load the names they share)")
    for k in set(rest) & set(expected):
        if tuple(rest[k].shape) != tuple(expected[k].shape):
            raise ValueError(f"checkpoint tensor {k!r} has shape {tuple(rest[k].shape)}, the "
                             f"model's {tuple(expected[k].shape)}")
    for p, layer in new.items():
        parent, _, child = p.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer)
    model.load_state_dict({k: v for k, v in rest.items() if k in expected}, strict=False)
    return model


def _decode(p, tensors, fmt, mod, kind, bias, backend, n_threads):
    shape = tensors[p + ".shape"]
    values = tensors[p + ".compressed"]
    bits = tensors[p + ".bitmask"]
    if shape.numel() != 2 or shape.dtype.is_floating_point:
        raise ValueError(f"checkpoint tensor {p + '.shape'!r} must hold two ints, got "
                         f"{shape.tolist()}")
    out_f, in_f = (int(v) for v in shape.flatten())
    n_in, n_out = linear_features(mod)
    if (out_f, in_f) != (n_out, n_in):
        raise ValueError(f"checkpoint weight {p!r} has shape {(out_f, in_f)}; the model's "
                         f"layer is {(n_out, n_in)} (out_features, in_features)")
    if bits.dtype != torch.uint8 or tuple(bits.shape) != (out_f, math.ceil(in_f / 8)):
        raise ValueError(f"checkpoint tensor {p + '.bitmask'!r} must be uint8 of shape "
                         f"{(out_f, math.ceil(in_f / 8))}, got {bits.dtype} "
                         f"{tuple(bits.shape)}")
    if not values.dtype.is_floating_point:
        raise ValueError(f"checkpoint tensor {p + '.compressed'!r} has dtype {values.dtype}; "
                         f"only floating-point (unquantized) weights are read")
    mask = _unpack(bits, in_f)
    ref = mod._reference_param() if isinstance(mod, _SPARSE) else mod.weight
    dtype, device = ref.dtype, ref.device
    if bias is not None:
        if tuple(bias.shape) != (out_f,):
            raise ValueError(f"checkpoint tensor {p + '.bias'!r} must have shape ({out_f},), "
                             f"got {tuple(bias.shape)}")
        bias = bias.to(dtype)
    opts = {"backend": backend, "n_threads": n_threads}
    if fmt == "sparse-24-bitmask":
        if in_f % 4 or tuple(values.shape) != (out_f, in_f // 2):
            raise ValueError(f"checkpoint tensor {p + '.compressed'!r} must have shape "
                             f"{(out_f, in_f // 2)} (in_features {in_f} a multiple of 4), "
                             f"got {tuple(values.shape)}")
        counts = mask.reshape(out_f, in_f // 4, 4).sum(-1)
        if bool((counts != 2).any()):
            raise ValueError(f"checkpoint tensor {p + '.bitmask'!r} must set exactly 2 bits "
                             f"in every group of 4 (sparse-24-bitmask)")
        if kind != "dense":
            cols = mask.nonzero()[:, 1].reshape(out_f, in_f // 2)
            layer = CompactNMLinear._from_parts(values.to(dtype), (cols % 4).to(torch.uint8),
                                                in_f, 2, 4, bias, **opts)
            return layer.to(device)
        W = torch.zeros(out_f, in_f, dtype=dtype)
        W[mask] = values.to(dtype).flatten()
    else:
        nnz = int(mask.sum())
        if values.dim() != 1 or values.numel() != nnz:
            raise ValueError(f"checkpoint tensor {p + '.compressed'!r} must be 1-D with one "
                             f"value per set bit ({nnz}), got shape {tuple(values.shape)}")
        counts = mask.sum(1)
        ro = tensors.get(p + ".row_offsets")
        if ro is None or tuple(ro.shape) != (out_f,) or not torch.equal(
                ro.to(torch.int64), torch.cumsum(counts, 0) - counts):
            raise ValueError(f"checkpoint tensor {p + '.row_offsets'!r} must hold where each "
                             f"of the {out_f} rows starts in {p + '.compressed'!r}")
        if kind == "auto":
            if _fits(mask, 2, 4):
                kind = ("nm", 2, 4)
            else:
                block = _block_shape_of(mask)
                if block is not None:
                    kind = ("block", *block)
                else:
                    kind = "bitmask" if prefers_bitmask(nnz, out_f * in_f) else "csr"
        if kind == "bitmask":
            # the mask repacked: bits past in_features cleared, as the kernel needs
            layer = CompactBitmaskLinear._from_parts(values.to(dtype), _pack(mask),
                                                     ro.to(torch.int64), in_f, out_f, bias,
                                                     **opts)
            return layer.to(device)
        if kind == "csr":
            idx_dtype = torch.int32 if max(nnz, in_f) < 2 ** 31 else torch.int64
            indptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
            layer = CompactBlockLinear._from_parts(
                values.to(dtype).reshape(-1, 1, 1), mask.nonzero()[:, 1].to(idx_dtype),
                indptr.to(idx_dtype), in_f, out_f, bias, **opts)
            return layer.to(device)
        W = torch.zeros(out_f, in_f, dtype=dtype)
        W[mask] = values.to(dtype)
        if kind != "dense" and kind[0] == "block":
            r, c = kind[1:]
            if out_f % r or in_f % c:
                raise ValueError(f"{p!r} of shape {(out_f, in_f)} is not a whole number of "
                                 f"{r}x{c} blocks")
            return CompactBlockLinear.from_dense(_linear(W, bias), (r, c),
                                                 mask=_block_map(mask, r, c), **opts).to(device)
        if kind != "dense":
            n, m = kind[1:]
            if not _fits(mask, n, m):
                raise ValueError(f"the nonzeros of {p!r} do not fit pattern '{n}:{m}' (more "
                                 f"than {n} in a group of {m}, or in_features {in_f} not a "
                                 f"multiple of {m})")
            return CompactNMLinear.from_dense(_linear(W, bias), n, m, mask=mask,
                                              **opts).to(device)
    return _linear(W, bias).to(device)


def _linear(W, bias):
    """An ``nn.Linear`` holding copies of W (out, in) and bias (or None)."""
    lin = nn.Linear(W.shape[1], W.shape[0], bias=bias is not None, dtype=W.dtype)
    with torch.no_grad():
        lin.weight.copy_(W)
        if bias is not None:
            lin.bias.copy_(bias)
    return lin
