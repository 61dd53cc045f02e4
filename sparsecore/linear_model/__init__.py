"""Linear models: sparse Bayesian learning (classic and Kronecker-structured).

Importing this subpackage imports scikit-learn (the estimators follow its API);
``import sparsecore`` alone does not.
"""
from sparsecore.linear_model._kronecker_sbl import (
    KroneckerSBLResult,
    kronecker_posterior,
    kronecker_sbl,
)
from sparsecore.linear_model._sbl import SBLResult, sbl
from sparsecore.linear_model._sbl_estimators import KroneckerSBL, SBLRegressor

__all__ = [
    "KroneckerSBL",
    "KroneckerSBLResult",
    "SBLRegressor",
    "SBLResult",
    "kronecker_posterior",
    "kronecker_sbl",
    "sbl",
]
