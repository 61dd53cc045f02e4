"""SpGEMM speedup over scipy (docs/data/spgemm_threads.json): on one thread
beside python-graphblas (SuiteSparse) and scipy with sorted output (left);
at 2 threads (right), labelled with the load the machine was under."""
import matplotlib.pyplot as plt
import numpy as np
from _data import is_busy, load, load_label, ratio

rec = load("spgemm_threads")
rows = rec["result"]["results"]
x = np.arange(len(rows))


def geomean(values):
    values = np.asarray(values, dtype=float)
    return float(np.exp(np.mean(np.log(values[np.isfinite(values)]))))


fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
for ax, peers, title in [
        (left, [("sparsecore 1t", "C0"), ("graphblas 1t", "C2"), ("scipy+sort 1t", "C7")],
         "1 thread"),
        (right, [("sparsecore 2t", "C0"), ("graphblas 2t", "C2")],
         f"2 threads, {load_label(rec)}"
         + ("\nother work held the second core: not a measure of scaling"
            if is_busy(rec) else ""))]:
    width = 0.8 / len(peers)
    for i, (peer, color) in enumerate(peers):
        y = [ratio(r["times"], "scipy 1t", peer) for r in rows]
        ax.bar(x + (i - len(peers) / 2 + 0.5) * width, y, width, color=color, edgecolor="k",
               lw=0.3, label=f"{peer} (geometric mean {geomean(y):.2f}x)")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(x, [r["case"] for r in rows], rotation=35, ha="right", fontsize=7)
    ax.set(yscale="log", title=title)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
left.set_ylabel("speedup over scipy on 1 thread\n(above 1: faster than scipy)")
lo, hi = left.get_ylim()
left.set_ylim(lo, hi * 6)          # room for the legends above the bars
fig.suptitle("C = A @ B, float64, real matrices then generated ones", fontsize=9)
fig.tight_layout()
