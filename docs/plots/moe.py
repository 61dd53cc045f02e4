"""MoE forward pass, 64 or 16 experts: sparse dispatch (plain, with the
Switch load-balancing loss, with capacity factor 1.25, with expert-choice
routing) and the batched dense evaluation against the dense loop over
experts, one thread (docs/data/moe.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load, ratio

rows = load("moe")["result"]["results"]
fig, ax = plt.subplots(figsize=(8, 3.8))
x = np.arange(len(rows))
bars = [("sparsecore 1t", "C0", None, "sparse dispatch"),
        ("sparsecore aux 1t", "C1", None, "+ load-balancing loss"),
        ("sparsecore cf1.25 1t", "C2", None, "capacity factor 1.25"),
        ("sparsecore expert choice 1t", "C3", None, "expert choice"),
        ("dense bmm 1t", "C7", None, "dense bmm")]
w = 0.8 / len(bars)
for i, (peer, color, hatch, label) in enumerate(bars):
    y = [ratio(r["times"], "dense loop 1t", peer) for r in rows]
    ax.bar(x + (i - (len(bars) - 1) / 2) * w, y, w, color=color, hatch=hatch, edgecolor="k",
           lw=0.3, label=label)
ax.plot(x, [r["flop_ratio"] for r in rows], "k_", ms=30, mew=2, label="FLOP ratio (ideal)")
ax.set_xticks(x, [r["case"] for r in rows])
# log scale first: limits set on a linear axis (bottom 0) are not valid on a log one
ax.set(yscale="log", ylabel="speedup over the dense loop\n(forward, 1 thread)")
ax.set_ylim(0.5, 200)
ax.grid(True, axis="y", which="both", alpha=0.3)
ax.legend(fontsize=7, ncol=3, loc="upper center")
fig.tight_layout()
