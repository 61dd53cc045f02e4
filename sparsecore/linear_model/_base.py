"""Shared pieces of the greedy BCD estimators (private)."""
import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from sparsecore.optimize._partitions import PARTITIONS
from sparsecore.optimize._solver import SELECTIONS, UPDATES

__all__ = ["BCD_PARAMETER_CONSTRAINTS", "warn_not_converged", "bcd_kwargs"]

BCD_PARAMETER_CONSTRAINTS = {
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "selection": [StrOptions(set(SELECTIONS))],
    "partition": [StrOptions(set(PARTITIONS))],
    "block_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
    "update": [StrOptions(set(UPDATES))],
    "screening": ["boolean"],
    "n_threads": [None, Interval(numbers.Integral, None, None, closed="neither")],
    "verbose": ["verbose"],
}


def bcd_kwargs(est):
    """The solver keywords every estimator forwards to ``greedy_bcd``."""
    return dict(
        tol=est.tol, max_iter=est.max_iter, max_epochs=est.max_epochs,
        selection=est.selection, partition=est.partition, block_size=est.block_size,
        update=est.update, screening=est.screening, random_state=est.random_state,
        n_threads=est.n_threads, verbose=est.verbose,
    )


def warn_not_converged(est, res, what=""):
    """A ConvergenceWarning that says how far the fit got and what to change."""
    if res.converged:
        return
    name = type(est).__name__
    if res.criterion == "gap":
        got = f"relative duality gap (P - D) / P = {res.rel_gap:.3e} (gap {res.gap:.3e})"
    else:
        got = "relative coordinate optimality violation above tol"
    warnings.warn(
        f"{name}{what} did not converge: {got} > tol = {est.tol:.1e} after "
        f"{res.n_iter} block updates (max_iter={est.max_iter}). Increase max_iter "
        f"(or max_epochs), loosen tol, or check the scaling of X (standardised "
        f"features converge fastest) and that the regularisation is not vanishingly "
        f"small.",
        ConvergenceWarning,
        stacklevel=3,
    )
