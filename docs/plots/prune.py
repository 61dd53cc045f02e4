"""Post-training pruning of all-MiniLM-L6-v2: quality of each method and
pattern, and the speed of the pruned encoder and of MLP blocks against dense
torch (docs/data/prune.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

res = load("prune")["result"]
fig, (left, mid, right) = plt.subplots(1, 3, figsize=(13, 3.8))

quality = [r for r in res["quality"] if "+" not in r["method"]]
patterns = list(dict.fromkeys(r["pattern"] for r in quality))
methods = list(dict.fromkeys(r["method"] for r in quality))
width = 0.8 / len(methods)
for i, method in enumerate(methods):
    xs, ys = [], []
    for j, pattern in enumerate(patterns):
        for r in quality:
            if r["pattern"] == pattern and r["method"] == method:
                xs.append(j + (i - (len(methods) - 1) / 2) * width)
                ys.append(r["mean_cosine"])
    left.bar(xs, ys, width, label=method, color=f"C{i}")
left.set_xticks(range(len(patterns)), patterns)
left.set(ylabel="mean cosine to the dense embeddings", ylim=(0, 1),
         title="quality on held-out text (one-shot)")
left.legend(fontsize=7)

speed = res["speed"]
threads = sorted({r["threads"] for r in speed})
labels = [(t, b) for t in threads for b in (32, 1)]
width = 0.8 / len(labels)
for i, (t, b) in enumerate(labels):
    ys = [next((r["speedup"] for r in speed if r["pattern"] == p and r["threads"] == t
                and r["batch"] == b), np.nan) for p in patterns]
    xs = np.arange(len(patterns)) + (i - (len(labels) - 1) / 2) * width
    mid.bar(xs, ys, width, label=f"{b}x256 tokens, {t} thread(s)", color=f"C{i}")
mid.axhline(1, color="k", lw=0.8)
mid.set_xticks(range(len(patterns)), patterns)
mid.set(ylabel="encoder speedup over dense", title="MiniLM encoder forward")
mid.legend(fontsize=7)

mlp = [r for r in res["mlp"] if r["threads"] == 1 and r.get("pattern", "2:4") == "2:4"]
blocks = list(dict.fromkeys(r["block"] for r in mlp))
tokens = sorted({r["tokens"] for r in mlp})
width = 0.8 / len(tokens)
for i, n in enumerate(tokens):
    ys = [next((r["speedup"] for r in mlp if r["block"] == b and r["tokens"] == n), np.nan)
          for b in blocks]
    xs = np.arange(len(blocks)) + (i - (len(tokens) - 1) / 2) * width
    right.bar(xs, ys, width, label=f"{n} token(s)", color=f"C{i}")
right.axhline(1, color="k", lw=0.8)
right.set_xticks(range(len(blocks)), [b.split(" ")[0] + "\n" + b.split(" ", 1)[1]
                                      for b in blocks], fontsize=7)
right.set(ylabel="speedup over dense (1 thread)", title="MLP blocks at 2:4")
right.legend(fontsize=7)
for ax in (left, mid, right):
    ax.grid(True, axis="y", alpha=0.3)
fig.tight_layout()
