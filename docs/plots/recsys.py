"""Dynamic Sparse Learning on MovieLens-100K at density 0.2: ranking quality
and training multiply-adds against dense BPR-MF (docs/data/recsys.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

runs = load("recsys")["result"]["runs"]
methods = list(dict.fromkeys(r["method"] for r in runs))


def mean(method, key):
    return np.mean([r[key] for r in runs if r["method"] == method])


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
x = np.arange(len(methods))
for i, key in enumerate(["recall@20", "ndcg@20"]):
    left.bar(x + (i - 0.5) * 0.4, [mean(m, key) for m in methods], 0.4, label=key)
left.set_xticks(x, methods)
left.set(title="ranking quality (full ranking, seen items excluded)")
left.legend(fontsize=7)
for i, (key, label) in enumerate([("train_ratio", "training MACs"),
                                  ("memory_ratio", "embedding memory (CSR)")]):
    right.bar(x + (i - 0.5) * 0.4, [mean(m, key) for m in methods], 0.4, label=label)
right.axhline(1, color="k", lw=0.8)
right.set_xticks(x, methods)
right.set(title="cost relative to dense BPR-MF", yscale="log")
right.legend(fontsize=7)
for ax in (left, right):
    ax.grid(True, axis="y", alpha=0.3)
fig.tight_layout()
