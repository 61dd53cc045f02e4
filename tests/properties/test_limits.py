"""Interrupts and resource limits of the kernels not covered elsewhere:
Ctrl-C reaches the Kronecker SBL M-step, and an allocation that fails inside
a kernel comes back as MemoryError with the process still usable."""
import _thread
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def _interrupt_soon(seconds=0.3):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_the_am_mstep(sigint_handler):
    from sparsecore._ext import _kron
    rng = np.random.default_rng(0)
    gammas = [rng.random(300) + 0.5, rng.random(200) + 0.5]
    lam = np.kron(gammas[0], gammas[1]) * (1 + 0.1 * rng.random(60_000))
    g = [x.copy() for x in gammas]
    # tol = NaN never converges: without polling this would run for ages
    timer = _interrupt_soon()
    try:
        with pytest.raises(KeyboardInterrupt):
            _kron.am_mstep(lam, g, 2**62, float("nan"))
    finally:
        timer.cancel()
    # usable afterwards
    assert _kron.am_mstep(lam, [x.copy() for x in gammas], 3, 0.0) == 3


CHILD_OOM = r"""
import resource, sys
import numpy as np
import scipy.sparse as sp
import sparsecore

A = sp.random_array((20_000, 20_000), density=1e-3, rng=0, format="csr")
small = sp.random_array((50, 50), density=0.2, rng=1, format="csr")
sparsecore.spgemm(small, small, n_threads=1)   # warm up every code path
with open("/proc/self/status") as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
# about 100 MB of the product cannot fit in 40 MB more address space
resource.setrlimit(resource.RLIMIT_AS, (vm + (40 << 20), resource.RLIM_INFINITY))
try:
    sparsecore.spgemm(A, A, n_threads=1)
    print("no error")
except MemoryError as e:
    print("MemoryError", e)
C = sparsecore.spgemm(small, small, n_threads=1)
print("usable", C.shape)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
@pytest.mark.skipif(UNDER_ASAN, reason="ASan reserves terabytes of address space")
def test_allocation_failure_is_a_memory_error():
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD_OOM], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MemoryError" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "usable (50, 50)" in proc.stdout
