"""PyTorch layers and sparsifiers on sparsecore's kernels (needs PyTorch:
``pip install "sparsecore[torch]"``).

Layers, drop-in replacements for ``torch.nn.Linear`` (forward and backward on
the CPU through :func:`sparsecore.ops.spmm`, :func:`sparsecore.ops.sddmm` and
the Monarch kernel; masked dense torch ops on other devices):
:class:`NMSparseLinear`, :class:`BlockSparseLinear`, :class:`MonarchLinear`,
and :func:`sparsify` to swap the linear layers of a model by name pattern.
"""
from sparsecore.plugins._builtin import TorchAdapter

TorchAdapter("torch").require()

from sparsecore.torch._functional import (  # noqa: E402
    monarch_linear,
    monarch_reference,
    structured_linear,
)
from sparsecore.torch._layers import (  # noqa: E402
    BlockSparseLinear,
    MonarchLinear,
    NMSparseLinear,
    sparsify,
)

__all__ = [
    "BlockSparseLinear",
    "MonarchLinear",
    "NMSparseLinear",
    "monarch_linear",
    "monarch_reference",
    "sparsify",
    "structured_linear",
]
