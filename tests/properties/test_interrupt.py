"""Ctrl-C reaches a running kernel: it stops within a second and the
process stays usable."""
import pytest

from helpers import interrupt_child, posix_signals

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


@posix_signals
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_spgemm(threads):
    assert "usable (100, 100)" in interrupt_child(CHILD.format(threads=threads))
