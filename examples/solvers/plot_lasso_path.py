"""
Lasso path: greedy block coordinate descent beside scikit-learn
===============================================================

:func:`sparsecore.linear_model.lasso_path` solves the same problems on the
same grid of penalties as :func:`sklearn.linear_model.lasso_path`, with greedy
block coordinate descent (Nutini, Laradji & Schmidt, JMLR 2022): at every
step it updates the block of coordinates whose update promises the most,
instead of sweeping all of them. Here both compute the path of a sparse
regression problem with a few true features, and we compare the
coefficients. (Times to the same duality gap against scikit-learn, celer and
skglm are printed by ``python -m sparsecore bench bcd``.)
"""

# %%
# A sparse problem
# ----------------
# 500 samples, 2000 features (1 % of the entries stored, as in text
# features), of which 15 carry signal (picked among the features stored in at
# least 5 samples, so that each can be seen in the data).
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import lasso_path as sklearn_lasso_path

from sparsecore.linear_model import lasso_path

rng = np.random.default_rng(0)
X = sp.random_array((500, 2000), density=0.01, format="csc", rng=rng)
true_coef = np.zeros(2000)
support = rng.choice(np.flatnonzero(np.diff(X.indptr) >= 5), 15, replace=False)
true_coef[support] = rng.uniform(1, 3, 15) * rng.choice([-1, 1], 15)
y = X @ true_coef + 0.05 * rng.standard_normal(500)

# %%
# Both paths
# ----------
# 30 penalties from ``alpha_max`` (all coefficients zero) down to
# ``alpha_max / 100`` (the grid scikit-learn would choose); both solvers stop
# at a small duality gap, so their coefficients agree to that tolerance.
alphas, coefs, _ = lasso_path(X, y, eps=1e-2, n_alphas=30, tol=1e-8, n_threads=1)
alphas_sk, coefs_sk, _ = sklearn_lasso_path(X, y, alphas=alphas, tol=1e-8)
print(f"largest coefficient difference along the path: {abs(coefs - coefs_sk).max():.1e}")
found = np.flatnonzero(coefs[:, -1])
print(f"at the smallest alpha: {len(found)} nonzero coefficients, "
      f"{np.isin(support, found).sum()} of the 15 true features among them")

# %%
# The path of each coefficient
# ----------------------------
# Solid lines: sparsecore; dots: scikit-learn, on the true features. The
# other features stay at zero until the smallest penalties.
fig, ax = plt.subplots(figsize=(7, 3.8))
for i, j in enumerate(support):
    ax.plot(alphas, coefs[j], "-", color=f"C{i % 10}", lw=1)
    ax.plot(alphas_sk, coefs_sk[j], ".", color=f"C{i % 10}", ms=4)
others = np.setdiff1d(np.arange(2000), support)
ax.plot(alphas, coefs[others].T, "-", color="0.7", lw=0.5)
ax.set(xscale="log", xlabel="alpha", ylabel="coefficient",
       title="Lasso path (lines: sparsecore, dots: scikit-learn)")
ax.invert_xaxis()
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()

# %%
# The estimator form is :class:`sparsecore.linear_model.GreedyBCDLasso`, a
# scikit-learn estimator usable in pipelines and grid searches; see
# :doc:`/user_guide/bcd` for the rules, the blocks and the measured times.
