"""
Monarch projection and product
==============================

A Monarch matrix (Dao et al., ICML 2022) is ``P L P^T R`` with ``L`` and
``R`` block-diagonal and ``P`` a fixed permutation: ``2 n sqrt(n)`` numbers
instead of ``n^2``, and a product that costs as much. Any dense matrix has a
closest Monarch matrix, found exactly by one rank-1 SVD per slice
(:func:`sparsecore.ops.monarch_project`). Here we project a noisy Monarch
matrix back onto the class, then time the product against dense numpy.
"""

# %%
# Projection
# ----------
# Start from a Monarch matrix ``M0`` (``n = 1024``, 32 blocks), add Gaussian
# noise of relative size ``eps``, and project. The projection lands closer to
# ``M0`` than the noisy matrix was: only the part of the noise that lies in
# the Monarch class (about ``sqrt(2 / sqrt(n))`` of it) stays.
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from sparsecore.formats import MonarchMatrix
from sparsecore.ops import monarch_project

n = 1024
rng = np.random.default_rng(0)
M0 = MonarchMatrix.random((n, n), dtype=np.float32, random_state=0)
D0 = M0.toarray()
E = rng.standard_normal((n, n)).astype(np.float32)
E *= np.linalg.norm(D0) / np.linalg.norm(E)

eps = np.logspace(-4, -1, 4)
after = []
for e in eps:
    M = monarch_project(D0 + e * E, n_threads=1)
    after.append(np.linalg.norm(M.toarray() - D0) / np.linalg.norm(D0))
print(f"{M.left.shape[0]} blocks; the projection removes "
      f"{1 - after[-1] / eps[-1]:.0%} of the noise")

# %%
# Product
# -------
# ``M @ X`` for a batch of ``X``'s columns, against the dense product with
# the same matrix, both on one thread. The FLOP ratio is ``sqrt(n) / 2 = 16``.


def best_time(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


M1 = MonarchMatrix.random((n, n), dtype=np.float32, random_state=1, n_threads=1)
D1 = M1.toarray()
batches = [1, 8, 64, 256]
speedup = []
with threadpool_limits(1):
    for b in batches:
        X = rng.standard_normal((n, b)).astype(np.float32)
        np.testing.assert_allclose(M1 @ X, D1 @ X, rtol=1e-3, atol=1e-3)
        speedup.append(best_time(lambda: D1 @ X) / best_time(lambda: M1 @ X))
for b, s in zip(batches, speedup):
    print(f"batch {b:>3}: {s:.1f}x faster than dense" if s >= 1
          else f"batch {b:>3}: {1 / s:.1f}x slower than dense")

# %%
# Both at once
# ------------
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
left.plot(eps, eps, "k:", label="noisy matrix")
left.plot(eps, after, "o-", label="its Monarch projection")
left.plot(eps, eps * np.sqrt(2 / np.sqrt(n)), "k--", lw=0.8, label="eps sqrt(2 / sqrt(n))")
left.set(xscale="log", yscale="log", xlabel="eps = ||noise|| / ||M0||",
         ylabel="||. - M0|| / ||M0||", title=f"projection, n = {n}, float32")
left.legend(fontsize=8)
right.plot(batches, speedup, "o-")
right.axhline(np.sqrt(n) / 2, color="k", ls=":", label="FLOP ratio sqrt(n) / 2")
right.axhline(1, color="grey", lw=0.8)
right.set(xscale="log", yscale="log", xlabel="batch (columns of X)",
          ylabel="speedup over numpy dense (1 thread)", title="M @ X against W @ X")
right.legend(fontsize=8)
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()

# %%
# :class:`sparsecore.torch.MonarchLinear` is the same product as a PyTorch
# layer; :doc:`/user_guide/monarch` describes the format.
