"""Block-sparse and CSR SpMM: speedup over numpy dense against sparsity
(W 3072x768 @ X 768x128, float32, 1 thread), from docs/data/spmm_sparsity.json."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load, ratio

rec = load("spmm_sparsity")
rows = rec["result"]["results"]


def series(fmt, peer):
    xs, ys = [], []
    for r in rows:
        _, f, s, _ = r["case"].split()  # "3072x768 16x16 50% 128"
        if f == fmt:
            xs.append(float(s.rstrip("%")))
            ys.append(ratio(r["times"], "numpy dense 1t", f"{peer} 1t"))
    return np.array(xs), np.array(ys)


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for fmt, marker in [("16x16", "o"), ("8x8", "s"), ("16x1", "^"), ("8x1", "v"),
                    ("4x1", "<"), ("csr", "x")]:
    x, y = series(fmt, "sparsecore")
    left.plot(x, y, marker=marker, label=f"sparsecore {fmt}")
x = np.array(sorted({float(r["case"].split()[2].rstrip("%")) for r in rows}))
for ax in (left, right):
    ax.plot(x, 1 / (1 - x / 100), "k:", label="ideal 1/density")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set(xlabel="sparsity (%)", yscale="log")
    ax.grid(True, which="both", alpha=0.3)
left.set(ylabel="speedup over numpy dense (1 thread)", title="sparsecore, by block shape")
for peer, fmt, style in [("sparsecore", "16x16", "-o"), ("scipy bsr", "16x16", "--o"),
                         ("torch bsr", "16x16", "-.o"), ("sparsecore", "csr", "-x"),
                         ("scipy csr", "csr", "--x"), ("torch csr", "csr", "-.x")]:
    xs, ys = series(fmt, peer)
    right.plot(xs, ys, style, label=f"{peer} ({fmt})")
right.set(title="beside scipy and torch (MKL), 16x16 blocks and CSR")
left.legend(fontsize=7)
right.legend(fontsize=7)
fig.tight_layout()
