"""Generated and derived data for the Mixture-of-Experts and recommendation
experiments: a regression with a known sparse routing, the two-task
MovieLens examples of the multi-gate MoE papers, and block-structured
implicit feedback."""
import math

import numpy as np
import scipy.sparse as sp

__all__ = ["SYNTHETIC_STRUCTURES", "make_block_interactions", "make_movielens_multitask",
           "make_routing_regression"]

SYNTHETIC_STRUCTURES = ("trees", "leaf_pairs")


def _oblique_tree_leaves(X, depth, rng):
    """Leaf (0 .. 2**depth - 1) of each row of ``X`` in a random oblique tree:
    every node splits its samples by a random hyperplane through their median,
    so all leaves hold the same number of samples (up to one).

    Returns ``(leaf, planes, thresholds)``; node ``q`` of the tree in heap
    numbering (children ``2q+1`` and ``2q+2``, as in :class:`COMETGate`)
    sends ``x`` to its second child when ``planes[q] . x > thresholds[q]``.
    """
    leaf = np.zeros(len(X), dtype=np.int64)
    planes = np.zeros(((1 << depth) - 1, X.shape[1]))
    thresholds = np.zeros((1 << depth) - 1)
    nodes = {0: np.arange(len(X))}
    for level in range(depth):
        nxt = {}
        for node, idx in nodes.items():
            w = rng.standard_normal(X.shape[1])
            z = X[idx] @ w
            med = np.median(z) if len(idx) else 0.0
            right = z > med
            heap = (1 << level) - 1 + node
            planes[heap], thresholds[heap] = w, med
            nxt[2 * node] = idx[~right]
            nxt[2 * node + 1] = idx[right]
        nodes = nxt
    for node, idx in nodes.items():
        leaf[idx] = node
    return leaf, planes, thresholds


def make_routing_regression(n_samples=20_000, n_features=10, n_experts=16, depth=4,
                            noise=0.1, seed=0, *, k=2, structure="trees"):
    """Regression data from a sparse mixture of linear experts with a known
    routing.

    ``x ~ N(0, I)``; expert ``e`` is ``f_e(x) = beta_e . x + c_e`` with
    ``beta_e ~ N(0, I / n_features)``, ``c_e ~ N(0, 0.25)``;
    ``y = sum_e w_e(x) f_e(x) + noise * N(0, 1)``. The routing ``w(x)``:

    ``structure="trees"`` (default; the structure of the COMET gate, Ibrahim
    et al., KDD 2023): ``k`` independent oblique trees of the given depth
    (random hyperplanes through the median of the samples reaching each
    node, so leaves are balanced); leaf ``l`` of every tree is expert
    ``assignment[l]`` (one random labelling, using every expert when
    ``2**depth == n_experts``; COMET's leaf ``l`` is expert ``l`` in every
    tree, and expert labels are arbitrary). The weights are a softmax over the chosen experts of
    leaf logits ``a_{l,j}(x) = o_{l,j} . x + b_{l,j}`` (``o ~ N(0, I /
    n_features)``, ``b ~ N(0, 0.25)``); when two trees pick the same expert
    its weights add, as in COMET, so a sample has ``k`` experts or fewer.
    Every expert appears in many (tree-1 leaf, tree-2 leaf) cells next to
    different partners, and the weights vary inside a cell, so the routing
    is identifiable from ``(x, y)``.

    ``structure="leaf_pairs"`` (the first reading, kept to reproduce the
    earlier figures): one tree, leaf ``l`` mixes a fixed pair of experts with
    constant weights ``(a_l, 1 - a_l)``, ``a_l ~ U(0.25, 0.75)``. Its target
    is one linear function per leaf, which one expert per leaf reproduces
    exactly: the true expert pairs are not identifiable, so expert-selection
    F1 against them is not a recovery measure.

    Parameters
    ----------
    n_samples, n_features, n_experts : int, default=20000, 10, 16
        Data size and number of true experts.
    depth : int, default=4
        Depth of the routing tree (``2**depth`` leaves).
    noise : float, default=0.1
        Standard deviation of the additive noise.
    seed : int, default=0
        Seed of the random generator.
    k : int, default=2
        Number of trees for ``structure="trees"`` (at most ``k`` experts per
        sample); ``"leaf_pairs"`` always mixes two.
    structure : {"trees", "leaf_pairs"}, default="trees"
        The routing structure described above.

    Returns
    -------
    dict
        ``X`` (n, p) float32, ``y`` (n,) float32, ``weights`` (n, n_experts)
        true routing (float32), ``experts`` (n, k) chosen experts,
        ``leaves`` (n, k) leaf per tree (one column for ``"leaf_pairs"``),
        ``beta``, ``intercept``, ``noise``, ``structure`` and ``truth``: for
        ``"trees"`` the routing parameters (``planes`` (k, 2**depth - 1, p)
        and ``thresholds`` in heap order, ``assignment`` (2**depth,) leaf
        -> expert, ``leaf_slope``, ``leaf_offset``; see
        :func:`comet_from_truth`), for ``"leaf_pairs"`` ``pairs`` and
        ``pair_weight``.
    """
    if structure not in SYNTHETIC_STRUCTURES:
        raise ValueError(f"structure must be one of {SYNTHETIC_STRUCTURES}, got {structure!r}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    n_leaves = 1 << depth
    rows = np.arange(n_samples)
    W = np.zeros((n_samples, n_experts))
    if structure == "leaf_pairs":
        leaf = _oblique_tree_leaves(X, depth, rng)[0]
        first = rng.permutation(n_experts)[np.arange(n_leaves) % n_experts]
        second = np.empty_like(first)
        for l in range(n_leaves):
            choices = [e for e in range(n_experts) if e != first[l]]
            second[l] = rng.choice(choices)
        pairs = np.stack([first, second], 1)
        a = rng.uniform(0.25, 0.75, n_leaves)
        W[rows, pairs[leaf, 0]] = a[leaf]
        W[rows, pairs[leaf, 1]] = 1 - a[leaf]
        leaves, chosen = leaf[:, None], pairs[leaf]
        truth = {"pairs": pairs, "pair_weight": a}
    else:
        trees = [_oblique_tree_leaves(X, depth, rng) for _ in range(k)]
        leaves = np.stack([t[0] for t in trees], 1)
        assign = rng.permutation(n_experts)[np.arange(n_leaves) % n_experts]  # leaf -> expert
        chosen = assign[leaves]  # (n, k)
        slope = rng.standard_normal((k, n_leaves, n_features)) / math.sqrt(n_features)
        offset = rng.normal(0, 0.5, (k, n_leaves))
        logits = np.einsum("np,nkp->nk", X, slope[np.arange(k), leaves]) + offset[np.arange(k), leaves]
        mix = np.exp(logits - logits.max(1, keepdims=True))
        mix /= mix.sum(1, keepdims=True)
        for j in range(k):
            np.add.at(W, (rows, chosen[:, j]), mix[:, j])
        truth = {"planes": np.stack([t[1] for t in trees]), "thresholds": np.stack([t[2] for t in trees]),
                 "assignment": assign, "leaf_slope": slope, "leaf_offset": offset}
    beta = rng.standard_normal((n_experts, n_features)) / math.sqrt(n_features)
    intercept = rng.normal(0, 0.5, n_experts)
    F = X @ beta.T + intercept
    y = (W * F).sum(1) + noise * rng.standard_normal(n_samples)
    return {
        "X": X.astype(np.float32), "y": y.astype(np.float32), "weights": W.astype(np.float32),
        "experts": chosen, "leaves": leaves, "beta": beta, "intercept": intercept,
        "noise": noise, "structure": structure, "truth": truth,
    }


def make_movielens_multitask(ratings, *, negatives=4, seed=0, split=(0.8, 0.1, 0.1)):
    """Examples for the two tasks from MovieLens ratings.

    Every rating is a positive example (watched = 1, with its rating); for
    each, ``negatives`` items the user did not rate are drawn uniformly
    (watched = 0, no rating). Examples are split at random.

    Parameters
    ----------
    ratings : sparsecore.datasets.MovieLensRatings
    negatives : int, default=4
        Unrated items drawn per rating.
    seed : int, default=0
    split : tuple of float, default=(0.8, 0.1, 0.1)
        Train, validation and test fractions.

    Returns
    -------
    dict of str to ndarray
        ``users``, ``items``, ``watched`` (0/1), ``rating`` (0 for
        negatives), ``train``, ``val``, ``test`` (index arrays), and the
        counts ``n_users``, ``n_items``.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = ratings.n_users, ratings.n_items
    seen = ratings.to_csr()
    users_neg = np.repeat(ratings.users, negatives)
    items_neg = rng.integers(0, n_items, len(users_neg))
    # redraw the sampled items the user has rated (a few rounds suffice)
    for _ in range(50):
        clash = seen[users_neg, items_neg] != 0
        if not clash.any():
            break
        items_neg[clash] = rng.integers(0, n_items, int(clash.sum()))
    keep = np.asarray(seen[users_neg, items_neg] == 0).ravel()
    users_neg, items_neg = users_neg[keep], items_neg[keep]
    users = np.concatenate([ratings.users, users_neg]).astype(np.int64)
    items = np.concatenate([ratings.items, items_neg]).astype(np.int64)
    watched = np.concatenate([np.ones(len(ratings)), np.zeros(len(users_neg))]).astype(np.float32)
    rating = np.concatenate([ratings.ratings, np.zeros(len(users_neg))]).astype(np.float32)
    perm = rng.permutation(len(users))
    a, b = int(split[0] * len(perm)), int((split[0] + split[1]) * len(perm))
    return {"users": users, "items": items, "watched": watched, "rating": rating,
            "train": perm[:a], "val": perm[a:b], "test": perm[b:],
            "n_users": n_users, "n_items": n_items}


def make_block_interactions(n_users=600, n_items=400, n_groups=8, p_in=0.15, p_out=0.005,
                            random_state=0):
    """Generated implicit feedback with a known structure: users and items
    fall in ``n_groups`` taste groups; a user interacts with an item of
    their group with probability ``p_in``, with any other with ``p_out``.
    Every user and item gets at least one interaction.

    Parameters
    ----------
    n_users, n_items : int, default=600, 400
        Matrix shape.
    n_groups : int, default=8
        Number of taste groups.
    p_in, p_out : float, default=0.15, 0.005
        Interaction probability inside and outside a user's group.
    random_state : int, default=0
        Seed of numpy's generator.

    Returns
    -------
    scipy.sparse.csr_array of float32, shape (n_users, n_items)
    """
    rng = np.random.default_rng(random_state)
    gu = rng.integers(0, n_groups, n_users)
    gi = rng.integers(0, n_groups, n_items)
    p = np.where(gu[:, None] == gi[None, :], p_in, p_out)
    X = rng.random((n_users, n_items)) < p
    X[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    X[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    return sp.csr_array(X.astype(np.float32))
