"""The DSelect-k / COMET multi-task protocols, scaled down
(docs/data/moe_papers.json): top row, the tuned test metric of every gate on
each seed (dots) and its mean (bar); bottom row, the tuning-budget curves:
expected test metric of the best-by-validation trial among B random-search
trials, with and without permutation local search."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

result = load("moe_papers")["result"]
summary = result["summary"]
datasets = [d for d in ("movielens", "multimnist") if d in summary]
titles = {"movielens": "MovieLens-100K: test ROC AUC (watched)",
          "multimnist": "MultiMNIST: test accuracy (mean of 2 digits)"}
fig, axes = plt.subplots(2, len(datasets), figsize=(5.2 * len(datasets), 6.4), squeeze=False)
for col, dataset in enumerate(datasets):
    s = summary[dataset]
    gates = list(s)
    ax = axes[0, col]
    x = np.arange(len(gates))
    ax.bar(x, [s[g]["mean"] for g in gates], 0.6, color="C7", alpha=0.5)
    for i, g in enumerate(gates):
        ys = np.asarray(s[g]["per_seed"], dtype=float)
        ax.plot(i + np.linspace(-0.2, 0.2, len(ys)), ys, "o", ms=3, color="C0")
    lo = min(min(s[g]["per_seed"]) for g in gates)
    hi = max(max(s[g]["per_seed"]) for g in gates)
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set_xticks(x, gates, rotation=30, fontsize=8)
    ax.set_title(titles[dataset], fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax = axes[1, col]
    for gate, color in (("topk", "C1"), ("hash", "C2"), ("comet", "C3")):
        for name, style in ((gate, "--"), (gate + "+", "-")):
            if name in s:
                c = s[name]["curve"]
                ax.plot(c["budgets"], c["metric"], style, color=color, label=name)
    ax.set(xscale="log", xlabel="random-search trials B",
           ylabel="expected test metric of the best-by-validation trial")
    ax.yaxis.label.set_size(8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
fig.tight_layout()
