"""Thread counts for the compiled kernels (scikit-learn's ``n_threads`` rules)."""
import numbers
import os
import sys
import threading
import time

from sparsecore._ext import _openmp_helpers

__all__ = ["available_threads", "effective_n_threads", "free_cpus", "one_blas_thread",
           "openmp_enabled", "threads_for_work"]

# The default thread count follows the load: a team thread on a core that
# another process keeps busy gets half of that core in time slices of several
# ms, and every call waits for it (a 2 ms SpMM took 9 ms with 2 threads where
# 1 thread took 1 ms). Set SPARSECORE_LOAD_AWARE_THREADS=0 for the plain
# OpenMP count.
LOAD_AWARE = os.environ.get("SPARSECORE_LOAD_AWARE_THREADS", "1") != "0"
_LOAD_TTL = 0.1  # seconds a sample of the load is reused
_LOAD_MEMORY = 0.5  # seconds of samples that must all see a CPU busy
_load_samples = ()  # (monotonic time, free CPUs) of recent samples, newest last


def openmp_enabled():
    """Return True when the compiled core was built with OpenMP."""
    return _openmp_helpers.openmp_enabled()


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` to a positive thread count.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None`` or ``-1`` means all threads OpenMP offers (which honours
        ``OMP_NUM_THREADS`` and ``threadpoolctl`` limits) that have a free
        CPU: while other processes keep cores busy, fewer (see
        :func:`free_cpus`); ``-2`` all but one, and so on; a positive value
        is used as given. ``0`` is an error.

    Returns
    -------
    int
        The number of threads, 1 when the core was built without OpenMP.
    """
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
    ):
        raise TypeError(
            f"n_threads must be an int or None, got {type(n_threads).__name__} "
            f"{n_threads!r}"
        )
    if n_threads == 0:
        raise ValueError(
            "n_threads=0 is not allowed; use None or -1 for all threads, or a "
            "positive count"
        )
    if not _openmp_helpers.openmp_enabled():
        return 1
    if n_threads is not None and n_threads > 0:
        return int(n_threads)
    available = _openmp_helpers.max_threads()
    free = free_cpus() if LOAD_AWARE and available > 1 else None
    if free is not None:
        available = max(1, min(available, free))
    if n_threads is None or n_threads == -1:
        return available
    return max(1, available + int(n_threads) + 1)


def available_threads():
    """The threads OpenMP offers (``OMP_NUM_THREADS``, ``threadpoolctl``
    limits, the CPU affinity mask), whatever the load; 1 without OpenMP."""
    if not _openmp_helpers.openmp_enabled():
        return 1
    return _openmp_helpers.max_threads()


def free_cpus():
    """CPUs that no runnable thread of another process holds: the online
    CPUs less the system's runnable threads (``/proc/loadavg``) that are not
    this process's own, the most of the samples of the last 0.5 s: a CPU
    counts as busy only while every sample of that window saw it busy, so a
    process that holds a core steadily is left alone, while a short blip
    (a shell, a daemon waking up) does not cost an idle machine its second
    thread. Sampled at most every 0.1 s (about 70 us a sample); None where
    ``/proc`` cannot tell (not Linux).

    Of this process's own threads, the calling thread and sparsecore's
    OpenMP team (which spins briefly after each kernel) are not counted as
    load; other threads of the process that run are, such as a BLAS
    library's workers, which keep spinning for a while after each BLAS call
    (OpenBLAS about 0.1 s) and hold the core a kernel thread would wait for.
    """
    global _load_samples
    now = time.monotonic()
    samples = _load_samples
    if not samples or now - samples[-1][0] >= _LOAD_TTL:
        free = _sample_free_cpus()
        if free is None:
            return None
        samples = tuple(s for s in samples if now - s[0] < _LOAD_MEMORY) + ((now, free),)
        _load_samples = samples
    return max(free for _, free in samples)


def _sample_free_cpus():
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
        ours = _own_team() | {threading.get_native_id()}
        own = 0
        for tid in os.listdir("/proc/self/task"):
            if int(tid) not in ours:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    # the state letter follows the name in parentheses
                    if f.read().rsplit(b")", 1)[1].split(None, 1)[0] == b"R":
                        own += 1
            except OSError:  # the thread ended meanwhile
                pass
    except (OSError, ValueError, IndexError):
        return None
    cpus = os.cpu_count() or 1
    return max(1, cpus - max(0, running - own))


_TEAMS = {}  # native id of a calling thread -> ids of the OpenMP team it starts


def _own_team():
    """Ids of the OpenMP team threads the calling thread runs kernels on
    (found once per calling thread and team size)."""
    key = (threading.get_native_id(), _openmp_helpers.max_threads())
    team = _TEAMS.get(key)
    if team is None:
        team = _TEAMS[key] = frozenset(_openmp_helpers.team_thread_ids())
    return team


def threads_for_work(n_threads, work, grain):
    """Cap ``n_threads`` so that every thread gets at least ``grain`` units of
    work: small problems stay on one thread, where a parallel region would only
    add overhead."""
    return int(max(1, min(n_threads, work // grain)))


_BLAS_CONTROLLER = []


def one_blas_thread():
    """A context manager that runs BLAS/LAPACK on one thread inside it.

    For batches of small LAPACK calls (many 64 x 64 SVDs): BLAS threads give
    such calls nothing, and on a machine where other processes take cores
    their spin-waits made a batch 10-30x slower. The controller (the list of
    loaded BLAS libraries) is built once: about 15 us per use after that.
    """
    if not _BLAS_CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")
