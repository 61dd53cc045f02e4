"""SpMM speedup from 1 to 2 threads beside numpy dense's in the same run
(docs/data/spmm_threads.json), labelled with the load the machine was under:
when dense BLAS does not gain from its second thread either, the second core
was taken by other work."""
import matplotlib.pyplot as plt
import numpy as np
from _data import is_busy, load, load_label

rec = load("spmm_threads")
rows = rec["result"]["results"]
fig, ax = plt.subplots(figsize=(8, 3.4))
x = np.arange(len(rows))
ax.bar(x - 0.2, [r["self_scaling"] for r in rows], 0.4, color="C0", edgecolor="k", lw=0.3,
       label="sparsecore, 2 threads against 1")
ax.bar(x + 0.2, [r["dense_scaling"] for r in rows], 0.4, color="C7", edgecolor="k", lw=0.3,
       label="numpy dense, 2 threads against 1")
ax.axhline(2, color="k", ls=":", lw=0.8, label="ideal on 2 idle cores")
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(x, [r["case"].replace(" ", "\n") for r in rows])
title = f"SpMM, batch 128, float32, {load_label(rec)}"
if is_busy(rec):
    title += "\nother work held the second core: not a measure of scaling"
ax.set(ylabel="speedup of 2 threads over 1\n(below 1: slower)", title=title)
ax.set_ylim(0, 2.6)
ax.grid(True, axis="y", alpha=0.3)
ax.legend(fontsize=7, loc="upper left", ncol=3)
fig.tight_layout()
