"""
Block-sparse and N:M products against dense numpy
=================================================

A neural-network layer ``Y = W @ X`` whose weight ``W`` is mostly zero can
skip the zeros, but only a regular structure turns the skipped work into
time: whole blocks of zeros (block sparsity) or a fixed count of zeros in
every group of ``m`` weights (N:M sparsity). Here we prune one dense weight
to both structures at several sparsities and time :func:`sparsecore.spmm`
against numpy's dense product (BLAS) on one thread.
"""

# %%
# A weight and a batch
# --------------------
# The shape of a transformer's feed-forward weight (3072 x 768) with a batch
# of 64 columns, float32.
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from threadpoolctl import threadpool_limits

from sparsecore.ops import block_prune, nm_prune, spmm

rng = np.random.default_rng(0)
W = rng.standard_normal((3072, 768)).astype(np.float32)
X = rng.standard_normal((768, 64)).astype(np.float32)

# %%
# Prune and check
# ---------------
# :func:`~sparsecore.ops.block_prune` keeps the 16 x 16 blocks of largest
# norm, :func:`~sparsecore.ops.nm_prune` the ``n`` largest of every ``m``
# consecutive weights of a row. The product equals the dense product with the
# pruned weight.
S = block_prune(W, (16, 16), 0.1)
np.testing.assert_allclose(spmm(S, X), S.toarray() @ X, rtol=1e-4, atol=1e-3)
print(f"block: {S.nnz / W.size:.0%} of the weights kept")


def best_time(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


with threadpool_limits(1):          # numpy's BLAS on one thread too
    t_dense = best_time(lambda: W @ X)
    densities = [0.5, 0.3, 0.2, 0.1, 0.05]
    block = []
    for d in densities:
        S = block_prune(W, (16, 16), d)
        block.append(t_dense / best_time(lambda: spmm(S, X, n_threads=1)))
    patterns = [(2, 4), (1, 4), (1, 8)]
    nm = []
    for n, m in patterns:
        S = nm_prune(W, n, m)
        nm.append(t_dense / best_time(lambda: spmm(S, X, n_threads=1)))

# %%
# Speedup against the share of weights kept
# -----------------------------------------
# The ideal is ``1 / density``: ten times faster with 10 % of the weights.
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(densities, block, "o-", label="block-sparse 16 x 16")
ax.plot([n / m for n, m in patterns], nm, "s", ms=8, label="N:M (2:4, 1:4, 1:8)")
grid = np.linspace(0.04, 0.55, 50)
ax.plot(grid, 1 / grid, "k:", label="ideal 1 / density")
ax.axhline(1, color="grey", lw=0.8)
ax.set(xscale="log", yscale="log", xlabel="share of weights kept (density)",
       ylabel="speedup over numpy dense (1 thread)", title="W 3072 x 768 @ X 768 x 64, float32")
ax.set_xticks(densities, [f"{d:.0%}" for d in densities])
ax.xaxis.set_minor_formatter(NullFormatter())
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()


def faster_or_slower(speedup):
    if speedup >= 1:
        return f"{speedup:.1f}x faster than dense"
    return f"{1 / speedup:.1f}x slower than dense"


for d, s in zip(densities, block):
    print(f"block-sparse, {d:.0%} kept: {faster_or_slower(s)}")
for (n, m), s in zip(patterns, nm):
    print(f"{n}:{m}: {faster_or_slower(s)}")

# %%
# The same formats are PyTorch layers
# (:class:`sparsecore.torch.BlockSparseLinear`,
# :class:`sparsecore.torch.NMSparseLinear`); see :doc:`/user_guide/spmm` for
# the formats and their transposed and gradient products.
