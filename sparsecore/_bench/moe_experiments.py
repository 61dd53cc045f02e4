"""The two reproducible MoE experiments of the COMET / DSelect-k papers.

1. :func:`make_routing_regression` + :func:`run_synthetic`: regression by
   16 linear experts, 2 per sample chosen by a depth-4 oblique tree of ``x``
   (the ground truth), noise 0.1, 20,000 samples. Every gate is trained
   with the experts; the "oracle" gate is the true routing. Reported: test
   MSE, expert-selection F1 against the true routing, fraction of samples
   with at most ``k`` experts.
2. :func:`make_movielens_multitask` + :func:`run_movielens`: a two-task
   multi-gate MoE (MMoE) recommender on MovieLens-100K: task 1 "watched?"
   (4 sampled unwatched items per rating; ROC AUC), task 2 the rating (MSE,
   on watched pairs), user and item embeddings, 16 shared ReLU experts, one
   gate per task, sparse dispatch.

The command-line scripts ``benchmarks/scripts/moe_synthetic.py`` and
``moe_movielens.py`` run the full protocols (10 seeds; 20-trial random
searches over 3 seeds) and print the tables of ``docs/user_guide/moe.rst``.
"""
import math
import time

import numpy as np
import torch
from torch import nn

from sparsecore.datasets import SYNTHETIC_STRUCTURES, make_movielens_multitask, make_routing_regression
from sparsecore.moe import (COMETGate, DSelectKGate, Gate, HashGate, MixtureOfExperts,
                            PermutationLocalSearch, TopKGate, routing_f1)

__all__ = [
    "FixedRoutingGate",
    "GATES",
    "SYNTHETIC_STRUCTURES",
    "comet_from_truth",
    "make_gate",
    "make_movielens_multitask",
    "make_routing_regression",
    "routing_f1",
    "run_movielens",
    "run_synthetic",
]

GATES = ("oracle", "topk", "topk+", "hash", "hash+", "dselect_k", "dselect_k+", "comet", "comet+")


# --------------------------------------------------------------------------
# synthetic data with ground-truth routing
# --------------------------------------------------------------------------


def comet_from_truth(data, gamma=1.0, sharpness=1e4):
    """The COMET gate that routes exactly as a ``structure="trees"`` data set.

    Split ``q`` of tree ``j`` becomes ``S(sharpness * (threshold - plane . x))``
    (probability of the first child), leaf logits are the generator's, and a
    frozen permutation maps COMET's leaf ``l`` to expert ``assignment[l]``.
    Up to the samples within ``gamma / (2 * sharpness)`` of a hyperplane, its
    weights are the true ones: the generator lies in COMET's model class.

    Parameters
    ----------
    data : dict
        The output of ``make_routing_regression(structure="trees")``.
    gamma : float, default=1.0
        Smooth-step width of the gate.
    sharpness : float, default=1e4
        Scale of the split pre-activations (large: hard splits).

    Returns
    -------
    PermutationLocalSearch
        A hardened (no search) wrapper around the :class:`COMETGate`.
    """
    truth = data.get("truth", {})
    if data.get("structure") != "trees":
        raise ValueError(f"data must come from structure='trees', got {data.get('structure')!r}")
    planes, thresholds = truth["planes"], truth["thresholds"]
    k, n_nodes, p = planes.shape
    n = n_nodes + 1
    gate = COMETGate(p, n, k, gamma=gamma, entropy_reg=0.0)
    dtype = gate.split_weight.dtype
    with torch.no_grad():
        # rows are laid out (node, tree): row q * k + j
        gate.split_weight.copy_(torch.as_tensor(-sharpness * planes.transpose(1, 0, 2).reshape(-1, p), dtype=dtype))
        gate.split_bias.copy_(torch.as_tensor(sharpness * thresholds.T.reshape(-1), dtype=dtype))
        gate.leaf_weight.copy_(torch.as_tensor(truth["leaf_slope"].transpose(1, 0, 2).reshape(-1, p), dtype=dtype))
        gate.leaf_bias.copy_(torch.as_tensor(truth["leaf_offset"].T.reshape(-1), dtype=dtype))
    wrapped = PermutationLocalSearch(gate, 0, n_permutations=1)
    wrapped.assignment.copy_(torch.as_tensor(truth["assignment"])[None])
    return wrapped


class FixedRoutingGate(Gate):
    """The oracle: returns given routing weights (indexed by sample id).

    Parameters
    ----------
    weights : array-like of shape (n_samples, n_experts)
        The routing of every sample; the gate's input is the sample ids.
    k : int
        Experts per sample.
    """

    def __init__(self, weights, k):
        weights = torch.as_tensor(weights)
        super().__init__(weights.shape[1], k)
        self.register_buffer("table", weights)

    def expert_parts(self, ids):
        return self.table[ids][:, None], {}, True


def make_gate(name, in_features, n_experts=16, k=2, *, gamma=1.0, entropy_reg=None,
              search_steps=0, n_keys=None, seed=0, load_balance=0.0):
    """Build one of :data:`GATES` (``+`` = wrapped in permutation local search).

    Parameters
    ----------
    name : str
        One of :data:`GATES`.
    in_features : int
        Gate input width.
    n_experts, k : int, default=16, 2
        Experts, and experts per sample.
    gamma : float, default=1.0
        Smooth-step width (DSelect-k, COMET).
    entropy_reg : float or None, default=None
        Selector entropy coefficient; None: 1e-6 for DSelect-k, 0.1 for COMET.
    search_steps : int, default=0
        Steps of permutation local search (``+`` gates).
    n_keys : int or None, default=None
        Key table size of the hash gate.
    seed : int, default=0
        Seed of the hash gate.
    load_balance : float, default=0.0
        Load-balancing loss coefficient of the top-k gate.

    Returns
    -------
    sparsecore.moe.Gate
    """
    base = name.rstrip("+")
    if base == "topk":
        gate = TopKGate(in_features, n_experts, k, load_balance=load_balance)
    elif base == "hash":
        gate = HashGate(n_experts, k, n_keys=n_keys, seed=seed)
    elif base == "dselect_k":
        gate = DSelectKGate(in_features, n_experts, k, gamma=gamma,
                            entropy_reg=1e-6 if entropy_reg is None else entropy_reg)
    elif base == "comet":
        gate = COMETGate(in_features, n_experts, k, gamma=gamma,
                         entropy_reg=0.1 if entropy_reg is None else entropy_reg)
    else:
        raise ValueError(f"unknown gate {name!r}; choose from {GATES}")
    if name.endswith("+"):
        gate = PermutationLocalSearch(gate, search_steps)
    return gate


class _LinearMixture(nn.Module):
    """Linear experts evaluated together (one matmul) and mixed densely:
    exactly ``MixtureOfExperts(combine="dense")`` over ``nn.Linear(p, 1)``
    experts, cheaper for these tiny experts."""

    def __init__(self, in_features, n_experts, gate):
        super().__init__()
        self.experts = nn.Linear(in_features, n_experts)
        self.gate = gate

    def forward(self, x, routing_x):
        out = self.gate(routing_x)
        return (out.weights * self.experts(x)).sum(1), out


def _lsh_keys(X, n_bits=8, seed=0):
    """Locality-sensitive hash keys (signs of random projections) for HashGate."""
    rng = np.random.default_rng(10_000 + seed)
    planes = rng.standard_normal((X.shape[1], n_bits))
    return ((X @ planes > 0) * (1 << np.arange(n_bits))).sum(1).astype(np.int64)


def run_synthetic(gates=GATES, seeds=(0,), *, n_samples=20_000, epochs=60, batch_size=256,
                  lr=1e-2, gamma=1.0, comet_entropy=0.1, search_epochs=5, patience=10,
                  structure="trees", log=None):
    """Train every gate on :func:`make_routing_regression` data, per seed.

    ``structure`` selects the generator (see :func:`make_routing_regression`).
    Besides :data:`GATES`, ``"comet@truth"`` (``structure="trees"`` only) is
    COMET started at the true routing (:func:`comet_from_truth`) and trained
    like the others: a check that the training reaches the oracle from there.
    Split 80/10/10 (train / validation for early stopping / test); Adam,
    ``lr``; the epoch with the best validation MSE is kept. Hash gates route
    on an 8-bit locality-sensitive hash of ``x``; the oracle gate gets the
    true routing.

    Parameters
    ----------
    gates : sequence of str
        Names of :data:`GATES`.
    seeds : sequence of int
        Data and initialisation seeds, one data set each.
    n_samples, epochs, batch_size : int
        Data size, training epochs, batch size.
    lr : float
        Adam learning rate.
    gamma : float
        Smooth-step width (DSelect-k, COMET).
    comet_entropy : float
        COMET's selector entropy coefficient.
    search_epochs : int
        Epochs of permutation local search for the ``+`` gates.
    patience : int
        Early-stopping patience in epochs.
    structure : {"trees", "leaf_pairs"}
        Generator of :func:`make_routing_regression`.
    log : callable or None
        Called with each result row as it is produced.

    Returns
    -------
    list of dict
        One row per (seed, gate): ``test_mse``, ``oracle_ratio`` (filled by
        the caller when the oracle ran), ``f1``, ``frac_le_k`` (test samples
        with at most k experts), ``converged``, ``epochs``, ``seconds``.
    """
    torch.set_num_threads(1)
    rows = []
    for seed in seeds:
        data = make_routing_regression(n_samples=n_samples, seed=seed, structure=structure)
        n = n_samples
        perm = np.random.default_rng(seed).permutation(n)
        tr, va, te = perm[: int(0.8 * n)], perm[int(0.8 * n): int(0.9 * n)], perm[int(0.9 * n):]
        X = torch.from_numpy(data["X"])
        y = torch.from_numpy(data["y"])
        keys = torch.from_numpy(_lsh_keys(data["X"], seed=seed))
        ids = torch.arange(n)
        steps_per_epoch = math.ceil(len(tr) / batch_size)
        for name in gates:
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            if name == "oracle":
                gate, route = FixedRoutingGate(torch.from_numpy(data["weights"]), 2), ids
            elif name == "comet@truth":
                gate, route = comet_from_truth(data, gamma=gamma), X
            else:
                gate = make_gate(name, X.shape[1], gamma=gamma, entropy_reg=comet_entropy if name.startswith("comet") else None,
                                 search_steps=search_epochs * steps_per_epoch, n_keys=256, seed=seed)
                route = keys if name.startswith("hash") else X
            model = _LinearMixture(X.shape[1], 16, gate)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            best, best_state, bad, ep = math.inf, None, 0, 0
            gen = torch.Generator().manual_seed(seed)
            for ep in range(1, epochs + 1):
                model.train()
                order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
                for start in range(0, len(order), batch_size):
                    b = order[start:start + batch_size]
                    pred, out = model(X[b], route[b])
                    loss = torch.mean((pred - y[b]) ** 2) + sum(out.aux_losses.values(), torch.zeros(()))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    gate.step()
                val = _eval_mse(model, X, y, route, va)
                searching = getattr(gate, "searching", False)
                if val < best - 1e-6 or searching:
                    best, bad = val, 0
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                    if bad >= patience:
                        break
            model.load_state_dict(best_state)
            test_mse = _eval_mse(model, X, y, route, te)
            model.eval()
            with torch.no_grad():
                _, out = model(X[te], route[te])
            f1, _ = routing_f1(out.weights, torch.from_numpy(data["weights"][te]))
            row = {
                "seed": seed, "gate": name, "test_mse": test_mse, "f1": f1,
                "frac_le_k": float((out.nnz <= 2).float().mean()),
                "converged": bool(gate.is_converged()), "epochs": ep,
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            if log:
                log(row)
    _add_oracle_ratios(rows)
    return rows


def _add_oracle_ratios(rows):
    oracle = {r["seed"]: r["test_mse"] for r in rows if r["gate"] == "oracle"}
    for r in rows:
        if r["seed"] in oracle:
            r["oracle_ratio"] = r["test_mse"] / oracle[r["seed"]]


def _eval_mse(model, X, y, route, idx):
    model.eval()
    with torch.no_grad():
        pred, _ = model(X[idx], route[idx])
        return float(torch.mean((pred - y[idx]) ** 2))


def summarize_synthetic(rows):
    """Per-gate means over seeds and the ratios each gate is judged by."""
    import statistics

    table = {}
    for name in dict.fromkeys(r["gate"] for r in rows):
        sub = [r for r in rows if r["gate"] == name]
        ratios = [r.get("oracle_ratio", math.nan) for r in sub]
        table[name] = {
            "seeds": len(sub),
            "test_mse": statistics.mean(r["test_mse"] for r in sub),
            "oracle_ratio_mean": statistics.mean(ratios),
            "oracle_ratio_median": statistics.median(ratios),
            "failed": sum(x > 2 for x in ratios) / len(sub),
            "f1": statistics.mean(r["f1"] for r in sub),
            "frac_le_k": statistics.mean(r["frac_le_k"] for r in sub),
        }
    return table


# --------------------------------------------------------------------------
# MovieLens-100K two-task MMoE
# --------------------------------------------------------------------------
class _Expert(nn.Sequential):
    def __init__(self, d_in, d_out):
        super().__init__(nn.Linear(d_in, d_out), nn.ReLU())


class TwoTaskMMoE(nn.Module):
    """User/item embeddings -> shared experts -> one gated mixture per task."""

    def __init__(self, n_users, n_items, gate_fn, *, embed=64, hidden=128, n_experts=16,
                 combine="sparse"):
        super().__init__()
        self.user = nn.Embedding(n_users, embed)
        self.item = nn.Embedding(n_items, embed)
        nn.init.normal_(self.user.weight, std=0.05)
        nn.init.normal_(self.item.weight, std=0.05)
        experts = nn.ModuleList(_Expert(2 * embed, hidden) for _ in range(n_experts))
        self.tasks = nn.ModuleList(
            MixtureOfExperts(experts, gate_fn(), combine=combine) for _ in range(2)
        )
        self.heads = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(2))

    def forward(self, users, items):
        x = torch.cat([self.user(users), self.item(items)], 1)
        outs, aux = [], {}
        for t, (moe, head) in enumerate(zip(self.tasks, self.heads)):
            routing = users if isinstance(_inner(moe.gate), HashGate) else x
            h, a = moe(x, routing)
            outs.append(head(h)[:, 0])
            aux.update({f"task{t}_{k}": v for k, v in a.items()})
        return outs[0], outs[1], aux


def _inner(gate):
    return gate.gate if isinstance(gate, PermutationLocalSearch) else gate


def _roc_auc(labels, scores):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def sample_trial(name, rng):
    """One random-search configuration for gate ``name``."""
    cfg = {"lr": float(10 ** rng.uniform(-3.3, -2.3))}
    base = name.rstrip("+")
    if base in ("dselect_k", "comet"):
        cfg["gamma"] = float(rng.choice([0.01, 0.1, 1.0, 5.0, 10.0]))
    if base == "comet":
        cfg["entropy_reg"] = float(rng.choice([0.05, 0.1, 0.5, 1.0, 5.0, 10.0]))
    if base == "dselect_k":
        cfg["entropy_reg"] = float(10 ** rng.uniform(-6, -2))
    if name.endswith("+"):
        cfg["search_frac"] = float(10 ** rng.uniform(-2, -1))
    return cfg


def run_movielens(ratings, gates=("topk", "dselect_k", "comet", "comet+"), seeds=(0,), *,
                  trials=20, epochs=10, batch_size=512, embed=64, hidden=128, n_experts=16, k=2,
                  patience=3, max_train=None, only_trials=None, log=None):
    """Random search per gate on the two-task MovieLens MMoE.

    For each seed and gate, ``trials`` configurations are drawn by
    :func:`sample_trial`; each is trained with Adam for at most ``epochs``
    (early stopping on the validation AUC, patience ``patience``) and
    evaluated on the test split at its best epoch.

    Parameters
    ----------
    ratings : sparsecore.datasets.MovieLensRatings
    gates : sequence of str
        Names of :data:`GATES`.
    seeds : sequence of int
        Data split and model seeds.
    trials, epochs, batch_size : int
        Random-search trials per gate, training epochs, batch size.
    embed, hidden, n_experts, k : int
        Embedding width, expert hidden width, experts, experts per sample.
    patience : int
        Early-stopping patience in epochs.
    max_train : int or None
        Cap on the training examples (quick runs).
    only_trials : collection of int or None
        Run only these trial indices.
    log : callable or None
        Called with each result row as it is produced.

    Returns
    -------
    list of dict
        One row per trial: ``seed``, ``gate``, ``trial``, the configuration,
        ``val_auc``, ``test_auc``, ``test_mse``, ``frac_le_k``, ``seconds``.
    """
    torch.set_num_threads(1)
    rows = []
    for seed in seeds:
        data = make_movielens_multitask(ratings, seed=seed)
        U = torch.from_numpy(data["users"])
        I = torch.from_numpy(data["items"])
        Wt = torch.from_numpy(data["watched"])
        Rt = torch.from_numpy(data["rating"])
        train = data["train"] if max_train is None else data["train"][:max_train]
        steps_per_epoch = math.ceil(len(train) / batch_size)
        for name in gates:
            rng = np.random.default_rng([seed, sum(map(ord, name))])
            for trial in range(trials):
                cfg = sample_trial(name, rng)  # drawn for every trial: same configs on resume
                if only_trials is not None and trial not in only_trials:
                    continue
                torch.manual_seed(1000 * seed + trial)
                t0 = time.perf_counter()
                search = max(1, round(cfg.get("search_frac", 0) * epochs * steps_per_epoch))

                def gate_fn():
                    return make_gate(name, 2 * embed, n_experts, k, gamma=cfg.get("gamma", 1.0),
                                     entropy_reg=cfg.get("entropy_reg"), search_steps=search,
                                     n_keys=data["n_users"], seed=seed)

                model = TwoTaskMMoE(data["n_users"], data["n_items"], gate_fn, embed=embed,
                                    hidden=hidden, n_experts=n_experts)
                opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
                gen = torch.Generator().manual_seed(seed * 7919 + trial)
                best = (-math.inf, None)
                bad = 0
                for ep in range(epochs):
                    model.train()
                    order = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
                    for start in range(0, len(order), batch_size):
                        b = order[start:start + batch_size]
                        logit, rate, aux = model(U[b], I[b])
                        w = Wt[b]
                        loss = nn.functional.binary_cross_entropy_with_logits(logit, w)
                        pos = w > 0
                        if pos.any():
                            loss = loss + torch.mean((rate[pos] - Rt[b][pos]) ** 2)
                        loss = loss + sum(aux.values(), torch.zeros(()))
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        for moe in model.tasks:
                            moe.gate.step()
                    metrics = _eval_two_task(model, U, I, Wt, Rt, data["val"])
                    searching = any(getattr(m.gate, "searching", False) for m in model.tasks)
                    if metrics["auc"] > best[0] or searching:
                        best = (metrics["auc"], {kk: v.clone() for kk, v in model.state_dict().items()})
                        bad = 0
                    else:
                        bad += 1
                        if bad >= patience:
                            break
                model.load_state_dict(best[1])
                test = _eval_two_task(model, U, I, Wt, Rt, data["test"])
                row = {"seed": seed, "gate": name, "trial": trial, **cfg, "val_auc": best[0],
                       "test_auc": test["auc"], "test_mse": test["mse"],
                       "frac_le_k": test["frac_le_k"], "epochs": ep + 1,
                       "seconds": time.perf_counter() - t0}
                rows.append(row)
                if log:
                    log(row)
    return rows


def _eval_two_task(model, U, I, Wt, Rt, idx, batch=8192):
    model.eval()
    logits, rates, le_k = [], [], []
    with torch.no_grad():
        for s in range(0, len(idx), batch):
            b = torch.from_numpy(idx[s:s + batch])
            lo, ra, _ = model(U[b], I[b])
            logits.append(lo)
            rates.append(ra)
            le_k.append(torch.stack([(m.last_gate_output.nnz <= m.gate.k) for m in model.tasks]).all(0))
    logit = torch.cat(logits).numpy()
    rate = torch.cat(rates).numpy()
    w = Wt[idx].numpy()
    r = Rt[idx].numpy()
    pos = w > 0
    return {"auc": _roc_auc(w, logit), "mse": float(np.mean((rate[pos] - r[pos]) ** 2)),
            "frac_le_k": float(torch.cat(le_k).float().mean())}


def best_of_n(rows, base, other):
    """Best test AUC (by validation AUC) of the first N trials, averaged over
    seeds, for two (gate, N) pairs; None if either is missing."""
    import statistics

    out = []
    for name, n in (base, other):
        per_seed = []
        for seed in sorted({r["seed"] for r in rows if r["gate"] == name}):
            sub = [r for r in rows if r["gate"] == name and r["seed"] == seed and r["trial"] < n]
            if len(sub) < n:
                return None
            per_seed.append(max(sub, key=lambda r: r["val_auc"])["test_auc"])
        if not per_seed:
            return None
        out.append(statistics.mean(per_seed))
    return tuple(out)


def summarize_movielens(rows, top_fraction=0.25):
    """Per gate: mean test AUC / MSE of the top trials by validation AUC,
    averaged over seeds, and the best-of-N curve."""
    import statistics

    out = {}
    for name in dict.fromkeys(r["gate"] for r in rows):
        per_seed_auc, per_seed_mse = [], []
        for seed in sorted({r["seed"] for r in rows if r["gate"] == name}):
            sub = sorted((r for r in rows if r["gate"] == name and r["seed"] == seed),
                         key=lambda r: -r["val_auc"])
            top = sub[: max(1, round(top_fraction * len(sub)))]
            per_seed_auc.append(statistics.mean(r["test_auc"] for r in top))
            per_seed_mse.append(statistics.mean(r["test_mse"] for r in top))
        out[name] = {"seeds": len(per_seed_auc), "auc": statistics.mean(per_seed_auc),
                     "mse": statistics.mean(per_seed_mse),
                     "auc_seeds": per_seed_auc}
    return out
