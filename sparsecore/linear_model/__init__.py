"""Linear models: estimators solved by greedy block coordinate descent, and
sparse Bayesian learning (classic and Kronecker-structured).

Importing this subpackage imports scikit-learn (the estimators follow its API);
``import sparsecore`` alone does not.
"""
from sparsecore.linear_model._kronecker_sbl import (
    KroneckerSBLResult,
    kronecker_posterior,
    kronecker_sbl,
)
from sparsecore.linear_model._logistic import GreedyBCDLogisticRegression
from sparsecore.linear_model._path import enet_path, lasso_path, logistic_path
from sparsecore.linear_model._regression import GreedyBCDElasticNet, GreedyBCDLasso
from sparsecore.linear_model._sbl import SBLResult, sbl
from sparsecore.linear_model._sbl_estimators import KroneckerSBL, SBLRegressor

__all__ = [
    "GreedyBCDElasticNet",
    "GreedyBCDLasso",
    "GreedyBCDLogisticRegression",
    "KroneckerSBL",
    "KroneckerSBLResult",
    "SBLRegressor",
    "SBLResult",
    "enet_path",
    "kronecker_posterior",
    "kronecker_sbl",
    "lasso_path",
    "logistic_path",
    "sbl",
]
