"""Descriptions of sparsecore's own adapters, registered in pyproject.toml.

Each is a light class: importing this module imports no optional dependency.
The adapter packages call ``<Adapter>().require()`` before importing theirs, so
a missing dependency gives an ImportError that names the extra to install.
"""
from sparsecore.plugins._base import Adapter

__all__ = [
    "ContinualAdapter",
    "DaskAdapter",
    "MoEAdapter",
    "RecsysAdapter",
    "TorchAdapter",
]


class MoEAdapter(Adapter):
    """``sparsecore.moe``: gates, permutation local search, sparse dispatch."""

    kind = "gate"
    description = "Mixture-of-Experts gates, permutation local search, sparse dispatch"
    module = "sparsecore.moe"
    requires = ("torch",)
    install = 'pip install "sparsecore[moe]"'


class TorchAdapter(Adapter):
    """``sparsecore.torch``: N:M, block-sparse and Monarch layers, dynamic sparsifier."""

    kind = "layer"
    description = "N:M, block-sparse and Monarch nn.Linear layers; dynamic sparse training"
    module = "sparsecore.torch"
    requires = ("torch",)
    install = 'pip install "sparsecore[torch]"'


class ContinualAdapter(Adapter):
    """``sparsecore.continual``: SparCL sparse continual learning (DER++/ER base)."""

    kind = "trainer"
    description = "SparCL continual learning: TDM, DDR, DGM on DER++/ER, sparse-core linear layers"
    module = "sparsecore.continual"
    requires = ("torch",)
    install = 'pip install "sparsecore[continual]"'


class DaskAdapter(Adapter):
    """``sparsecore.dask``: SpGEMM and SpMM on Dask arrays of CSR chunks."""

    kind = "distributed"
    description = "SpGEMM and SpMM on Dask (threaded scheduler or dask.distributed)"
    module = "sparsecore.dask"
    requires = ("dask",)
    install = 'pip install "sparsecore[dask]"'


class RecsysAdapter(Adapter):
    """``sparsecore.recsys``: Dynamic Sparse Learning recommenders and trainer."""

    kind = "trainer"
    description = "Dynamic Sparse Learning: recommenders under a fixed parameter budget"
    module = "sparsecore.recsys"
    requires = ("torch", "sklearn")
    install = 'pip install "sparsecore[recsys]"'
