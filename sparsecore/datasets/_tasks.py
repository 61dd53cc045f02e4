"""Generated and derived data for the Mixture-of-Experts and recommendation
experiments: a regression with a known sparse routing, the two-task
MovieLens examples and MultiMNIST of the multi-gate MoE papers, and
block-structured implicit feedback."""
import math

import numpy as np
import scipy.sparse as sp

__all__ = ["SYNTHETIC_STRUCTURES", "make_block_interactions", "make_movielens_multitask",
           "make_multimnist", "make_routing_regression"]

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


def make_movielens_multitask(ratings, *, negatives=4, seed=0, split=(0.8, 0.1, 0.1),
                             stratify=False):
    """Examples for the two tasks from MovieLens ratings.

    Every rating is a positive example (watched = 1, with its rating); for
    each, ``negatives`` items the user did not rate are drawn uniformly
    (watched = 0, no rating). This is the multi-task recommender of the
    multi-gate MoE papers (Wang et al., "Small Towers Make Big Differences",
    2020; DSelect-k, Hazimeh et al., NeurIPS 2021; COMET, Ibrahim et al.,
    KDD 2023): task 1 classifies "watched", task 2 regresses the rating on
    the watched pairs only. COMET's released data has about one unrated
    pair per rating (``negatives=1``) and splits 90/10 stratified on
    "watched", then 12.5 % of the 90 % for validation:
    ``split=(0.7875, 0.1125, 0.1), stratify=True``.

    Parameters
    ----------
    ratings : sparsecore.datasets.MovieLensRatings
    negatives : int, default=4
        Unrated items drawn per rating, >= 0.
    seed : int, default=0
    split : tuple of float, default=(0.8, 0.1, 0.1)
        Train, validation and test fractions, non-negative, summing to 1.
    stratify : bool, default=False
        Split the positives and the negatives separately, so that each part
        has the same share of watched pairs (up to rounding).

    Returns
    -------
    dict of str to ndarray
        ``users``, ``items``, ``watched`` (0/1), ``rating`` (0 for
        negatives), ``train``, ``val``, ``test`` (index arrays), and the
        counts ``n_users``, ``n_items``.
    """
    from sparsecore._validation import check_scalar

    negatives = check_scalar(negatives, "negatives", int, min_val=0)
    if (not isinstance(split, (tuple, list)) or len(split) != 3
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f >= 0
                       for f in split) or not math.isclose(sum(split), 1.0, abs_tol=1e-9)):
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split!r}")
    rng = np.random.default_rng(seed)
    n_users, n_items = ratings.n_users, ratings.n_items
    seen = ratings.to_csr()
    users_neg = np.repeat(ratings.users, negatives)
    items_neg = rng.integers(0, n_items, len(users_neg))
    # redraw the sampled items the user has rated (a few rounds suffice)
    for _ in range(50):
        clash = np.asarray(seen[users_neg, items_neg] != 0).ravel()
        if not clash.any():
            break
        items_neg[clash] = rng.integers(0, n_items, int(clash.sum()))
    keep = np.asarray(seen[users_neg, items_neg] == 0).ravel()
    users_neg, items_neg = users_neg[keep], items_neg[keep]
    users = np.concatenate([ratings.users, users_neg]).astype(np.int64)
    items = np.concatenate([ratings.items, items_neg]).astype(np.int64)
    watched = np.concatenate([np.ones(len(ratings)), np.zeros(len(users_neg))]).astype(np.float32)
    rating = np.concatenate([ratings.ratings, np.zeros(len(users_neg))]).astype(np.float32)
    groups = ([np.flatnonzero(watched == 1), np.flatnonzero(watched == 0)] if stratify
              else [np.arange(len(users))])
    parts = ([], [], [])
    for group in groups:
        perm = group[rng.permutation(len(group))]
        a = int(split[0] * len(perm))
        b = int((split[0] + split[1]) * len(perm))
        for part, idx in zip(parts, (perm[:a], perm[a:b], perm[b:])):
            part.append(idx)
    train, val, test = (rng.permutation(np.concatenate(p)) if stratify else p[0] for p in parts)
    return {"users": users, "items": items, "watched": watched, "rating": rating,
            "train": train, "val": val, "test": test,
            "n_users": n_users, "n_items": n_items}


def make_multimnist(X, y, *, test_size=0.2, val_size=1 / 6, partners=2, seed=0):
    """MultiMNIST: two digits overlaid on a 36 x 36 canvas, one task per digit.

    The construction of Sabour et al. ("Dynamic Routing Between Capsules",
    NeurIPS 2017) as the multi-task MoE papers build it (DSelect-k, Hazimeh
    et al., NeurIPS 2021; COMET, Ibrahim et al., KDD 2023): the images are
    split (stratified) into train, validation and test; each base image is
    placed at the top-left of a 36 x 36 canvas, a random other image of the
    same part at the bottom-right (offset 8 pixels in each direction), and
    the pixels are summed (the centre overlaps). Each base image is used
    ``partners`` times, with different partners. Task 1 is the top-left
    digit, task 2 the bottom-right one.

    Parameters
    ----------
    X : array_like of shape (n, 784) or (n, 28, 28)
        Images (any scale; converted to float32). Not modified.
    y : array_like of int, shape (n,)
        Labels.
    test_size : float, default=0.2
        Fraction of each class held out for test, in (0, 1).
    val_size : float, default=1/6
        Fraction of the rest held out for validation (the papers' 5:1), in [0, 1).
    partners : int, default=2
        Overlaid images made per base image, >= 1.
    seed : int, default=0

    Returns
    -------
    dict
        ``images`` float32 (m, 36, 36), ``labels`` int64 (m, 2) (top-left,
        bottom-right), ``sources`` int64 (m, 2) (the rows of ``X`` overlaid),
        ``train``, ``val``, ``test`` (index arrays into ``images``).
    """
    from sparsecore._validation import check_scalar

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim == 2 and X.shape[1] == 784:
        X = X.reshape(-1, 28, 28)
    if X.ndim != 3 or X.shape[1:] != (28, 28):
        raise ValueError(f"X must have shape (n, 784) or (n, 28, 28), got {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
    test_size = check_scalar(test_size, "test_size", float, min_val=0, max_val=1,
                             include_boundaries="neither")
    val_size = check_scalar(val_size, "val_size", float, min_val=0, max_val=1,
                            include_boundaries="left")
    partners = check_scalar(partners, "partners", int, min_val=1)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * len(idx)))
        n_val = int(round(val_size * (len(idx) - n_test)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    images, labels, sources, index, start = [], [], [], [], 0
    for part in parts:
        base = np.sort(np.concatenate(part))
        if len(base) < 2:
            raise ValueError("every part needs at least 2 images to overlay; use more images")
        for _ in range(partners):
            # a random other image of the same part: shift by 1..len-1 of a permutation
            perm = rng.permutation(len(base))
            other = np.empty_like(perm)
            other[perm] = perm[np.roll(np.arange(len(base)), -1)]
            canvas = np.zeros((len(base), 36, 36), dtype=np.float32)
            canvas[:, :28, :28] += X[base]
            canvas[:, 8:, 8:] += X[base[other]]
            images.append(canvas)
            labels.append(np.stack([y[base], y[base[other]]], 1).astype(np.int64))
            sources.append(np.stack([base, base[other]], 1).astype(np.int64))
        n = partners * len(base)
        index.append(np.arange(start, start + n))
        start += n
    return {"images": np.concatenate(images), "labels": np.concatenate(labels),
            "sources": np.concatenate(sources),
            "train": index[0], "val": index[1], "test": index[2]}


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
