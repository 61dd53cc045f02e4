"""Masked triangle counting C<L> = L (+.pair) L: speedup of sparsecore over
python-graphblas (same mask and semiring) and over scipy (full product, then
mask), 1 thread (docs/data/triangles.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load, ratio

rows = load("triangles")["result"]["masked"]
fig, ax = plt.subplots(figsize=(10, 3.6))
x = np.arange(len(rows))
for i, (peer, color, label) in enumerate([
        ("graphblas 1t", "C2", "over python-graphblas"),
        ("scipy full+mask 1t", "C7", "over scipy (full product, then mask)")]):
    y = [ratio(r["times"], peer, "sparsecore 1t") for r in rows]
    ax.bar(x + (i - 0.5) * 0.4, y, 0.4, color=color, edgecolor="k", lw=0.3, label=label)
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(x, [r["case"] for r in rows], rotation=30, ha="right")
ax.set(yscale="log", ylabel="speedup of sparsecore\n(above 1: sparsecore faster)",
       title="masked triangle counting, 1 thread")
ax.grid(True, axis="y", which="both", alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
