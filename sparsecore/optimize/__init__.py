"""Greedy block coordinate descent: datafits, penalties, partitions, selection
rules, block updates and the functional solver.

After J. Nutini, I. Laradji and M. Schmidt, "Let's Make Block Coordinate
Descent Converge Faster: Faster Greedy Rules, Message-Passing, Active-Set
Complexity, and Superlinear Convergence", JMLR 23(131), 2022.

>>> import numpy as np
>>> from sparsecore.optimize import greedy_bcd, Quadratic, L1
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((50, 20)); y = X[:, 0] - 2 * X[:, 3]
>>> res = greedy_bcd(Quadratic(), L1(0.1), X, y)
>>> bool(res.converged), np.flatnonzero(res.coef).tolist()
(True, [0, 3])
"""
from sparsecore.optimize._datafits import (
    Datafit,
    Logistic,
    Multinomial,
    Quadratic,
    UserDatafit,
    user_datafit,
)
from sparsecore.optimize._graph import (
    GRAPH_SELECTIONS,
    GraphQuadratic,
    GraphResult,
    forest_partition,
    graph_bcd,
    harmonic_solve,
    tree_solve,
)
from sparsecore.optimize._partitions import PARTITIONS, make_partition
from sparsecore.optimize._penalties import (
    Box,
    ElasticNet,
    L1,
    L2,
    NoPenalty,
    NonNegative,
    SeparablePenalty,
)
from sparsecore.optimize._solver import SELECTIONS, UPDATES, BCDResult, greedy_bcd
from sparsecore.optimize._user_penalty import UserPenalty, user_penalty

__all__ = [
    "BCDResult",
    "Box",
    "Datafit",
    "ElasticNet",
    "GRAPH_SELECTIONS",
    "GraphQuadratic",
    "GraphResult",
    "L1",
    "L2",
    "Logistic",
    "Multinomial",
    "NoPenalty",
    "NonNegative",
    "PARTITIONS",
    "Quadratic",
    "SELECTIONS",
    "SeparablePenalty",
    "UPDATES",
    "UserDatafit",
    "UserPenalty",
    "forest_partition",
    "graph_bcd",
    "greedy_bcd",
    "harmonic_solve",
    "make_partition",
    "tree_solve",
    "user_datafit",
    "user_penalty",
]
