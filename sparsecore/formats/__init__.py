"""Structured sparse formats (block-sparse, N:M, Monarch, Kronecker).

Each is a small class holding numpy arrays, with ``shape``, ``dtype``, ``@``,
``toarray()`` and conversions; general sparse matrices stay scipy.sparse.
"""
from sparsecore.formats._base import StructuredSparseMatrix
from sparsecore.formats._block import BlockShape, BlockSparseMatrix
from sparsecore.formats._kronecker import KroneckerOperator
from sparsecore.formats._monarch import MonarchMatrix, MonarchProduct
from sparsecore.formats._monarch_project import monarch_project
from sparsecore.formats._nm import NMPattern, NMSparseMatrix

__all__ = [
    "BlockShape",
    "BlockSparseMatrix",
    "KroneckerOperator",
    "MonarchMatrix",
    "MonarchProduct",
    "NMPattern",
    "NMSparseMatrix",
    "StructuredSparseMatrix",
    "monarch_project",
]
