"""sparsecore.dask.spgemm on the threaded scheduler and on LocalClusters of 1
and 2 worker processes (one thread each), beside the in-process kernel."""
import time

from .common import safe_import, shrink_params

from sparsecore import datasets, spgemm

with safe_import():
    import dask
    from distributed import Client, LocalCluster, wait

    from sparsecore.dask import from_scipy
    from sparsecore.dask import spgemm as dask_spgemm

CASES = {
    "lap3d27_40": lambda: datasets.make_laplacian((40, 40, 40), stencil=27),
    "rmat14": lambda: datasets.make_rmat(14),
}


def _start(where):
    """(client or None, workers) for 'threads', '1 worker', '2 workers'."""
    if "dask" not in globals():
        raise NotImplementedError("dask is not installed")
    if where == "threads":
        return None, 1
    workers = int(where.split()[0])
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster, set_as_default=False), workers


def _stop(client):
    if client is not None:
        cluster = client.cluster
        client.close()
        cluster.close()


def _scheduler(client):
    return dask.config.set(scheduler=client if client is not None else "threads")


def _persisted(A, client, workers):
    m = A.shape[0]
    with _scheduler(client):
        X = from_scipy(A, chunks=(-(-m // (8 * workers)), -1)).persist()
        if client is not None:
            with client.as_current():
                wait(X)
    return X


class DaskSpGEMM:
    """End to end: planning (count + symbolic pass), product, gather."""

    params = [list(CASES), ["threads", "1 worker", "2 workers"]]
    param_names = ["matrix", "scheduler"]
    timeout = 300
    number = 1
    repeat = 3

    def setup(self, name, where):
        self.client, workers = _start(where)
        self.X = _persisted(CASES[name](), self.client, workers)

    def teardown(self, name, where):
        if hasattr(self, "client"):   # setup may have skipped the case
            _stop(self.client)

    def time_spgemm(self, name, where):
        with _scheduler(self.client):
            dask_spgemm(self.X, self.X).compute()


class DaskSpGEMMScaling:
    """Speedups tracked on the dashboard: 2 worker processes over 1, and
    2 workers over the in-process kernel on 1 thread (below 1 is the
    overhead of the distributed path on one machine)."""

    params = [list(CASES)]
    param_names = ["matrix"]
    unit = "speedup"
    timeout = 600

    def setup(self, name):
        self.A = CASES[name]()
        self.clients = {w: _start(f"{w} workers") for w in (1, 2)}
        self.X = {w: _persisted(self.A, self.clients[w][0], w) for w in (1, 2)}

    def teardown(self, name):
        for client, _ in getattr(self, "clients", {}).values():
            _stop(client)

    def _best(self, fn, repeat=3):
        fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def _dask(self, w):
        client = self.clients[w][0]
        with _scheduler(client):
            return self._best(lambda: dask_spgemm(self.X[w], self.X[w]).compute())

    def track_speedup_2_workers_over_1(self, name):
        return self._dask(1) / self._dask(2)

    def track_speedup_2_workers_over_kernel_1t(self, name):
        A = self.A
        return self._best(lambda: spgemm(A, A, n_threads=1)) / self._dask(2)


shrink_params(globals())
