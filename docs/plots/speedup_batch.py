"""Speedup over numpy dense against the batch size (columns of X), 1 thread:
block-sparse/CSR SpMM at 90 % sparsity (docs/data/spmm_batch.json) and
Monarch products with sqrt(n) blocks (docs/data/monarch.json)."""
import matplotlib.pyplot as plt
from _data import load, ratio

spmm = load("spmm_batch")["result"]["results"]
monarch = load("monarch")["result"]["products"]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
for shape, color in [("3072x768", "C0"), ("4096x4096", "C1")]:
    for fmt, style in [("16x16", "-o"), ("8x1", "--s"), ("csr", ":x")]:
        pts = sorted((int(r["case"].split()[-1]), ratio(r["times"], "numpy dense 1t", "sparsecore 1t"))
                     for r in spmm if r["case"].split()[:2] == [shape, fmt])
        left.plot(*zip(*pts), style, color=color, label=f"{shape} {fmt}")
left.axhline(10, color="k", ls=":", lw=0.8, label="ideal (1/density)")
left.set(title="block-sparse / CSR SpMM, 90 % sparse", xlabel="batch (columns of X)",
         ylabel="speedup over numpy dense (1 thread)", xscale="log", yscale="log")
for n, color in [(1024, "C0"), (4096, "C1")]:
    for peer, style in [("sparsecore", "-o"), ("numpy stacked", "--s"), ("torch bmm", ":^")]:
        pts = sorted((r["batch"], ratio(r["times"], "numpy dense 1t", f"{peer} 1t"))
                     for r in monarch if r["n"] == n)
        right.plot(*zip(*pts), style, color=color, label=f"n={n} {peer}")
right.set(title="Monarch, sqrt(n) blocks (ideal sqrt(n)/2)", xlabel="batch (columns of X)",
          xscale="log", yscale="log")
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
fig.tight_layout()
