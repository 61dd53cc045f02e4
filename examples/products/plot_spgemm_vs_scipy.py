"""
SpGEMM against scipy on real matrices
=====================================

:func:`sparsecore.spgemm` computes ``C = A @ B`` for scipy sparse inputs and
returns a canonical ``scipy.sparse.csr_array`` (sorted indices, no
duplicates), the same object scipy's own product gives once its indices are
sorted. Here we square the real matrices shipped with sparsecore (from the
SuiteSparse collection), check that both libraries agree, and time both on
one thread.
"""

# %%
# Load the shipped matrices
# -------------------------
# :func:`sparsecore.datasets.list_matrices` names the matrices that come with
# the package; :func:`~sparsecore.datasets.load_matrix` reads one as a
# ``csr_array``. We skip the complex one to keep the comparison in float64.
import time

import matplotlib.pyplot as plt
import numpy as np

from sparsecore import datasets, spgemm

matrices = {name: datasets.load_matrix(name) for name in datasets.list_matrices()}
matrices = {name: A for name, A in matrices.items() if A.dtype == np.float64}
for name, A in matrices.items():
    print(f"{name:>13}: {A.shape[0]:>5} x {A.shape[1]:<5} {A.nnz:>6} nonzeros")

# %%
# Same result as scipy
# --------------------
# scipy's product may leave its column indices unsorted; ``sort_indices`` puts
# them in the canonical order sparsecore always returns. The values then agree
# to rounding (the sums are accumulated in another order).
for name, A in matrices.items():
    C = spgemm(A, A, n_threads=1)
    ref = (A @ A).tocsr()
    ref.sort_indices()
    assert C.has_sorted_indices and np.array_equal(C.indices, ref.indices)
    np.testing.assert_allclose(C.data, ref.data, rtol=1e-12, atol=1e-12 * abs(ref.data).max())
print("sparsecore and scipy agree on every product")

# %%
# Time both
# ---------
# The best of a few repeats of each product, on one thread (scipy's SpGEMM is
# single-threaded). Both outputs are sorted, so the comparison is like for
# like.


def best_time(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_sorted(A):
    C = (A @ A).tocsr()
    C.sort_indices()
    return C


speedup = {name: best_time(lambda: scipy_sorted(A)) / best_time(lambda: spgemm(A, A, n_threads=1))
           for name, A in matrices.items()}

fig, ax = plt.subplots(figsize=(7, 3.2))
names = list(speedup)
ax.bar(names, [speedup[n] for n in names], color="C0")
ax.axhline(1, color="k", lw=0.8)
ax.set(ylabel="speedup over scipy (1 thread)", title="C = A @ A, float64, sorted output")
ax.tick_params(axis="x", rotation=20)
ax.grid(True, axis="y", alpha=0.3)
fig.tight_layout()
for name in names:
    print(f"{name:>13}: {speedup[name]:.2f}x faster than scipy" if speedup[name] >= 1
          else f"{name:>13}: {1 / speedup[name]:.2f}x slower than scipy")

# %%
# With more threads, pass ``n_threads=None`` (all available cores, as in
# scikit-learn) or wrap the call in ``threadpoolctl.threadpool_limits``. To
# speed up unchanged scipy code, see :func:`sparsecore.accelerate`.
