"""Sparse continual learning: SparCL (Wang et al., NeurIPS 2022) on a DER++ or
ER rehearsal base, with weight-sparse linear layers computed by sparsecore's
SpMM/SDDMM kernels (needs PyTorch: ``pip install "sparsecore[continual]"``).

:class:`SparCL` trains a classifier on a stream of class-incremental tasks
with task-aware dynamic masking (TDM), dynamic data removal (DDR) and dynamic
gradient masking (DGM), each switchable; :func:`DERpp` and
:func:`naive_finetuning` are the dense baselines. :meth:`SparCL.evaluate`
fills an :class:`AccuracyMatrix` (average accuracy, forgetting) and
``flops_`` counts the training FLOPs as they run. Callbacks use Avalanche's
names (:data:`CALLBACKS`); ``sparsecore.continual.avalanche.SparCLPlugin``
plugs the same method into an Avalanche strategy.
"""
from sparsecore.plugins._builtin import ContinualAdapter

ContinualAdapter("continual").require()

from sparsecore.continual._buffer import Reservoir  # noqa: E402
from sparsecore.continual._data import (  # noqa: E402
    load_mnist_5k,
    make_mlp,
    split_by_classes,
    split_digits,
    split_mnist,
)
from sparsecore.continual._metrics import AccuracyMatrix  # noqa: E402
from sparsecore.continual._sparse import (  # noqa: E402
    FlopCount,
    LayerState,
    SparseLinearFunction,
)
from sparsecore.continual._trainer import (  # noqa: E402
    CALLBACKS,
    DERpp,
    SparCL,
    default_mask_schedule,
    naive_finetuning,
)

__all__ = [
    "AccuracyMatrix",
    "CALLBACKS",
    "DERpp",
    "FlopCount",
    "LayerState",
    "Reservoir",
    "SparCL",
    "SparseLinearFunction",
    "default_mask_schedule",
    "load_mnist_5k",
    "make_mlp",
    "naive_finetuning",
    "split_by_classes",
    "split_digits",
    "split_mnist",
]
