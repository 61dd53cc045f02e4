"""Plain functions over the compiled kernels.

Each takes scipy.sparse or structured-format operands and numpy arrays,
validates them once, and calls a kernel with the GIL released.
"""
from sparsecore.ops._monarch import monarch_project
from sparsecore.ops._spgemm import spgemm

__all__ = ["monarch_project", "spgemm"]
