"""SpGEMM speedup over scipy at 1 and 2 threads, beside python-graphblas
(SuiteSparse) at the same thread counts (docs/data/spgemm_threads.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load, ratio

rows = load("spgemm_threads")["result"]["results"]
peers = [("sparsecore 1t", "C0", None), ("sparsecore 2t", "C0", "//"),
         ("graphblas 1t", "C2", None), ("graphblas 2t", "C2", "//"),
         ("scipy+sort 1t", "C7", None)]
fig, ax = plt.subplots(figsize=(10, 3.8))
x = np.arange(len(rows))
width = 0.8 / len(peers)
for i, (peer, color, hatch) in enumerate(peers):
    y = [ratio(r["times"], "scipy 1t", peer) for r in rows]
    ax.bar(x + (i - len(peers) / 2 + 0.5) * width, y, width, color=color, hatch=hatch,
           edgecolor="k", lw=0.3, label=peer)
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(x, [r["case"] for r in rows], rotation=30, ha="right")
ax.set(yscale="log", ylabel="speedup over scipy (1 thread)",
       title="C = A @ B, float64 (cases sorted by flops within real / generated)")
ax.grid(True, axis="y", which="both", alpha=0.3)
ax.legend(fontsize=7, ncol=5)
fig.tight_layout()
