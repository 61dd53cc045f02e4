"""Descriptions of sparsecore's own adapters, registered in pyproject.toml.

Each is a light class: importing this module imports no optional dependency.
The adapter packages call ``<Adapter>().require()`` before importing theirs, so
a missing dependency gives an ImportError that names the extra to install.
"""
from sparsecore.plugins._base import Adapter
from sparsecore.plugins._gates import GateAdapter

__all__ = [
    "COMETGateAdapter",
    "ContinualAdapter",
    "DaskAdapter",
    "DSelectKGateAdapter",
    "HashGateAdapter",
    "MoEAdapter",
    "RecsysAdapter",
    "TopKGateAdapter",
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


class TopKGateAdapter(GateAdapter):
    gate_name = "topk"
    gate = "sparsecore.moe._gates:TopKGate"
    description = "Top-k softmax gate, optionally noisy (Shazeer et al. 2017)"


class HashGateAdapter(GateAdapter):
    gate_name = "hash"
    gate = "sparsecore.moe._gates:HashGate"
    description = "fixed random hash routing of integer keys (Roller et al. 2021)"


class DSelectKGateAdapter(GateAdapter):
    gate_name = "dselect_k"
    gate = "sparsecore.moe._gates:DSelectKGate"
    description = "DSelect-k binary-encoding gate (Hazimeh et al. 2021)"


class COMETGateAdapter(GateAdapter):
    gate_name = "comet"
    gate = "sparsecore.moe._gates:COMETGate"
    description = "COMET k soft binary trees (Ibrahim et al. 2023)"


class RecsysAdapter(Adapter):
    """``sparsecore.recsys``: Dynamic Sparse Learning recommenders and trainer."""

    kind = "trainer"
    description = "Dynamic Sparse Learning: recommenders under a fixed parameter budget"
    module = "sparsecore.recsys"
    requires = ("torch", "sklearn")
    install = 'pip install "sparsecore[recsys]"'
