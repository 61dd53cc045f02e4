import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from sparsecore import spgemm
from sparsecore import _threads
from sparsecore._threads import available_threads, effective_n_threads, openmp_enabled
from sparsecore._ext import _openmp_helpers


@pytest.fixture
def no_load(monkeypatch):
    """Thread counts as on an idle machine (the default follows the load)."""
    monkeypatch.setattr(_threads, "LOAD_AWARE", False)


def test_n_threads_rules(no_load):
    all_threads = effective_n_threads(None)
    assert all_threads >= 1
    assert effective_n_threads(-1) == all_threads
    assert effective_n_threads(3) == (3 if openmp_enabled() else 1)
    assert effective_n_threads(-all_threads - 5) == 1
    with pytest.raises(ValueError, match="n_threads=0"):
        effective_n_threads(0)
    with pytest.raises(TypeError):
        effective_n_threads(2.0)


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
def test_threadpoolctl_limits_are_honoured():
    # our kernels see threadpoolctl's limit on the OpenMP runtime they link
    assert any(info["user_api"] == "openmp" for info in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp_helpers.max_threads() == 1
        assert effective_n_threads(None) == 1
        assert available_threads() == 1
    assert available_threads() == _openmp_helpers.max_threads()
    assert 1 <= effective_n_threads(None) <= available_threads()


def _fake_load(monkeypatch, free_by_call, clock):
    """free_cpus() on scripted samples and a scripted clock."""
    samples = iter(free_by_call)
    monkeypatch.setattr(_threads, "_sample_free_cpus", lambda: next(samples))
    monkeypatch.setattr(_threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_threads, "_load_samples", ())
    monkeypatch.setattr(_threads, "LOAD_AWARE", True)


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
def test_default_threads_follow_the_load(monkeypatch):
    """None and negative counts give way to CPUs that every sample of the
    last 0.5 s saw busy; a single idle sample gives them back; explicit
    counts are used as given."""
    monkeypatch.setattr(_openmp_helpers, "max_threads", lambda: 8)
    clock = [100.0]
    _fake_load(monkeypatch, [3, 3, 8, 3, 3, 3], clock)
    assert effective_n_threads(None) == 3   # 5 CPUs busy elsewhere
    clock[0] += 0.05  # within 0.1 s: the sample is reused
    assert effective_n_threads(None) == 3
    assert effective_n_threads(-1) == 3 and effective_n_threads(-2) == 2
    assert effective_n_threads(6) == 6  # as given, whatever the load
    clock[0] += 0.2
    assert effective_n_threads(None) == 3
    clock[0] += 0.2   # one idle sample: the CPUs were not held throughout
    assert effective_n_threads(None) == 8
    clock[0] += 0.2
    assert effective_n_threads(None) == 8
    clock[0] += 0.2
    assert effective_n_threads(None) == 8
    clock[0] += 0.2   # the idle sample is 0.6 s old: busy throughout again
    assert effective_n_threads(None) == 3
    monkeypatch.setattr(_threads, "LOAD_AWARE", False)
    assert effective_n_threads(None) == 8


def test_free_cpus_without_proc(monkeypatch):
    import itertools

    clock = [5.0]
    _fake_load(monkeypatch, itertools.repeat(None), clock)
    assert _threads.free_cpus() is None
    assert effective_n_threads(None) == available_threads()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_free_cpus_counts_other_processes_only():
    import os
    import subprocess
    import sys

    cpus = os.cpu_count()
    # this process's own running threads are not load
    assert 1 <= _threads._sample_free_cpus() <= cpus
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        import time

        time.sleep(0.3)
        # two spinning processes hold two CPUs (others may hold more)
        assert _threads._sample_free_cpus() <= max(1, cpus - 2)
    finally:
        for p in busy:
            p.kill()
            p.wait()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_busy_threads_of_this_process_count_unless_they_are_ours():
    import os
    import threading
    import time

    from sparsecore.ops import spgemm

    cpus = os.cpu_count()
    team = _threads._own_team()
    tasks = {int(t) for t in os.listdir("/proc/self/task")}
    assert threading.get_native_id() in team and team <= tasks
    assert len(team) == available_threads()
    assert _threads._own_team() == team  # the same pool threads every time
    # another thread of this process running a kernel (GIL released) is load,
    # as a BLAS library's spinning workers are
    A = sp.random_array((3000, 3000), density=0.003, rng=np.random.default_rng(0), format="csr")
    stop = threading.Event()

    def work():
        while not stop.is_set():
            spgemm(A, A, n_threads=1)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        time.sleep(0.2)
        seen = []
        for _ in range(20):
            seen.append(_threads._sample_free_cpus())
            time.sleep(0.01)
        assert min(seen) <= max(1, cpus - 1)
    finally:
        stop.set()
        worker.join()


def test_result_does_not_depend_on_threadpool_limits():
    A = sp.random_array((300, 300), density=0.05, rng=np.random.default_rng(0), format="csr")
    with threadpool_limits(limits=1):
        C1 = spgemm(A, A)
    C = spgemm(A, A, n_threads=2)
    np.testing.assert_array_equal(C.data, C1.data)


def test_openmp_is_built_where_ci_expects_it():
    import os

    if os.environ.get("SPARSECORE_EXPECT_OPENMP") != "1":
        pytest.skip("SPARSECORE_EXPECT_OPENMP is not set (CI sets it)")
    assert openmp_enabled()
