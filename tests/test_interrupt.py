"""Ctrl-C reaches a running kernel: it stops within a second and the
process stays usable."""
import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = r"""
import sys, time
import numpy as np
import scipy.sparse as sp
from sparsecore import spgemm, datasets

# a product that takes several seconds
A = datasets.make_erdos_renyi(200_000, 40, seed=1)
print("ready", flush=True)
t0 = time.perf_counter()
try:
    spgemm(A, A, n_threads={threads})
    print("finished", time.perf_counter() - t0, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - t0, flush=True)
C = spgemm(A[:100], A[:, :100])  # still works afterwards
print("usable", C.shape, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_spgemm(threads):
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", CHILD.format(threads=threads)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # let the kernel start
        sent = time.perf_counter()
        os.kill(proc.pid, signal.SIGINT)
        line = proc.stdout.readline().split()
        reaction = time.perf_counter() - sent
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert line and line[0] == "interrupted", (line, err)
    assert reaction < 1.0, f"took {reaction:.2f} s to stop"
    assert "usable (100, 100)" in out, err
