"""Timing harness: every peer runs once per round in rotated order, medians
and paired ratios are reported, and tiny cases repeat a call until one sample
takes at least ``min_time`` seconds. Before each sample the BLAS and torch
thread counts are set to the peer's (:class:`ThreadControl`), so a peer's
label ``name Nt`` states the threads it ran on."""
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sparsecore._threads import effective_n_threads

__all__ = [
    "Case",
    "Peer",
    "ThreadControl",
    "busy_processes",
    "SIMD_FLAGS",
    "cpu_facts",
    "cpu_name",
    "environment_line",
    "forced_simd",
    "format_table",
    "geomean",
    "paired_ratio",
    "thread_counts",
    "thread_limit",
    "time_peers",
]


@dataclass
class Peer:
    """A contender: ``run(prepared)`` is timed, ``prepare(inputs)`` is not."""

    name: str
    threads: int
    run: Callable[[Any], Any]
    prepare: Callable[[Any], Any] = lambda inputs: inputs

    @property
    def label(self):
        return f"{self.name} {self.threads}t"


@dataclass
class Case:
    """A named input of a benchmark; ``info`` holds what the tables print."""

    name: str
    inputs: Any
    info: dict = field(default_factory=dict)


class ThreadControl:
    """Sets the thread count of numpy/scipy's BLAS (through threadpoolctl,
    when installed) and of torch (when imported) and restores the original
    counts. :meth:`set` is cheap when the count does not change, so it can
    run before every sample (a fresh ``threadpool_limits`` costs about a
    millisecond). The package's own kernels take ``n_threads`` instead."""

    def __init__(self):
        self._blas, self._blas_now, self._torch_now = [], None, None
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self.available = False
        else:
            self.available = True
            self._blas = [c for c in ThreadpoolController().lib_controllers
                          if c.user_api == "blas"]
        self._blas_orig = [c.num_threads for c in self._blas]
        torch = sys.modules.get("torch")
        self._torch_orig = torch.get_num_threads() if torch is not None else None

    def set(self, n):
        """Run BLAS and torch on ``n`` threads from now on."""
        if n != self._blas_now:
            for c in self._blas:
                c.set_num_threads(n)
            self._blas_now = n
        torch = sys.modules.get("torch")
        if torch is not None and n != self._torch_now:
            if self._torch_orig is None:
                self._torch_orig = torch.get_num_threads()
            torch.set_num_threads(n)
            self._torch_now = n

    def restore(self):
        """Give BLAS and torch back the thread counts they had before."""
        for c, n in zip(self._blas, self._blas_orig):
            c.set_num_threads(n)
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_orig is not None:
            torch.set_num_threads(self._torch_orig)
        self._blas_now = self._torch_now = None


@contextlib.contextmanager
def thread_limit(n):
    """``with thread_limit(n):`` BLAS and torch run on ``n`` threads inside."""
    ctl = ThreadControl()
    ctl.set(n)
    try:
        yield ctl
    finally:
        ctl.restore()


def _time_once(peer, prepared, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        peer.run(prepared)
    return (time.perf_counter() - t0) / reps


def time_peers(case, peers, rounds=5, min_time=0.02, settle=0.0):
    """Return ``{label: [seconds per call, one per round]}``.

    ``settle`` seconds are slept before each sample (after one untimed
    call), so that thread pools the previous peer left spinning have gone
    idle: OpenBLAS workers spin about 0.1 s after a threaded call and slow a
    2-thread OpenMP kernel on a 2-core machine several times over. BLAS and
    torch run on each peer's ``threads`` during its samples.
    """
    ctl = ThreadControl()
    try:
        prepared = {p.label: p.prepare(case.inputs) for p in peers}
        reps = {}
        for p in peers:
            ctl.set(p.threads)
            t = _time_once(p, prepared[p.label], 1)  # warm-up and calibration
            reps[p.label] = 1 if t >= min_time else max(1, math.ceil(min_time / max(t, 1e-7)))
        times = {p.label: [] for p in peers}
        for r in range(rounds):
            shift = r % len(peers)
            for p in peers[shift:] + peers[:shift]:
                ctl.set(p.threads)
                if settle:
                    time.sleep(settle)
                    _time_once(p, prepared[p.label], 1)
                times[p.label].append(_time_once(p, prepared[p.label], reps[p.label]))
    finally:
        ctl.restore()
    return times


def paired_ratio(times, base, other):
    """Median over rounds of ``time(base) / time(other)``: > 1 means ``other``
    is faster."""
    return statistics.median(b / o for b, o in zip(times[base], times[other]))


def geomean(values):
    values = [v for v in values if v and v > 0]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def thread_counts(requested):
    """Thread counts to measure: the requested ones, else 1 and all."""
    if requested:
        return sorted(set(requested))
    n = effective_n_threads(None)
    return sorted({1, n})


#: The /proc/cpuinfo flags that decide which vector code can run, in the
#: order the header prints them (x86 ``flags``, then Arm ``Features``).
SIMD_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni",
    "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimdhp", "sve", "sve2", "sme",
)


def _cpuinfo(text=None):
    if text is not None:
        return text
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_facts(text=None):
    """CPU model, SIMD flags and reported clocks from /proc/cpuinfo.

    Parameters
    ----------
    text : str, optional
        The contents of /proc/cpuinfo (default: read it; empty where it
        does not exist, and the facts say "unknown").

    Returns
    -------
    dict
        ``model`` (str), ``flags`` (those of :data:`SIMD_FLAGS` present, or
        None when the file gives no flags), ``mhz`` (the "cpu MHz" of each
        CPU, possibly empty) and ``nominal_ghz`` (the "@ x.xxGHz" of the
        model name, or None).
    """
    text = _cpuinfo(text)
    model, flags, mhz = None, None, []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            present = set(value.split())
            flags = [f for f in SIMD_FLAGS if f in present]
        elif key == "cpu MHz":
            try:
                mhz.append(float(value))
            except ValueError:
                pass
    if model is None:  # Arm kernels name no model; the platform may
        model = platform.processor() or platform.machine() or "unknown"
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    return {"model": model, "flags": flags, "mhz": mhz,
            "nominal_ghz": float(m[1]) if m else None}


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo on Linux), else the platform's."""
    return cpu_facts()["model"]


def environment_line(busy=0):
    from sparsecore._config import get_simd

    cpu = cpu_name()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    beside = f"; {busy} CPU-bound process(es) running beside (--busy)" if busy else ""
    return (
        f"# {cpu}; {os.cpu_count()} CPUs; load average {load}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"SpMM SIMD level {get_simd()}{beside}"
    )


def format_table(header, rows):
    """Plain-text table with right-aligned columns."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_ratio(x):
    return "-" if x is None or x != x else f"{x:.2f}x"


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def status_kb(key):
    """A field of /proc/self/status in KiB (Linux), e.g. ``VmHWM``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory(run_once):
    """Call ``run_once()`` (a sparse product) with the peak resident set reset
    before it; returns ``{"extra": bytes above the resident set before the
    call, "output": bytes of the CSR result}``. Meant for a fresh process."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size
    base = status_kb("VmRSS")
    C = run_once()
    peak = status_kb("VmHWM")
    out = C.data.nbytes + C.indices.nbytes + C.indptr.nbytes
    return {"extra": (peak - base) * 1024, "output": out}


def run_probe(code, env=None, timeout=None):
    """Run ``python -P -c code`` in a fresh process; the JSON of its last line."""
    import subprocess

    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


# A CPU-bound loop that also ends when its parent is gone (its parent pid
# changes when it is re-parented), so that not even a SIGKILLed benchmark
# leaves it spinning.
_BUSY_LOOP = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(200_000):\n"
    "        pass\n"
)


@contextlib.contextmanager
def busy_processes(k, *, settle=0.2):
    """Run the body beside ``k`` CPU-bound processes: the machine as users
    have it (a browser, another job), where a thread count taken from the
    core count meets cores that are taken.

    Yields the processes' ids. They are stopped (killed and reaped) when the
    body ends, however it ends: an exception, KeyboardInterrupt; and they end
    by themselves if this process dies first.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"busy: the number of busy processes must be an int >= 0, got {k!r}")
    procs = []
    try:
        for _ in range(k):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", _BUSY_LOOP], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if procs and settle:
            time.sleep(settle)  # let them reach their loop
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@contextlib.contextmanager
def forced_simd(level):
    """``with forced_simd(level):`` the SpMM kernels run at that SIMD level
    (``sparsecore.set_simd``) inside, at the automatic choice after it;
    ``level=None`` changes nothing.

    Parameters
    ----------
    level : {"auto", "avx2", "avx512"} or None
    """
    from sparsecore._config import set_simd

    if level is None:
        yield
        return
    set_simd(level)
    try:
        yield
    finally:
        set_simd("auto")
