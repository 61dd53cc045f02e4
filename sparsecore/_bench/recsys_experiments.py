"""The MovieLens-100K protocol of the DSL comparison (dense, static mask,
DSL variants), and timing helpers.

Protocol (``run_movielens``): all 100,000 ratings as implicit interactions;
for each seed, a per-user random 80/20 split (``train_test_split_per_user``);
full ranking of every item a user has not interacted with in training;
Recall@20 and NDCG@20 averaged over users with test items. Each method's L2
penalty is chosen once, on a validation split of a separate tuning split
(seed 100; 12.5% of each user's training interactions), from
:data:`L2_GRID`; everything else is fixed (:data:`BASE`). Methods
(:func:`method_params`):

- ``dense``: BPR-MF with 64 dense factors;
- ``dense-same-params``: dense BPR-MF with ``round(density * 64)`` factors,
  i.e. as many parameters as the sparse models;
- ``static``: a fixed uniformly random mask (no prune/grow);
- ``dsl``: DSL, magnitude pruning, growth by the last minibatch's gradient;
- ``dsl-accumulated``: growth by the gradient accumulated since the last
  update;
- ``dsl-aligned``: growth by gradient with aligned (per-row prefix)
  supports.

``benchmarks/scripts/recsys_movielens.py`` runs it (resumable, one JSON line
per run) and prints the table of ``docs/user_guide/recsys.rst``.
"""
import time

import numpy as np
import scipy.sparse as sp

from sparsecore.datasets import make_block_interactions
from sparsecore.recsys import DSLRecommender, train_test_split_per_user

__all__ = [
    "BASE",
    "L2_GRID",
    "METHODS",
    "TUNED_L2",
    "chosen_l2",
    "dense_topk",
    "make_block_interactions",
    "method_params",
    "run_one",
    "summarize",
    "tuning_split",
]

BASE = dict(model="mf", n_factors=64, epochs=40, batch_size=8192, lr=1e-2,
            update_interval=20, update_ratio=0.5, update_ratio_min=0.005,
            on_empty="ignore")  # a per-user split leaves ~30 items without training data
L2_GRID = (1e-3, 1e-2, 3e-2)
METHODS = ("dense", "dense-same-params", "static", "dsl", "dsl-accumulated", "dsl-aligned")
TUNING_SEED = 100
# L2 chosen by the tuning stage of benchmarks/scripts/recsys_movielens.py
# (validation Recall@20 on tuning_split, 40 epochs, seed 0; measured
# 2026-11-29 on this project's 2-core machine). The bench suite uses these
# instead of re-tuning.
TUNED_L2 = {
    ("dense", 1.0): 1e-2,
    ("static", 0.2): 1e-3, ("dsl", 0.2): 3e-2, ("dsl-aligned", 0.2): 3e-2,
    ("static", 0.5): 3e-2, ("dsl", 0.5): 3e-2, ("dsl-aligned", 0.5): 3e-2,
    ("static", 0.1): 1e-2, ("dsl", 0.1): 3e-2, ("dsl-aligned", 0.1): 3e-2,
}


def chosen_l2(method, density):
    """The L2 penalty of :data:`TUNED_L2` (``density`` ignored for
    ``dense``); 1e-2 for a combination that was not tuned."""
    key = (method, 1.0 if method == "dense" else float(density))
    return TUNED_L2.get(key, 1e-2)


def method_params(method, density, **overrides):
    """Estimator parameters of a method at a density (``dense`` ignores it)."""
    p = dict(BASE)
    if method == "dense":
        p.update(density=1.0)
    elif method == "dense-same-params":
        p.update(density=1.0, n_factors=max(1, int(round(density * BASE["n_factors"]))))
    elif method == "static":
        p.update(density=density, update_interval=None)
    elif method == "dsl":
        p.update(density=density, grow="gradient")
    elif method == "dsl-accumulated":
        p.update(density=density, grow="accumulated")
    elif method == "dsl-aligned":
        p.update(density=density, grow="gradient", support="aligned")
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    p.update(overrides)
    return p


def tuning_split(R):
    """(train, validation) for choosing hyper-parameters: the 80% training
    part of a seed-100 split, split again 87.5/12.5 per user."""
    train, _ = train_test_split_per_user(R, 0.2, random_state=TUNING_SEED)
    return train_test_split_per_user(train, 0.125, random_state=TUNING_SEED)


def run_one(R_train, R_test, params, seed, n_threads=None):
    """Fit one model and measure it: metrics, costs, sparsity."""
    t0 = time.perf_counter()
    rec = DSLRecommender(random_state=seed, n_threads=n_threads, **params).fit(R_train)
    fit_s = time.perf_counter() - t0
    s = rec.sparsity_report_
    return {
        "recall@20": rec.score(R_test, metric="recall@20"),
        "ndcg@20": rec.score(R_test, metric="ndcg@20"),
        "fit_s": fit_s,
        **{k: v for k, v in rec.flops_.items()},
        "user_density": s["user_density"], "item_density": s["item_density"],
        "shared_support": s["shared_support"], "empty_users": s["empty_users"],
        "empty_items": s["empty_items"],
    }, rec


def dense_topk(U, V, seen, k=20):
    """The dense model's top-k for every user, as fast as torch does it:
    ``U @ V.T`` (BLAS), seen items set to -inf, ``torch.topk``. Returns a
    function of no arguments (for timing) and its output."""
    import torch

    Ut = torch.from_numpy(np.ascontiguousarray(U, dtype=np.float32))
    Vt = torch.from_numpy(np.ascontiguousarray(V, dtype=np.float32))
    seen = sp.csr_array(seen)
    rows = torch.from_numpy(np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)))
    cols = torch.from_numpy(seen.indices.astype(np.int64))

    def run():
        S = Ut @ Vt.T
        S[rows, cols] = -float("inf")
        return torch.topk(S, k, dim=1)

    return run


def summarize(rows, density_methods=METHODS):
    """Mean and standard deviation per (method, density) over seeds, and the
    ratios the comparison reports. ``rows``: dicts with ``method``, ``density``,
    ``seed`` and the measures of :func:`run_one`."""
    groups = {}
    for r in rows:
        key = (r["method"], r["density"] if r["method"] != "dense" else 1.0)
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        agg = {"n": len(rs)}
        for m in ("recall@20", "ndcg@20", "train_ratio", "inference_ratio", "memory_ratio",
                  "fit_s", "user_density", "item_density", "shared_support"):
            vals = np.array([r[m] for r in rs], dtype=float)
            agg[m] = float(vals.mean())
            agg[m + "_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out[key] = agg
    dense = out.get(("dense", 1.0))
    for (method, density), agg in out.items():
        static = out.get(("static", density))
        for m in ("recall@20", "ndcg@20"):
            agg[m + "_vs_dense"] = agg[m] / dense[m] if dense else float("nan")
            agg[m + "_vs_static"] = agg[m] / static[m] if static else float("nan")
    return out
