"""Plain functions over the compiled kernels.

Each takes scipy.sparse or structured-format operands and numpy arrays,
validates them once, and calls a kernel with the GIL released.
"""
from sparsecore.ops._prune import block_prune, nm_prune
from sparsecore.formats._monarch_project import monarch_project
from sparsecore.ops._semiring import SEMIRINGS, Semiring, user_semiring
from sparsecore.ops._spgemm import spgemm
from sparsecore.ops._spgemm_topk import spgemm_topk
from sparsecore.ops._spmm import sddmm, spmm
from sparsecore.ops._spgemm_symbolic import SymbolicProduct, spgemm_symbolic
from sparsecore.ops._topk import topk_product

__all__ = ["SEMIRINGS", "Semiring", "SymbolicProduct", "block_prune", "monarch_project", "nm_prune", "sddmm", "spgemm",
           "spgemm_symbolic", "spgemm_topk", "spmm", "topk_product", "user_semiring"]
