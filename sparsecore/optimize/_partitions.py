"""Fixed block partitions of the coordinates (Nutini, Laradji & Schmidt 2022,
Section 3 and the released code's ``partition_rules.py``)."""
import numpy as np

__all__ = ["PARTITIONS", "make_partition"]

PARTITIONS = ("variable", "order", "sort", "avg", "random")


def make_partition(kind, lipschitz, block_size, rng):
    """Cut the coordinates into consecutive chunks of an ordering.

    Parameters
    ----------
    kind : {"order", "sort", "avg", "random"}
        ``order``: 0, 1, ..., p-1. ``sort``: by increasing coordinate
        Lipschitz constant, so every block holds similar constants and its
        block constant is tight (the paper's best fixed partition). ``avg``:
        the sorted list interleaved from both ends, so every block mixes large
        and small constants. ``random``: a random permutation.
    lipschitz : ndarray of shape (p,)
        Coordinate Lipschitz constants.
    block_size : int
        Chunk length; the last block is shorter when it does not divide p.
    rng : numpy.random.Generator

    Returns
    -------
    list of int64 arrays
    """
    p = len(lipschitz)
    if kind == "order":
        order = np.arange(p)
    elif kind == "sort":
        order = np.argsort(lipschitz, kind="stable")
    elif kind == "avg":
        s = np.argsort(lipschitz, kind="stable")
        order = np.empty(p, dtype=np.int64)
        order[0::2] = s[: (p + 1) // 2]
        order[1::2] = s[::-1][: p // 2]
    elif kind == "random":
        order = rng.permutation(p)
    else:  # pragma: no cover - validated by the caller
        raise ValueError(kind)
    order = order.astype(np.int64)
    return [order[i:i + block_size] for i in range(0, p, block_size)]
