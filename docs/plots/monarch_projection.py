"""Monarch projection, computed at docs build time (about a second): the
relative error ||W - M||_F / ||W||_F of ``monarch_project`` when ``W`` is
itself a Monarch matrix (the projection is exact: rounding level); and, for
``W`` a Monarch matrix ``M0`` plus Gaussian noise of relative size ``eps``,
the distance of the projection to ``M0``: the projection keeps only the part of
the noise inside the class (``2 n^1.5`` of ``n^2`` dimensions), about
``sqrt(2 / sqrt(n))`` of it. Exact SVD method and power method."""
import matplotlib.pyplot as plt
import numpy as np

from sparsecore.formats import MonarchMatrix
from sparsecore.ops import monarch_project

sizes = [64, 256, 1024]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
for dtype, style in [(np.float32, "-"), (np.float64, "--")]:
    for method, marker in [("svd", "o"), ("power", "s")]:
        errs = []
        for n in sizes:
            W = MonarchMatrix.random((n, n), dtype=dtype, random_state=n).toarray()
            errs.append(monarch_project(W, method=method, return_error=True, n_threads=1)[1])
        left.plot(sizes, np.maximum(errs, 1e-17), style, marker=marker,
                  label=f"{method}, {np.dtype(dtype).name}")
left.set(title="W is Monarch: relative error of the projection", xlabel="n (sqrt(n) blocks)",
         xscale="log", yscale="log", ylim=(1e-17, 1e-5))
eps = np.logspace(-6, -1, 6)
rng = np.random.default_rng(0)
n = 256
M0 = MonarchMatrix.random((n, n), dtype=np.float64, random_state=1).toarray()
E = rng.standard_normal((n, n))
E *= np.linalg.norm(M0) / np.linalg.norm(E)
for method, marker in [("svd", "o"), ("power", "s")]:
    dist = [np.linalg.norm(monarch_project(M0 + e * E, method=method, n_threads=1).toarray()
                           - M0) / np.linalg.norm(M0) for e in eps]
    right.plot(eps, dist, marker=marker, label=f"{method}: ||proj(W) - M0|| / ||M0||")
right.plot(eps, eps, "k:", label="||W - M0|| / ||M0|| = eps")
right.plot(eps, eps * np.sqrt(2 / np.sqrt(n)), "k--", lw=0.8, label="eps sqrt(2 / sqrt(n))")
right.set(title=f"W = Monarch + noise (n = {n}, float64)", xlabel="eps = ||noise|| / ||Monarch||",
          xscale="log", yscale="log")
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
fig.tight_layout()
