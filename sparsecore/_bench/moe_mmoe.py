"""The multi-task protocols of the DSelect-k and COMET papers, scaled down to
two shared CPU cores: ``python -m sparsecore bench mmoe``.

A multi-gate mixture of experts (MMoE: shared experts, one gate per task, a
tower per task; Ma et al., KDD 2018) is trained with each gate on

* ``movielens``: MovieLens-100K, task 1 "watched?" (one unrated pair drawn
  per rating; BCE, test ROC AUC), task 2 the rating on watched pairs
  (masked MSE), split 90/10 stratified then 12.5 % of the 90 % for
  validation (:func:`sparsecore.datasets.make_movielens_multitask`);
  user and item embeddings as the shared bottom, 16 experts, k = 2;
* ``multimnist``: two MNIST digits overlaid on a 36 x 36 canvas
  (:func:`sparsecore.datasets.make_multimnist`, from the 5,000-image MNIST
  subset that runs offline), one 10-way task per digit (test accuracy);
  a shared convolutional bottom, 16 experts, k = 4.

Gates: ``softmax`` (dense MMoE), ``topk``, ``hash``, ``dselect_k``,
``comet`` and the local-search variants ``topk+``, ``hash+``, ``comet+``
(COMET's permutation search, one permutation shared by the task gates).
For every seed (data split, negatives, partners and initialisations) and
gate, :data:`PROTOCOL` ``trials`` random-search configurations are trained;
the record keeps every trial (configuration, validation loss, test metrics)
so that the summaries (best-by-validation per seed, mean test metric of the
best 5 % of all trials, the tuning-budget curve) are computed from it.

Experts are evaluated together as one batched matmul and mixed with the
gate weights: the same numbers as sparse dispatch (tests check
``MixtureOfExperts`` sparse against dense), and faster at these tiny expert
sizes; the dispatch speed is what ``bench moe`` measures.
"""
import math
import os
import time

import numpy as np

__all__ = ["GATES", "PROTOCOL", "QUICK", "run", "run_trial", "sample_config", "summarize"]

GATES = ("softmax", "topk", "topk+", "hash", "hash+", "dselect_k", "comet", "comet+")

#: Sizes and search spaces (the papers' values in the comments).
PROTOCOL = {
    "movielens": {
        "seeds": 10, "trials": 5,   # papers: 500 trials (one data split)
        "n_experts": 16, "k": 2,
        "embed": 32,             # papers: 128 per id
        "expert_hidden": 64,     # papers: 256, dropout 0.5
        "tower_hidden": 32,      # papers: 256
        "dropout": 0.0,
        "max_train": 30_000,     # of 157,500 training pairs
        "max_val": 10_000,       # of 22,500
        "batch": 512, "epochs": 4,   # papers: 512 / 100 with patience 25
        "lr": (1e-3, 1e-2),      # papers: 5e-5 - 5e-4 (log-uniform)
        "gamma": (0.01, 0.1, 1.0, 5.0, 10.0),
        "entropy": (0.05, 10.0),
        "comet+_gamma": 10.0,
        "search_epochs": (1, 2),  # papers: 1 - 10 of 100 epochs
    },
    "multimnist": {
        "seeds": 10, "trials": 5,
        "n_experts": 16, "k": 4,
        "conv": (6, 12),         # papers: 10, 20 channels in every expert
        "expert_hidden": 32,     # papers: 2 x dense 50 in every expert
        "tower_hidden": 32,      # papers: 50, 50
        "max_train": 3_000,      # of 6,660 overlaid training images
        "max_val": 1_340,
        "batch": 128, "epochs": 4,   # papers: 512 / 200
        "lr": (1e-3, 1e-2),      # papers: 1e-4 - 1e-3
        "gamma": (0.001, 0.01, 0.1, 1.0, 5.0, 10.0),
        "entropy": (1e-4, 10.0),
        "comet+_gamma": 0.01,
        "search_epochs": (1, 2),
    },
}

#: ``--quick``: the same protocol on a sliver of the data and budget.
QUICK = {"seeds": 2, "trials": 2, "max_train": 2_000, "max_val": 1_000, "epochs": 1}

_DATA = {}


# --------------------------------------------------------------------- data
def _movielens(seed):
    from sparsecore.datasets import fetch_movielens, make_movielens_multitask

    key = ("movielens", seed)
    if key not in _DATA:
        ratings = fetch_movielens("100k")
        _DATA[key] = make_movielens_multitask(ratings, negatives=1, seed=seed,
                                              split=(0.7875, 0.1125, 0.1), stratify=True)
    return _DATA[key]


def _lsh_keys(X, n_bits=8, seed=0):
    """Signs of random projections of the centred pixels: 2**n_bits hash keys."""
    rng = np.random.default_rng(10_000 + seed)
    planes = rng.standard_normal((X.shape[1], n_bits)).astype(np.float32)
    Xc = X - X.mean(0)
    return ((Xc @ planes > 0) * (1 << np.arange(n_bits))).sum(1).astype(np.int64)


def _multimnist(seed):
    from sparsecore.continual import load_mnist_5k
    from sparsecore.datasets import make_multimnist

    key = ("multimnist", seed)
    if key not in _DATA:
        X, y = load_mnist_5k()
        d = make_multimnist(X, y, seed=seed)
        d["keys"] = _lsh_keys(d["images"].reshape(len(d["images"]), -1), seed=seed)
        _DATA[key] = d
    return _DATA[key]


# ------------------------------------------------------------------- models
def _modules():
    import torch
    from torch import nn

    class StackedExperts(nn.Module):
        """``n`` experts Linear(d, h)-ReLU evaluated as one matmul: (b, n, h)."""

        def __init__(self, d, h, n, dropout=0.0):
            super().__init__()
            bound = 1 / math.sqrt(d)
            self.weight = nn.Parameter(torch.empty(d, n * h).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(n * h).uniform_(-bound, bound))
            self.n, self.h = n, h
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(torch.relu(torch.addmm(self.bias, x, self.weight))).view(
                x.shape[0], self.n, self.h)

    class MMoE(nn.Module):
        """Shared bottom -> shared experts -> one gate and one tower per task."""

        def __init__(self, bottom, d, experts, gates, towers, hash_route):
            super().__init__()
            self.bottom, self.experts = bottom, experts
            self.gates, self.towers = nn.ModuleList(gates), nn.ModuleList(towers)
            self.hash_route = hash_route

        def forward(self, inputs, keys):
            x = self.bottom(*inputs)
            E = self.experts(x)
            outs, aux, nnz = [], [], []
            for gate, tower in zip(self.gates, self.towers):
                g = gate(keys if self.hash_route else x)
                outs.append(tower(torch.einsum("bn,bnh->bh", g.weights, E)))
                aux.extend(g.aux_losses.values())
                nnz.append(g.nnz)
            return outs, sum(aux, torch.zeros(())), torch.stack(nnz, 1)

    class Embeddings(nn.Module):
        def __init__(self, n_users, n_items, d):
            super().__init__()
            self.user, self.item = nn.Embedding(n_users, d), nn.Embedding(n_items, d)
            nn.init.normal_(self.user.weight, std=0.05)
            nn.init.normal_(self.item.weight, std=0.05)

        def forward(self, users, items):
            return torch.cat([self.user(users), self.item(items)], 1)

    class ConvBottom(nn.Sequential):
        """conv5x5 + maxpool2, conv5x5 + maxpool2 on 36 x 36: c2 x 6 x 6 features."""

        def __init__(self, c1, c2):
            super().__init__(nn.Unflatten(1, (1, 36, 36)), nn.Conv2d(1, c1, 5), nn.MaxPool2d(2),
                             nn.ReLU(), nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(),
                             nn.Flatten())

    def tower(h, hidden, out):
        return nn.Sequential(nn.Linear(h, hidden), nn.ReLU(), nn.Linear(hidden, out))

    return StackedExperts, MMoE, Embeddings, ConvBottom, tower


def sample_config(dataset, gate, rng):
    """One random-search configuration of ``gate`` on ``dataset``.

    Parameters
    ----------
    dataset : {"movielens", "multimnist"}
    gate : str
        One of :data:`GATES`.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``lr`` (log-uniform), and per gate ``gamma`` (grid), ``entropy``
        (log-uniform), ``search_epochs`` (uniform integer) as in COMET's
        search spaces (:data:`PROTOCOL`).
    """
    p = PROTOCOL[dataset]
    lo, hi = p["lr"]
    cfg = {"lr": float(math.exp(rng.uniform(math.log(lo), math.log(hi))))}
    base = gate.rstrip("+")
    if base in ("dselect_k", "comet"):
        cfg["gamma"] = float(rng.choice(p["gamma"]))
        lo, hi = p["entropy"]
        cfg["entropy"] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if gate == "comet+":
        cfg["gamma"] = p["comet+_gamma"]
    if gate.endswith("+"):
        cfg["search_epochs"] = int(rng.integers(p["search_epochs"][0], p["search_epochs"][1] + 1))
    return cfg


def _make_gates(gate, cfg, d, n, k, n_keys, search_steps, seed):
    from sparsecore.moe import (COMETGate, DSelectKGate, HashGate, PermutationLocalSearch,
                                TopKGate)

    gates = []
    for task in range(2):
        base = gate.rstrip("+")
        if base == "softmax":
            g = TopKGate(d, n, n)
        elif base == "topk":
            g = TopKGate(d, n, k)
        elif base == "hash":
            g = HashGate(n, k, n_keys=n_keys, seed=seed * 2 + task)
        elif base == "dselect_k":
            g = DSelectKGate(d, n, k, gamma=cfg["gamma"], entropy_reg=cfg["entropy"])
        elif base == "comet":
            g = COMETGate(d, n, k, gamma=cfg["gamma"], entropy_reg=cfg["entropy"])
        else:
            raise ValueError(f"unknown gate {gate!r}; choose from {GATES}")
        if gate.endswith("+"):
            g = PermutationLocalSearch(g, search_steps, n_permutations=1)
            if gates:  # one permutation shared by the task gates, as in COMET
                g.logits = gates[0].logits
        gates.append(g)
    return gates


def run_trial(dataset, seed, gate, trial, *, sizes=None):
    """Train one random-search trial and evaluate it.

    Parameters
    ----------
    dataset : {"movielens", "multimnist"}
    seed : int
        Data seed; with ``trial``, also the configuration and initialisation.
    gate : str
        One of :data:`GATES`.
    trial : int
    sizes : dict or None
        Overrides of :data:`PROTOCOL` entries (``--quick``).

    Returns
    -------
    dict
        The configuration, ``epochs`` run, ``best_epoch``, ``val_loss``,
        the test metrics (``test_auc``, ``test_mse`` or ``test_acc``,
        ``test_acc1``, ``test_acc2``), ``frac_le_k`` (test samples whose gates
        all use at most ``k`` experts) and ``seconds``.
    """
    import torch
    from torch.nn import functional as F

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    p = {**PROTOCOL[dataset], **(sizes or {})}
    rng = np.random.default_rng([seed, trial, sum(map(ord, gate)), len(dataset)])
    cfg = sample_config(dataset, gate, rng)
    StackedExperts, MMoE, Embeddings, ConvBottom, tower = _modules()
    n, k = p["n_experts"], p["k"]
    # the same initialisation stream for every gate of a (seed, trial)
    torch.manual_seed(100_003 * seed + trial)
    if dataset == "movielens":
        data = _movielens(seed)
        d = 2 * p["embed"]
        bottom = Embeddings(data["n_users"], data["n_items"], p["embed"])
        inputs = (torch.from_numpy(data["users"]), torch.from_numpy(data["items"]))
        keys = inputs[0]
        n_keys, outs = data["n_users"], (1, 1)
        y_watch = torch.from_numpy(data["watched"])
        y_rate = torch.from_numpy(data["rating"])
    else:
        data = _multimnist(seed)
        c1, c2 = p["conv"]
        d = c2 * 36
        bottom = ConvBottom(c1, c2)
        inputs = (torch.from_numpy(data["images"].reshape(len(data["images"]), -1)),)
        keys = torch.from_numpy(data["keys"])
        n_keys, outs = 256, (10, 10)
        labels = torch.from_numpy(data["labels"])
    perm = np.random.default_rng(seed).permutation
    train = data["train"][perm(len(data["train"]))[: p["max_train"]]]
    val = data["val"][perm(len(data["val"]))[: p["max_val"]]]
    test = data["test"]
    steps_per_epoch = math.ceil(len(train) / p["batch"])
    search = cfg.get("search_epochs", 0) * steps_per_epoch
    experts = StackedExperts(d, p["expert_hidden"], n, p.get("dropout", 0.0))
    gates = _make_gates(gate, cfg, d, n, k, n_keys, search, seed)
    towers = [tower(p["expert_hidden"], p["tower_hidden"], o) for o in outs]
    model = MMoE(bottom, d, experts, gates, towers, gate.startswith("hash"))

    def losses(idx):
        b = torch.from_numpy(idx)
        (o1, o2), aux, nnz = model([x[b] for x in inputs], keys[b])
        if dataset == "movielens":
            w = y_watch[b]
            l1 = F.binary_cross_entropy_with_logits(o1[:, 0], w)
            pos = w > 0
            l2 = (torch.mean((o2[:, 0][pos] - y_rate[b][pos]) ** 2) if pos.any()
                  else o2.sum() * 0.0)
        else:
            l1 = F.cross_entropy(o1, labels[b, 0])
            l2 = F.cross_entropy(o2, labels[b, 1])
        return l1 + l2, aux, (o1, o2), nnz

    def evaluate(idx, batch=4096):
        model.eval()
        total, outs_, nnzs = 0.0, [], []
        with torch.no_grad():
            for s in range(0, len(idx), batch):
                part = idx[s:s + batch]
                loss, _, o, nnz = losses(part)
                total += float(loss) * len(part)
                outs_.append(o)
                nnzs.append(nnz)
        model.train()
        o1 = torch.cat([o[0] for o in outs_])
        o2 = torch.cat([o[1] for o in outs_])
        return total / len(idx), o1, o2, torch.cat(nnzs)

    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    gen = torch.Generator().manual_seed(seed * 7919 + trial)
    best = (math.inf, None, 0)
    for epoch in range(1, p["epochs"] + 1):
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        for s in range(0, len(order), p["batch"]):
            loss, aux, _, _ = losses(order[s:s + p["batch"]])
            opt.zero_grad()
            (loss + aux).backward()
            opt.step()
            for g in model.gates:
                g.step()
        val_loss = evaluate(val)[0]
        if not math.isfinite(val_loss):
            break
        if val_loss < best[0]:
            best = (val_loss, {kk: v.clone() for kk, v in model.state_dict().items()}, epoch)
    row = {"dataset": dataset, "seed": seed, "gate": gate, "trial": trial, **cfg,
           "epochs": epoch, "best_epoch": best[2], "val_loss": best[0]}
    if best[1] is None:  # diverged in the first epoch
        row.update(val_loss=math.inf, seconds=time.perf_counter() - t0)
        return row
    model.load_state_dict(best[1])
    _, o1, o2, nnz = evaluate(test)
    row["frac_le_k"] = float((nnz <= k).all(1).float().mean())
    if dataset == "movielens":
        from sklearn.metrics import roc_auc_score

        w = data["watched"][test]
        pos = w > 0
        row["test_auc"] = float(roc_auc_score(w, o1[:, 0].numpy()))
        row["test_mse"] = float(np.mean((o2[:, 0].numpy()[pos] - data["rating"][test][pos]) ** 2))
    else:
        acc1 = float((o1.argmax(1) == labels[test, 0]).float().mean())
        acc2 = float((o2.argmax(1) == labels[test, 1]).float().mean())
        row.update(test_acc1=acc1, test_acc2=acc2, test_acc=(acc1 + acc2) / 2)
    row["seconds"] = time.perf_counter() - t0
    return row


# ---------------------------------------------------------------- summaries
METRIC = {"movielens": "test_auc", "multimnist": "test_acc"}


def _best_by_val(rows):
    finite = [r for r in rows if math.isfinite(r["val_loss"])]
    return min(finite, key=lambda r: r["val_loss"]) if finite else None


def summarize(rows, dataset, gates=GATES, top_fraction=0.05, budgets=None, draws=2000):
    """Per gate: the tuned metric per seed, the top-5 % mean and the budget curve.

    Parameters
    ----------
    rows : list of dict
        Trials of :func:`run_trial`.
    dataset : {"movielens", "multimnist"}
    gates : sequence of str
    top_fraction : float, default=0.05
        COMET's reporting: mean test metric of this fraction of all trials
        of a gate, best by validation loss (at least one trial).
    budgets : sequence of int or None
        Trial budgets of the tuning curve (default: 1 to all trials).
    draws : int, default=2000
        Resamples per budget.

    Returns
    -------
    dict of gate -> dict
        ``per_seed`` (test metric of the best-by-validation trial of each
        seed), ``mean``, ``std`` (over seeds), ``top`` and ``top_se`` (mean
        and standard error of the best ``top_fraction`` of all trials),
        ``curve`` (``budgets`` and the expected test metric of the
        best-by-validation trial among ``B`` trials drawn without
        replacement from all of the gate's trials), ``frac_le_k``,
        ``seconds`` (mean per trial).
    """
    metric = METRIC[dataset]
    out = {}
    for gate in gates:
        sub = [r for r in rows if r["dataset"] == dataset and r["gate"] == gate]
        if not sub:
            continue
        seeds = sorted({r["seed"] for r in sub})
        per_seed = []
        for s in seeds:
            best = _best_by_val([r for r in sub if r["seed"] == s])
            per_seed.append(best[metric] if best else math.nan)
        ok = sorted((r for r in sub if math.isfinite(r["val_loss"])), key=lambda r: r["val_loss"])
        top = ok[: max(1, round(top_fraction * len(sub)))]
        vals = np.array([r[metric] for r in top])
        # tuning budget: E[test metric of the best-by-validation of B random trials]
        rng = np.random.default_rng(0)
        val = np.array([r["val_loss"] if math.isfinite(r["val_loss"]) else np.inf for r in sub])
        test = np.array([r.get(metric, np.nan) for r in sub])
        bs = list(budgets or range(1, len(sub) + 1))
        curve = []
        for B in bs:
            picks = np.array([rng.choice(len(sub), B, replace=False) for _ in range(draws)])
            best = picks[np.arange(draws), np.argmin(val[picks], axis=1)]
            curve.append(float(np.nanmean(test[best])))
        out[gate] = {
            "per_seed": per_seed,
            "mean": float(np.nanmean(per_seed)), "std": float(np.nanstd(per_seed, ddof=1)),
            "top": float(vals.mean()),
            "top_se": float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else 0.0,
            "top_n": len(vals), "trials": len(sub),
            "curve": {"budgets": bs, "metric": curve},
            "frac_le_k": float(np.nanmean([r.get("frac_le_k", np.nan) for r in sub])),
            "seconds": float(np.mean([r["seconds"] for r in sub])),
        }
    return out


def paired_wins(summary, a, b):
    """Seeds on which gate ``a`` beat gate ``b`` (tuned metric), and the seeds compared."""
    x, y = summary[a]["per_seed"], summary[b]["per_seed"]
    pairs = [(u, v) for u, v in zip(x, y) if math.isfinite(u) and math.isfinite(v)]
    return sum(u > v for u, v in pairs), len(pairs)


def budget_to_reach(curve, fraction=0.005, reference=None):
    """Smallest budget whose expected metric is within ``fraction`` of
    ``reference`` (default: the curve's best)."""
    ref = max(curve["metric"]) if reference is None else reference
    for B, m in zip(curve["budgets"], curve["metric"]):
        if m >= ref * (1 - fraction):
            return B
    return None


# ------------------------------------------------------------------- runner
def _job(args):
    dataset, seed, gate, trial, sizes = args
    return run_trial(dataset, seed, gate, trial, sizes=sizes)


def _print_summary(dataset, summary):
    metric = "ROC AUC (watched)" if dataset == "movielens" else "accuracy (mean of the 2 digits)"
    print(f"\n### {dataset}: test {metric}")
    print(f"{'gate':<10} {'tuned per seed: mean +- std':>28} {'top 5 % of trials (n)':>26} "
          f"{'<= k experts':>13} {'s/trial':>8}")
    for gate, s in summary.items():
        print(f"{gate:<10} {s['mean']:>18.4f} +- {s['std']:.4f} "
              f"{s['top']:>15.4f} +- {s['top_se']:.4f} ({s['top_n']}) "
              f"{s['frac_le_k']:>12.3f} {s['seconds']:>8.1f}")
    pairs = [("comet+", "topk"), ("comet+", "hash"), ("comet+", "dselect_k"),
             ("comet+", "comet"), ("dselect_k", "topk"), ("topk+", "topk"), ("hash+", "hash"),
             ("comet", "topk"), ("softmax", "topk")]
    print("paired per seed (tuned metric): " + ", ".join(
        f"{a} > {b} on {w}/{n}" for a, b in pairs if a in summary and b in summary
        for w, n in [paired_wins(summary, a, b)]))
    for gate in ("topk", "hash"):
        if gate in summary and gate + "+" in summary:
            ref = max(max(summary[gate]["curve"]["metric"]), max(summary[gate + "+"]["curve"]["metric"]))
            b0 = budget_to_reach(summary[gate]["curve"], reference=ref)
            b1 = budget_to_reach(summary[gate + "+"]["curve"], reference=ref)
            print(f"budget to within 0.5 % of the best expected metric of {gate}/{gate}+ "
                  f"({ref:.4f}): {gate} {b0}, {gate}+ {b1} trials")


def run(args):
    """``bench mmoe``: every (dataset, seed, gate, trial) on worker processes."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print('\n## mmoe: skipped (torch is not installed: pip install "sparsecore[moe]")')
        return

    from sparsecore._bench import _harness as h

    datasets = [c for c in (args.cases or PROTOCOL) if c in PROTOCOL]
    sizes = QUICK if args.quick else None
    workers = max(1, min(os.cpu_count() or 1, 2))
    jobs = []
    for dataset in datasets:
        p = {**PROTOCOL[dataset], **(sizes or {})}
        for seed in range(p["seeds"]):
            for trial in range(p["trials"]):
                for gate in GATES:
                    jobs.append((dataset, seed, gate, trial, sizes))
    print(f"\n## mmoe: the DSelect-k / COMET multi-task protocols, scaled down; "
          f"{len(jobs)} trainings on {workers} worker processes of 1 torch thread each")
    t0 = time.perf_counter()
    rows = _run_jobs(jobs, workers)
    wall = time.perf_counter() - t0
    print(f"# wall {wall:.0f} s (this run; trials resumed from the cache not included)")
    summaries = {}
    for dataset in datasets:
        summaries[dataset] = summarize(rows, dataset)
        _print_summary(dataset, summaries[dataset])
    if args.json:
        columns = sorted({key for r in rows for key in r})
        h.write_json(args.json, {"suite": "mmoe", "threads": [1], "workers": workers,
                                 "wall_s": wall, "protocol": PROTOCOL,
                                 "quick": bool(args.quick), "columns": columns,
                                 "rows": [[r.get(c) for c in columns] for r in rows],
                                 "summary": summaries})


def _cache_path(jobs):
    """A file of finished trials keyed by the protocol, so an interrupted run resumes."""
    import hashlib
    import json

    from sparsecore.datasets import get_data_home

    key = hashlib.sha1(json.dumps([PROTOCOL, QUICK, GATES, jobs[:1]], default=str).encode())
    return get_data_home() / "bench-mmoe" / f"trials-{key.hexdigest()[:12]}.jsonl"


def _run_jobs(jobs, workers):
    import json
    import multiprocessing
    import sys

    path = _cache_path(jobs) if jobs else None
    done = {}
    if path is not None and path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by an interrupted run
            done[(r["dataset"], r["seed"], r["gate"], r["trial"])] = r
    todo = [j for j in jobs if tuple(j[:4]) not in done]
    if done:
        print(f"# resumed {len(jobs) - len(todo)} finished trials from {path}")
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(workers) as pool, open(path, "a") as log:
            for i, r in enumerate(pool.imap_unordered(_job, todo, chunksize=1), 1):
                done[(r["dataset"], r["seed"], r["gate"], r["trial"])] = r
                log.write(json.dumps(r) + "\n")
                log.flush()
                if i % 50 == 0 or i == len(todo):
                    print(f"#   {i}/{len(todo)} trainings done", file=sys.stderr, flush=True)
    return [done[tuple(j[:4])] for j in jobs]
