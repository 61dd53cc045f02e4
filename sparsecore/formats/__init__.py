"""Structured sparse formats (block-sparse, N:M, Monarch, Kronecker).

Each is a small class holding numpy arrays, with ``shape``, ``dtype``, ``@``,
``toarray()`` and conversions; general sparse matrices stay scipy.sparse.
"""
from sparsecore.formats._kronecker import KroneckerOperator
from sparsecore.formats._monarch import MonarchMatrix, MonarchProduct

__all__ = ["KroneckerOperator", "MonarchMatrix", "MonarchProduct"]
