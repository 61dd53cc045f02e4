"""SpMM self-scaling from 1 to 2 threads beside numpy dense's scaling in the
same run (docs/data/spmm_threads.json): when dense BLAS does not scale
either, the second core was taken by other work."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

rows = load("spmm_threads")["result"]["results"]
fig, ax = plt.subplots(figsize=(8, 3.2))
x = np.arange(len(rows))
ax.bar(x - 0.2, [r["self_scaling"] for r in rows], 0.4, color="C0", edgecolor="k", lw=0.3,
       label="sparsecore 2t / 1t")
ax.bar(x + 0.2, [r["dense_scaling"] for r in rows], 0.4, color="C7", edgecolor="k", lw=0.3,
       label="numpy dense 2t / 1t")
ax.axhline(2, color="k", ls=":", lw=0.8, label="ideal (2 idle cores)")
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(x, [r["case"].replace("(", "").replace(")", "").replace(", ", "x")
                  .replace(" ", "\n") for r in rows])
ax.set(ylabel="speedup of 2 threads over 1", title="SpMM, B = 128, float32")
ax.grid(True, axis="y", alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
