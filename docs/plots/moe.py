"""MoE forward pass, 64 or 16 experts: sparse dispatch and the batched dense
evaluation against the dense loop over experts (docs/data/moe.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import is_busy, load, load_label, ratio

rec = load("moe")
rows = rec["result"]["results"]
fig, ax = plt.subplots(figsize=(8, 3.4))
x = np.arange(len(rows))
bars = [("sparse 1t", "C0", None), ("sparse 2t", "C0", "//"), ("dense bmm 1t", "C7", None),
        ("dense bmm 2t", "C7", "//")]
for i, (peer, color, hatch) in enumerate(bars):
    t = peer[-2:]
    y = [ratio(r["times"], f"dense loop {t}", peer) for r in rows]
    ax.bar(x + (i - 1.5) * 0.2, y, 0.2, color=color, hatch=hatch, edgecolor="k", lw=0.3,
           label=f"{peer} over dense loop {t}")
ax.plot(x, [r["flop_ratio"] for r in rows], "k_", ms=30, mew=2, label="FLOP ratio (ideal)")
ax.set_xticks(x, [r["case"] for r in rows])
# log scale first: limits set on a linear axis (bottom 0) are not valid on a log one
two = f"hatched: 2 threads, {load_label(rec)}"
if is_busy(rec):
    two += "\nnot a measure of scaling"
ax.set(yscale="log", ylabel="speedup over the dense loop\nover all experts",
       title=f"MoE forward pass, float32\n{two}")
ax.set_ylim(0.3, 300)
ax.grid(True, axis="y", which="both", alpha=0.3)
ax.legend(fontsize=7, ncol=3, loc="upper center")
fig.tight_layout()
