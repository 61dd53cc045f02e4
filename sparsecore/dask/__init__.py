"""SpGEMM and SpMM on Dask (needs dask: ``pip install "sparsecore[dask]"``).

Sparse matrices are dask arrays whose chunks are canonical
:class:`scipy.sparse.csr_array` blocks: build them with :func:`from_scipy`,
:func:`from_row_blocks` or :func:`read_matrix_market`. :func:`spgemm`
multiplies two of them, each task running the sparse-core kernel, after a
symbolic pass that sizes the graph and refuses products that do not fit the
cluster (:func:`plan_spgemm`). :func:`spmm` multiplies an in-memory sparse
weight by a dask dense array chunked along the batch. Both run on the
threaded scheduler and on dask.distributed, with kernel threads per task
taken from each worker's resources (:func:`task_threads`).
"""
from sparsecore.plugins._builtin import DaskAdapter

DaskAdapter("dask").require()

from sparsecore.dask._construct import from_row_blocks, from_scipy, read_matrix_market  # noqa: E402
from sparsecore.dask._resources import ClusterResources, cluster_resources, task_threads  # noqa: E402
from sparsecore.dask._spgemm import SpGEMMPlan, plan_spgemm, spgemm  # noqa: E402
from sparsecore.dask._spmm import spmm  # noqa: E402

__all__ = [
    "ClusterResources",
    "SpGEMMPlan",
    "cluster_resources",
    "from_row_blocks",
    "from_scipy",
    "plan_spgemm",
    "read_matrix_market",
    "spgemm",
    "spmm",
    "task_threads",
]
