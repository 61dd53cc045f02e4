"""SparCL as an Avalanche plugin (``pip install avalanche-lib``).

::

    from avalanche.training import DER
    from sparsecore.continual.avalanche import SparCLPlugin

    plugin = SparCLPlugin(sparsity=0.75, grad_sparsity=0.8)
    strategy = DER(model, optimizer, criterion, mem_size=500, plugins=[plugin], ...)

TDM runs in ``before_training_epoch``, DGM in ``before_forward`` /
``after_backward``, the weight masks are re-applied in ``after_update``; the
model's linear layers compute through sparsecore's SpMM/SDDMM kernels and
``plugin.flops_`` counts the training FLOPs. Rehearsal is the strategy's.
"""
try:
    from avalanche.core import SupervisedPlugin
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sparsecore.continual.avalanche needs Avalanche: pip install avalanche-lib"
    ) from exc

from sparsecore.continual._plugin import SparCLCallbacks

__all__ = ["SparCLPlugin"]


class SparCLPlugin(SparCLCallbacks, SupervisedPlugin):
    """Task-aware dynamic masking and dynamic gradient masking (SparCL, Wang
    et al., NeurIPS 2022) for any Avalanche supervised strategy; parameters as
    :class:`sparsecore.continual._plugin.SparCLCallbacks`."""

    def __init__(self, sparsity=0.75, **kwargs):
        SupervisedPlugin.__init__(self)
        SparCLCallbacks.__init__(self, sparsity, **kwargs)
