"""Ctrl-C reaches the compiled BCD loops (a block solve, the forest-CG
solve): they stop within a second, raise KeyboardInterrupt, and the process
stays usable."""
import pytest

from helpers import interrupt_child, posix_signals

CHILD = r"""
import time
import numpy as np
import scipy.sparse as sp
from sparsecore.optimize import greedy_bcd, graph_bcd, Quadratic, L1

rng = np.random.default_rng(0)
if "{what}" == "block":
    # one block of every feature, solved to tol 0: a single long compiled solve
    X = rng.standard_normal((1500, 1500))
    y = X @ rng.standard_normal(1500)
    run = lambda: greedy_bcd(Quadratic(), L1(1e-9), X, y, block_size=1500, max_iter=1,
                             tol=0.0, max_epochs=10**9, active_set=False, screening=False)
else:
    from sparsecore.datasets import make_laplacian
    L = make_laplacian((500, 500))
    A = sp.csr_array(L + sp.diags_array(np.full(L.shape[0], 1e-6)))
    run = lambda: graph_bcd(A, np.ones(A.shape[0]), tol=0.0, max_iter=10**9)
print("ready", flush=True)
t0 = time.perf_counter()
try:
    run()
    print("finished", time.perf_counter() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - t0, flush=True)
res = greedy_bcd(Quadratic(), L1(0.1), np.eye(3), np.ones(3))
print("usable", res.converged, flush=True)
"""


@posix_signals
@pytest.mark.parametrize("what", ["block", "graph"])
def test_ctrl_c_stops_a_long_bcd_kernel(what):
    # wait 2 s: let the kernel start, past the Python set-up
    assert "usable True" in interrupt_child(CHILD.replace("{what}", what), wait=2.0)
