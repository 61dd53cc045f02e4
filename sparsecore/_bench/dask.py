"""Dask suite: SpGEMM (and one SpMM) on LocalClusters of 1 and 2 worker
processes (one thread each) against the single-process kernel, with the
planning cost, the per-task overheads, and an estimate of the scale at which
a cluster pays.

R-MAT scale 16 (400 M multiplies, a 1.8 GiB result) is opt-in:
``python -m sparsecore bench dask --cases rmat16``.

Registers the family ``dask``: the in-process kernel (``sparsecore``) and
the cluster peers ``dask <W>w`` (``kept``: the result left on the workers)
at W = threads; clusters start on first use and stop with
:func:`close_clusters`.
"""
import statistics
import time

from sparsecore.ops import spgemm, spgemm_symbolic
from sparsecore._bench._harness import (
    Case,
    Peer,
    fmt_ms,
    fmt_ratio,
    format_table,
    paired_ratio,
    time_peers,
    write_json,
)
from sparsecore._bench._registry import Family, generated_matrix, register

__all__ = ["run", "close_clusters"]

CASES = ["lap3d27_60", "rmat14", "rmat16"]
QUICK = ["lap3d27_40", "rmat14"]
OPT_IN = ("rmat16",)
_CLUSTERS = {}


def _client(workers):
    """A client of a LocalCluster of ``workers`` one-thread worker processes."""
    if workers not in _CLUSTERS:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        _CLUSTERS[workers] = (cluster, Client(cluster, set_as_default=False))
    return _CLUSTERS[workers][1]


def close_clusters():
    """Stop the clusters the dask peers started."""
    while _CLUSTERS:
        cluster, client = _CLUSTERS.popitem()[1]
        client.close()
        cluster.close()


def _peers(case, t):
    """The kernel at t threads and sparsecore.dask on t worker processes."""
    peers = [Peer("sparsecore", t, lambda a: spgemm(a, a, n_threads=t))]
    try:
        import distributed  # noqa: F401
    except ImportError:
        return peers
    return peers + [_dask_peer(f"dask {t}w", t, False), _dask_peer(f"dask {t}w kept", t, True)]


def _case(name):
    A = generated_matrix(name)
    if A is None:
        raise KeyError(name)
    A.sort_indices()
    return Case(name, A)


FAMILY = register(Family("dask", ["lap3d27_40"] + CASES, _case, _peers,
                         ["sparsecore", "dask 1w", "dask 1w kept", "dask 2w", "dask 2w kept"],
                         close=close_clusters))


def _dask_peer(label, workers, persist_result):
    """C = X @ X on the cluster of ``workers`` (started on first use), X
    persisted there beforehand; the result gathered, or kept persisted."""
    import dask
    from distributed import wait

    from sparsecore.dask import from_scipy
    from sparsecore.dask import spgemm as dask_spgemm

    def prepare(A):
        # default chunks (row blocks of 128 MiB): the planner cuts the tasks
        client = _client(workers)
        with dask.config.set(scheduler=client), client.as_current():
            X = from_scipy(A).persist()
            wait(X)
        return X

    def run(X):
        client = _client(workers)
        with dask.config.set(scheduler=client), client.as_current():
            C = dask_spgemm(X, X)
            if persist_result:
                C = C.persist()
                wait(C)
                return C
            return C.compute()

    return Peer(label, workers, run, prepare)


def _breakdown(A, client, workers):
    """One planned product on a cluster: planning phases, numeric phase, the
    gather, and per-task costs from the task stream."""
    import dask
    from distributed import get_task_stream, wait

    from sparsecore.dask import from_scipy, plan_spgemm
    from sparsecore.dask import spgemm as dask_spgemm

    with dask.config.set(scheduler=client), client.as_current():
        X = from_scipy(A).persist()
        wait(X)
        t0 = time.perf_counter()
        plan = plan_spgemm(X, X)
        t_plan = time.perf_counter() - t0
        with get_task_stream(client) as ts:
            t0 = time.perf_counter()
            C = dask_spgemm(X, X, plan=plan).persist()
            wait(C)
            t_numeric = time.perf_counter() - t0
        t0 = time.perf_counter()
        R = C.compute()
        t_gather = time.perf_counter() - t0
    computes = [s["stop"] - s["start"] for rec in ts.data for s in rec["startstops"]
                if s["action"] == "compute" and str(rec["key"]).startswith("('spgemm-")]
    busy = sum(computes)
    out_bytes = R.data.nbytes + R.indices.nbytes + R.indptr.nbytes
    del R, C
    return {
        "plan_s": t_plan, "plan_phases": dict(plan.timings), "numeric_s": t_numeric,
        "gather_s": t_gather, "tasks": len(computes), "task_compute_s": busy,
        "overhead_per_task_s": max(0.0, (t_numeric * workers - busy) / max(1, len(computes))),
        "out_bytes": out_bytes, "gather_bytes_per_s": out_bytes / max(t_gather, 1e-9),
        "strategy": plan.strategy,
    }


def _latency(client):
    """Seconds of a trivial planned product on the cluster: the fixed cost of
    three dask computations (count, symbolic, product)."""
    import dask
    import scipy.sparse as sp

    from sparsecore.dask import from_scipy
    from sparsecore.dask import spgemm as dask_spgemm

    A = sp.eye_array(64, format="csr")
    times = []
    with dask.config.set(scheduler=client):
        X = from_scipy(A, chunks=32).persist()
        for _ in range(5):
            t0 = time.perf_counter()
            dask_spgemm(X, X).compute()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(args):
    try:
        import logging

        import distributed  # noqa: F401
        logging.getLogger("distributed").setLevel(logging.ERROR)
    except ImportError:
        print('\n## dask: skipped (dask.distributed is not installed: pip install "sparsecore[dask]")')
        return
    rounds = 3 if args.quick else min(args.rounds, 3)
    table = QUICK if args.quick else CASES
    names = list(table) if not args.cases else [c for c in args.cases if c in FAMILY.cases]
    if not args.cases:
        names = [n for n in names if n not in OPT_IN]
    print("\n## dask: C = A @ A, float64, sparsecore.dask.spgemm on LocalClusters of worker")
    print("# processes with 1 thread each, inputs already persisted on the cluster, timed end to end")
    print("# (planning: count + symbolic pass; product; gather into one csr_array) against the")
    print("# in-process kernel; ratios are time(kernel 1t)/time(peer), > 1 is faster;")
    print(f"# medians of {rounds} rounds, peers alternated" +
          ("" if args.cases else "; R-MAT 16 is opt-in: --cases rmat16") + "\n")
    try:
        results = []
        rows = []
        for name in names:
            case = _case(name)
            A = case.inputs
            peers = [p for t in (1, 2) for p in _peers(case, t) if p.name == "sparsecore"]
            peers += [p for t in (1, 2) for p in _peers(case, t) if p.name != "sparsecore"]
            labels = [p.label for p in peers]
            times = time_peers(case, peers, rounds=rounds, min_time=0)
            t0 = time.perf_counter()
            s = spgemm_symbolic(A, A, n_threads=1)
            t_sym = time.perf_counter() - t0
            t_kernel = statistics.median(times["sparsecore 1t"])
            info = {
                "case": name, "shape": A.shape, "nnz": int(A.nnz), "flops": s.total_flops,
                "nnz_c": s.total_nnz, "times": times, "symbolic_1t_s": t_sym,
                "flops_per_s_1t": s.total_flops / t_kernel,
                "breakdown": {w: _breakdown(A, _client(w), w) for w in (1, 2)},
            }
            results.append(info)
            base = "sparsecore 1t"
            rows.append([name, f"{A.shape[0]:,}", f"{s.total_flops / 1e6:,.0f} M", f"{s.total_nnz / 1e6:,.1f} M",
                         fmt_ms(t_kernel)] +
                        [fmt_ratio(paired_ratio(times, base, lab)) for lab in labels[1:]] +
                        [fmt_ratio(paired_ratio(times, "dask 1w 1t", "dask 2w 2t")),
                         fmt_ratio(paired_ratio(times, "dask 1w kept 1t", "dask 2w kept 2t"))])
        header = ["case", "rows", "flops", "nnz(C)", "kernel 1t ms", "sparsecore 2t", "dask 1w",
                  "dask 1w kept", "dask 2w", "dask 2w kept", "2w/1w", "2w/1w kept"]
        print(format_table(header, rows))
        print("# 'kept': the result is left on the workers (persisted), not gathered")
        _details(results)
        latency = {w: _latency(_client(w)) for w in (1, 2)}
        _estimate(results, latency)
        if args.json:
            write_json(args.json, {"suite": "dask", "results": results, "latency_s": latency})
    finally:
        close_clusters()


def _details(results):
    print("\n# where the time goes (one product, medians not taken):")
    rows = []
    for r in results:
        for w, b in r["breakdown"].items():
            rows.append([r["case"], f"{w}w", b["strategy"], f"{b['plan_s'] * 1e3:.0f}",
                         f"{b['numeric_s'] * 1e3:.0f}", f"{b['gather_s'] * 1e3:.0f}",
                         str(b["tasks"]), f"{b['task_compute_s'] * 1e3:.0f}",
                         f"{b['overhead_per_task_s'] * 1e3:.1f}",
                         f"{b['out_bytes'] / 2**20:.0f}", f"{b['gather_bytes_per_s'] / 2**30:.2f}"])
    print(format_table(["case", "workers", "strategy", "plan ms", "product ms", "gather ms",
                        "tasks", "task compute ms", "overhead/task ms", "out MiB",
                        "gather GiB/s"], rows))


def _estimate(results, latency):
    """When does a cluster pay? From the measured costs:

    T_one(c)     = F / (c r)
    T_cluster(W) = L + F / (W c r e)  [+ B / bw when the result is gathered]

    with F multiplies, r the in-process kernel's multiplies per second per
    thread, L the fixed latency of a planned product (three dask
    computations: count, symbolic pass, product), e the efficiency of the
    distributed path per worker thread (measured on 2 workers with the result
    kept: it pays for the symbolic pass, the row split, shipping B and the
    per-task costs), B the output bytes and bw the gather bandwidth. With
    W e > 1 the cluster pays above F* = L / ((1 - 1/(W e)) / (c r) [- B/(F bw)]).
    """
    print("\n# when a cluster pays (model in sparsecore/_bench/dask.py:_estimate)")
    print(f"#   fixed latency of a planned product: L = {latency[1] * 1e3:.0f} ms (1 worker), "
          f"{latency[2] * 1e3:.0f} ms (2 workers)")
    lat = latency[2]
    for r in results:
        rate = r["flops_per_s_1t"]
        t1 = r["flops"] / rate
        kept = statistics.median(r["times"]["dask 2w kept 2t"])
        eff = t1 / (2 * max(kept - lat, 1e-9))
        bw = r["breakdown"][2]["gather_bytes_per_s"]
        bytes_per_flop = r["breakdown"][2]["out_bytes"] / r["flops"]
        r["efficiency_2w"] = eff
        print(f"#   {r['case']}: r = {rate / 1e6:.0f} M multiplies/s/thread; efficiency per worker thread "
              f"e = {eff:.2f} (symbolic pass alone: {r['symbolic_1t_s'] / t1:.2f} of the product); "
              f"gather {bw / 2**30:.2f} GiB/s for {bytes_per_flop:.1f} output bytes per multiply")
        for W in (2, 4, 8, 32):
            gain = 1 - 1 / (W * eff)
            if gain <= 0:
                print(f"#     W={W:>2} machines: never (W e = {W * eff:.2f} <= 1)")
                continue
            parts = []
            for c in (1, 16):
                kept_at = lat * c * rate / gain
                per_flop = gain / (c * rate) - bytes_per_flop / bw
                gathered = "never" if per_flop <= 0 else f"{lat / per_flop / 1e9:,.2f} G"
                parts.append(f"c={c}: {kept_at / 1e9:,.2f} G kept / {gathered} gathered")
            print(f"#     W={W:>2} machines of c threads, pays above (multiplies): " + "; ".join(parts))
    print("#   (memory is the other reason: a product larger than one machine's memory needs "
          "the cluster at any speed)")
