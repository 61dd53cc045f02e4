"""``sparsecore bench --busy K``: the CPU-bound processes beside a measurement
always stop, however the measurement ends."""
import os
import signal
import subprocess
import sys
import time

import pytest

from sparsecore._bench._harness import busy_processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads process states from /proc")


def _state(pid):
    """The /proc state letter of ``pid`` (R running, S sleeping, Z zombie),
    None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _running(pid):
    return _state(pid) not in (None, "Z", "X")


def _wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    return not any(_running(p) for p in pids)


def test_processes_run_inside_and_stop_after():
    with busy_processes(2) as pids:
        assert len(pids) == 2 and all(_running(p) for p in pids)
        time.sleep(0.3)
        # they spin: each has used CPU time
        for p in pids:
            with open(f"/proc/{p}/stat") as f:
                utime = int(f.read().rsplit(")", 1)[1].split()[11])
            assert utime > 0
    # killed and reaped: gone, not even a zombie
    assert all(_state(p) is None for p in pids)


def test_zero_processes():
    with busy_processes(0) as pids:
        assert pids == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_processes_stop_when_the_body_raises(error):
    seen = []
    with pytest.raises(error):
        with busy_processes(1) as pids:
            seen.extend(pids)
            raise error("stop")
    assert seen and all(_state(p) is None for p in seen)


def test_processes_end_when_the_benchmark_is_killed():
    """A SIGKILLed benchmark runs no cleanup: the busy loops notice that their
    parent is gone and end by themselves."""
    code = ("from sparsecore._bench._harness import busy_processes\n"
            "import time\n"
            "with busy_processes(2) as pids:\n"
            "    print(*pids, flush=True)\n"
            "    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-P", "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_running(p) for p in pids)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _wait_gone(pids), [(p, _state(p)) for p in pids]


@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_bad_counts_are_refused(k):
    with pytest.raises(ValueError, match="busy"):
        with busy_processes(k):
            pass


def test_cli_refuses_a_negative_count():
    out = subprocess.run([sys.executable, "-P", "-m", "sparsecore", "bench", "spgemm",
                          "--busy", "-1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--busy" in out.stderr
