"""Plain functions over the compiled kernels.

Each takes scipy.sparse or structured-format operands and numpy arrays,
validates them once, and calls a kernel with the GIL released.
"""
from sparsecore.ops._spgemm import spgemm
from sparsecore.ops._spgemm_symbolic import SymbolicProduct, spgemm_symbolic

__all__ = ["SymbolicProduct", "spgemm", "spgemm_symbolic"]
