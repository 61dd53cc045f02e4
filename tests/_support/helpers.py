"""Helpers shared by the tests (on sys.path through pytest's pythonpath)."""
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_matrix_dir():
    """../shared/data/matrices beside the checkout (or $SPARSECORE_MATRIX_DIR)."""
    env = os.environ.get("SPARSECORE_MATRIX_DIR")
    for cand in (env, REPO.parent / "shared" / "data" / "matrices"):
        if cand and Path(cand).is_dir() and any(Path(cand).glob("*.mtx")):
            return Path(cand)
    return None


SHARED = shared_matrix_dir()
SHARED_MATRICES = sorted(p.stem for p in SHARED.glob("*.mtx")) if SHARED else []

requires_shared = pytest.mark.skipif(
    SHARED is None,
    reason="../shared/data/matrices not found beside the checkout "
    "(set SPARSECORE_MATRIX_DIR to a folder of Matrix Market files)",
)


posix_signals = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def interrupt_child(code, *, wait=0.5, timeout=60):
    """Run ``code`` in a fresh interpreter, send it SIGINT ``wait`` seconds
    after it prints ``ready``, and check that it printed ``interrupted`` within
    a second. ``code`` prints ``ready`` before the long call, ``interrupted``
    when it catches KeyboardInterrupt, then a ``usable ...`` line from a short
    call afterwards. Returns the child's remaining stdout."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    # A shell that starts pytest in the background makes it ignore SIGINT, and
    # the child would inherit that: give the child Python's own handler back.
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    proc = subprocess.Popen([sys.executable, "-P", "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, proc.kill)  # never hang on a child that runs on
    watchdog.start()
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(wait)  # let the kernel start
        sent = time.perf_counter()
        os.kill(proc.pid, signal.SIGINT)
        line = proc.stdout.readline().split()
        reaction = time.perf_counter() - sent
        # read on through the same buffered stream: communicate() would skip
        # what readline() has already buffered (the "usable" line, often)
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=timeout)
    finally:
        watchdog.cancel()
        proc.kill()
    assert line and line[0] == "interrupted", (line, err)
    assert reaction < 1.0, f"took {reaction:.2f} s to stop"
    return out + err


#: The built-in semirings on dense arrays, the reference of the semiring tests
#: and of .ci/fuzz_atheris.py: name -> (add ufunc, identity, multiply(a, b)).
SEMIRING_OPS = {
    "plus_times": (np.add, 0.0, lambda a, b: a * b),
    "min_plus": (np.minimum, np.inf, lambda a, b: a + b),
    "max_plus": (np.maximum, -np.inf, lambda a, b: a + b),
    "max_times": (np.maximum, -np.inf, lambda a, b: a * b),
    "min_times": (np.minimum, np.inf, lambda a, b: a * b),
    "lor_land": (np.logical_or, False, lambda a, b: (a != 0) & (b != 0)),
    "plus_pair": (np.add, 0, lambda a, b: np.ones(np.broadcast(a, b).shape, np.int64)),
    "plus_first": (np.add, 0.0, lambda a, b: a + 0 * b),
    "plus_second": (np.add, 0.0, lambda a, b: b + 0 * a),
}


def vm_flags(address):
    """The VmFlags of this process's mapping that holds ``address``."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")
