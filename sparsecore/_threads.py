"""Thread counts for the compiled kernels (scikit-learn's ``n_threads`` rules)."""
import numbers

from sparsecore._ext import _openmp_helpers

__all__ = ["effective_n_threads", "one_blas_thread", "openmp_enabled", "threads_for_work"]


def openmp_enabled():
    """Return True when the compiled core was built with OpenMP."""
    return _openmp_helpers.openmp_enabled()


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` to a positive thread count.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None`` or ``-1`` means all threads OpenMP offers (which honours
        ``OMP_NUM_THREADS`` and ``threadpoolctl`` limits); ``-2`` all but one,
        and so on; a positive value is used as given. ``0`` is an error.

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
    available = _openmp_helpers.max_threads()
    if n_threads is None or n_threads == -1:
        return available
    if n_threads < 0:
        return max(1, available + int(n_threads) + 1)
    return int(n_threads)


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
