"""Interaction matrices: input checks, per-user splits, negative sampling and
ranking metrics (numpy/scipy only)."""
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = [
    "as_interactions",
    "hit_at_k",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
    "sample_negatives",
    "train_test_split_per_user",
]

_METRICS = ("recall", "ndcg", "precision", "hit")


def _check_ids(ids, name, bound, bound_name):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {ids.shape}")
    if ids.size and ids.dtype.kind not in "iu":
        if ids.dtype.kind == "f" and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)):
            ids = ids.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or (bound is not None and ids.max() >= bound)):
        bad = ids[(ids < 0) | ((ids >= bound) if bound is not None else False)][0]
        raise ValueError(
            f"{name} has id {bad} out of range: ids must be in [0, {bound})"
            + (f" ({bound_name}={bound})" if bound_name else "")
        )
    return ids


def as_interactions(X, *, n_users=None, n_items=None, name="X"):
    """Return a binary ``float32`` CSR user x item matrix (canonical).

    Parameters
    ----------
    X : scipy.sparse matrix/array, dense 2-D array, or tuple (users, items)
        Interactions: every stored non-zero entry, or every (user, item)
        pair (duplicates count once).
    n_users, n_items : int or None
        Shape for (users, items) pairs (default: largest id + 1); checked
        against the matrix shape otherwise.
    name : str, default="X"
        Name of ``X`` in error messages.

    Returns
    -------
    scipy.sparse.csr_array
        Binary (all stored values 1), sorted indices, no duplicates.

    Raises
    ------
    ValueError
        Empty shape, no interactions, negative, complex or non-finite
        values, ids out of range, a shape that disagrees with
        ``n_users``/``n_items`` (matrix checks and messages are
        scikit-learn's ``check_array``).
    TypeError
        Non-numeric data or ids.
    """
    for arg, value in (("n_users", n_users), ("n_items", n_items)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                  or value <= 0):
            raise ValueError(f"{arg} must be a positive int or None, got {value!r}")
    if isinstance(X, tuple):
        if len(X) != 2:
            raise ValueError(f"{name} as a tuple must be (users, items), got {len(X)} arrays")
        users = _check_ids(X[0], f"{name}[0] (users)", n_users, "n_users")
        items = _check_ids(X[1], f"{name}[1] (items)", n_items, "n_items")
        if users.shape != items.shape:
            raise ValueError(
                f"{name}: users and items differ in length ({users.size} and {items.size})"
            )
        if users.size == 0:
            raise ValueError(f"{name} holds no interactions")
        shape = (n_users or int(users.max()) + 1, n_items or int(items.max()) + 1)
        R = sp.csr_array((np.ones(users.size, np.float32), (users, items)), shape=shape)
    else:
        from sklearn.utils.validation import check_array, check_non_negative

        # scikit-learn's checks and messages (2-D, finite, numeric, non-empty)
        R = check_array(X, accept_sparse=("csr", "csc", "coo"), dtype=(np.float64, np.float32),
                        input_name=name)
        check_non_negative(R, f"DSLRecommender ({name}: implicit feedback)")
        R = sp.csr_array(R, copy=True)
        for arg, value, axis in (("n_users", n_users, 0), ("n_items", n_items, 1)):
            if value is not None and value != R.shape[axis]:
                raise ValueError(f"{name} has shape {R.shape}, but {arg}={value}")
    if R.shape[0] == 0 or R.shape[1] == 0:
        raise ValueError(f"{name} has shape {R.shape}: at least one user and one item needed")
    R.sum_duplicates()
    R.eliminate_zeros()
    if R.nnz == 0:
        raise ValueError(f"{name} holds no interactions (all {R.shape[0]}x{R.shape[1]} entries are 0)")
    R = sp.csr_array((np.ones(R.nnz, np.float32), R.indices, R.indptr), shape=R.shape)
    R.has_canonical_format = True
    return R


def train_test_split_per_user(X, test_size=0.2, *, random_state=None):
    """Hold out ``test_size`` of each user's interactions at random.

    Each user with ``n`` interactions keeps ``n - round(test_size * n)`` for
    training (at least one), the rest for testing.

    Parameters
    ----------
    X : scipy.sparse matrix/array, dense 2-D array, or tuple (users, items)
        Interactions, as for :func:`as_interactions`.
    test_size : float, default=0.2
        Fraction of each user's interactions to hold out, in (0, 1).
    random_state : int, numpy.random.Generator or None, default=None
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    train, test : scipy.sparse.csr_array
        Binary, same shape as ``X``, disjoint.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    R = as_interactions(X)
    rng = np.random.default_rng(random_state)
    counts = np.diff(R.indptr)
    n_test = np.minimum(np.round(test_size * counts).astype(np.int64), np.maximum(counts - 1, 0))
    # a random rank within each row: rows' entries in random order
    key = rng.random(R.nnz)
    rows = np.repeat(np.arange(R.shape[0]), counts)
    order = np.lexsort((key, rows))
    rank = np.empty(R.nnz, dtype=np.int64)
    rank[order] = np.arange(R.nnz) - np.repeat(R.indptr[:-1], counts)
    test_mask = rank < n_test[rows]
    def part(mask):
        M = sp.csr_array((R.data[mask], (rows[mask], R.indices[mask])), shape=R.shape)
        M.sort_indices()
        return M
    return part(~test_mask), part(test_mask)


def sample_negatives(users, R, rng, max_rounds=20):
    """One uniformly random item per user that the user has not interacted
    with (rejection sampling; after ``max_rounds`` a user who has seen every
    item keeps a positive item, which then gives no BPR signal)."""
    n_items = R.shape[1]
    neg = rng.integers(0, n_items, size=users.size)
    flat = np.asarray(users, dtype=np.int64) * n_items
    seen = (np.repeat(np.arange(R.shape[0], dtype=np.int64), np.diff(R.indptr)) * n_items
            + R.indices)  # sorted: canonical CSR
    todo = np.arange(users.size)
    for _ in range(max_rounds):
        code = flat[todo] + neg[todo]
        pos = np.searchsorted(seen, code)
        hit = (pos < seen.size) & (seen[np.minimum(pos, seen.size - 1)] == code)
        todo = todo[hit]
        if todo.size == 0:
            break
        neg[todo] = rng.integers(0, n_items, size=todo.size)
    return neg


def parse_metric(metric):
    """``"recall@20"`` -> ("recall", 20)."""
    if not isinstance(metric, str) or "@" not in metric:
        raise ValueError(
            f"metric must look like 'recall@20' (one of {', '.join(_METRICS)} @ k), got {metric!r}"
        )
    name, _, k = metric.partition("@")
    if name not in _METRICS or not k.isdigit() or int(k) <= 0:
        raise ValueError(
            f"metric must look like 'recall@20' (one of {', '.join(_METRICS)} @ a positive k), "
            f"got {metric!r}"
        )
    return name, int(k)


def _hits(recommended, truth, users):
    """Boolean (n, k): recommended[r, c] is a test item of users[r]."""
    truth = sp.csr_array(truth)
    rows = truth[users]
    rows.sort_indices()
    n, k = recommended.shape
    hits = np.zeros((n, k), dtype=bool)
    for r in range(n):  # one searchsorted per user, vectorised over k
        cols = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
        if cols.size:
            rec = recommended[r]
            pos = np.searchsorted(cols, rec)
            hits[r] = (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == rec)
    return hits, np.diff(rows.indptr)


def recall_at_k(recommended, truth, users):
    """Mean over ``users`` of ``|top-k ∩ test| / |test|`` (users without test
    items must be left out by the caller).

    Parameters
    ----------
    recommended : ndarray of shape (n, k) of int
        Top-k item ids per user, best first.
    truth : scipy.sparse matrix/array
        Held-out user x item interactions.
    users : array-like of shape (n,) of int
        Row of ``truth`` for each row of ``recommended``.

    Returns
    -------
    float
    """
    hits, n_true = _hits(recommended, truth, users)
    return float(np.mean(hits.sum(1) / n_true))


def precision_at_k(recommended, truth, users):
    """Mean over ``users`` of ``|top-k ∩ test| / k``.

    Parameters
    ----------
    recommended : ndarray of shape (n, k) of int
        Top-k item ids per user, best first.
    truth : scipy.sparse matrix/array
        Held-out user x item interactions.
    users : array-like of shape (n,) of int
        Row of ``truth`` for each row of ``recommended``.

    Returns
    -------
    float
    """
    hits, _ = _hits(recommended, truth, users)
    return float(np.mean(hits.sum(1) / recommended.shape[1]))


def hit_at_k(recommended, truth, users):
    """Fraction of ``users`` with at least one test item in their top-k.

    Parameters
    ----------
    recommended : ndarray of shape (n, k) of int
        Top-k item ids per user, best first.
    truth : scipy.sparse matrix/array
        Held-out user x item interactions.
    users : array-like of shape (n,) of int
        Row of ``truth`` for each row of ``recommended``.

    Returns
    -------
    float
    """
    hits, _ = _hits(recommended, truth, users)
    return float(np.mean(hits.any(1)))


def ndcg_at_k(recommended, truth, users):
    """Mean binary-relevance NDCG@k: DCG = sum of 1/log2(rank + 1) over
    hits, normalised by the DCG of ``min(|test|, k)`` hits at the top
    (users without test items must be left out by the caller).

    Parameters
    ----------
    recommended : ndarray of shape (n, k) of int
        Top-k item ids per user, best first.
    truth : scipy.sparse matrix/array
        Held-out user x item interactions.
    users : array-like of shape (n,) of int
        Row of ``truth`` for each row of ``recommended``.

    Returns
    -------
    float
    """
    hits, n_true = _hits(recommended, truth, users)
    k = recommended.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discount
    ideal = np.cumsum(discount)[np.minimum(n_true, k) - 1]
    return float(np.mean(dcg / ideal))


METRIC_FUNCTIONS = {"recall": recall_at_k, "ndcg": ndcg_at_k, "precision": precision_at_k,
                    "hit": hit_at_k}
