"""Ctrl-C reaches the compiled BCD loops (a block solve, the forest-CG
solve): they stop within a second, raise KeyboardInterrupt, and the process
stays usable."""
import os
import signal
import subprocess
import sys
import time

import pytest

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


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("what", ["block", "graph"])
def test_ctrl_c_stops_a_long_bcd_kernel(what):
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", CHILD.replace("{what}", what)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2.0)  # let the kernel start (past the Python set-up)
        sent = time.perf_counter()
        os.kill(proc.pid, signal.SIGINT)
        line = proc.stdout.readline().split()
        reaction = time.perf_counter() - sent
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert line and line[0] == "interrupted", (line, err)
    assert reaction < 1.0, f"took {reaction:.2f} s to stop"
    assert "usable True" in out, err
