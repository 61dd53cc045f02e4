"""PyTorch layers and sparsifiers on sparsecore's kernels (needs PyTorch:
``pip install "sparsecore[torch]"``).

Layers, drop-in replacements for ``torch.nn.Linear`` (forward and backward on
the CPU through :func:`sparsecore.ops.spmm`, :func:`sparsecore.ops.sddmm` and
the Monarch kernel; masked dense torch ops on other devices):
:class:`NMSparseLinear`, :class:`BlockSparseLinear`, :class:`MonarchLinear`,
and :func:`sparsify` to swap the linear layers of a model by name pattern.
:class:`DynamicSparsifier` prunes and regrows during training (RigL).

The kernels are ``torch.library`` custom operators (``torch.ops.sparsecore.*``),
so ``torch.compile(fullgraph=True)`` and ``torch.export`` trace the layers.
Inference layers store only the compact format: :class:`CompactNMLinear`,
:class:`CompactBlockLinear`, :class:`CompactBitmaskLinear` (and
:class:`MonarchLinear`'s two factors);
:func:`compact` converts a trained model's sparse layers to them, and
:func:`prune` prunes a trained model's ``nn.Linear`` layers after training
(magnitude, Wanda, SparseGPT) into them, and :func:`fuse_activations` moves
the activation after a layer into its kernel.
"""
from sparsecore.plugins._builtin import TorchAdapter

TorchAdapter("torch").require()

from sparsecore.torch import _ops  # noqa: E402,F401  (registers torch.ops.sparsecore.*)

from sparsecore.torch._checkpoint import (  # noqa: E402
    load_compressed_tensors,
    save_compressed_tensors,
)
from sparsecore.torch._functional import (  # noqa: E402
    monarch_linear,
    monarch_reference,
    structured_linear,
)
from sparsecore.torch._fuse import fuse_activations  # noqa: E402
from sparsecore.torch._layers import (  # noqa: E402
    BlockSparseLinear,
    CompactBitmaskLinear,
    CompactBlockLinear,
    CompactNMLinear,
    MonarchLinear,
    NMSparseLinear,
    compact,
    sparsify,
)
from sparsecore.torch._prune import prune  # noqa: E402
from sparsecore.torch._recover import recover  # noqa: E402
from sparsecore.torch._sparsifier import DynamicSparsifier  # noqa: E402

__all__ = [
    "BlockSparseLinear",
    "CompactBitmaskLinear",
    "CompactBlockLinear",
    "CompactNMLinear",
    "DynamicSparsifier",
    "MonarchLinear",
    "NMSparseLinear",
    "compact",
    "fuse_activations",
    "load_compressed_tensors",
    "monarch_linear",
    "monarch_reference",
    "prune",
    "recover",
    "save_compressed_tensors",
    "sparsify",
    "structured_linear",
]
