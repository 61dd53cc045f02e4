"""What the scheduler offers: kernel threads per task and memory per worker.

Kernel threads per task (no oversubscription):

- on a ``dask.distributed`` worker: the worker's ``cores`` resource (declare
  it with ``dask worker --nthreads 1 --resources cores=16``), else its
  thread count, shared among the tasks it runs at once (its thread count);
  the default is one kernel thread per task, and the worker fills its
  threads with tasks;
- on the threaded scheduler: the threads OpenMP offers this process
  (``OMP_NUM_THREADS``, threadpoolctl) shared among the pool's
  ``num_workers`` threads;
- on the synchronous scheduler: all of them.
"""
import os
import sys
from dataclasses import dataclass

import dask

from sparsecore._threads import effective_n_threads
from sparsecore._validation import available_memory

__all__ = ["ClusterResources", "cluster_resources", "current_worker", "task_threads"]

_SYNC_NAMES = ("sync", "synchronous", "single-threaded")


def current_worker():
    """The dask.distributed worker running this task, or None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def task_threads(n_threads=None):
    """Kernel threads for one task where it runs (see the module docstring).

    Parameters
    ----------
    n_threads : int or None
        A count given by the user is used as given (sklearn rules: -1 all,
        -2 all but one); None derives it from the worker's resources.

    Returns
    -------
    int
    """
    if n_threads is not None:
        return effective_n_threads(n_threads)
    worker = current_worker()
    if worker is not None:
        slots = max(1, int(worker.state.nthreads))
        cores = worker.state.total_resources.get("cores", slots)
        return max(1, int(cores) // slots)
    scheduler = dask.config.get("scheduler", None)
    available = effective_n_threads(None)
    if isinstance(scheduler, str) and scheduler in _SYNC_NAMES:
        return available
    pool = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return max(1, available // int(pool))


@dataclass(frozen=True)
class ClusterResources:
    """Memory and threads of whatever will run the graph.

    Attributes
    ----------
    kind : str
        ``"distributed"`` or ``"local"`` (threaded or synchronous scheduler).
    n_workers : int
    threads : int
        Task slots in all.
    worker_memory : tuple of int
        Memory limit of each worker in bytes (the machine's available memory
        for the local schedulers, and for workers without a limit).
    """

    kind: str
    n_workers: int
    threads: int
    worker_memory: tuple

    @property
    def total_memory(self):
        """Bytes of memory over all workers."""
        return int(sum(self.worker_memory))

    @property
    def min_worker_memory(self):
        """Bytes of memory of the smallest worker."""
        return int(min(self.worker_memory))

    def describe(self):
        """One line for messages: where the work runs and its memory.

        Returns
        -------
        str
        """
        gib = self.total_memory / 2**30
        if self.kind == "local":
            return f"this machine ({gib:.1f} GiB available)"
        return (f"the cluster ({self.n_workers} worker{'s' * (self.n_workers != 1)}, "
                f"{gib:.1f} GiB of worker memory in all)")


def _default_client():
    """The distributed Client dask.compute would use now, or None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import Client

    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    return client if isinstance(client, Client) else None


def cluster_resources():
    """Resources of the scheduler ``dask.compute`` would use now.

    Returns
    -------
    ClusterResources
        The workers, threads and memory of the default ``dask.distributed``
        client, or of this machine under the threaded scheduler.

    Raises
    ------
    RuntimeError
        If the ``dask.distributed`` cluster has no workers.
    """
    client = _default_client()
    local_memory = available_memory() or 0
    if client is None:
        pool = dask.config.get("num_workers", None) or os.cpu_count() or 1
        return ClusterResources("local", 1, int(pool), (int(local_memory),))
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        raise RuntimeError("the dask.distributed cluster has no workers")
    memory = tuple(int(w.get("memory_limit") or local_memory) for w in workers.values())
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return ClusterResources("distributed", len(workers), threads, memory)
