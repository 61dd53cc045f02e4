"""Monarch suite: ``Y = M @ X`` against numpy dense BLAS, numpy stacked
matmul over the blocks, and torch bmm (when installed), at equal thread
counts; and the projection (power iteration) against the batched LAPACK SVD.

Shapes: n = 1024 and 4096 with sqrt(n) blocks, batch 1, 64 and 512, X of
shape (n, batch) in C order. Registers the families ``monarch`` (products)
and ``monarch.projection`` (methods ``power`` and ``svd`` on a Gaussian
float32 matrix, cases ``n1024`` and ``n4096``).
"""
import statistics
import time

import numpy as np

from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, optional, register
from sparsecore.formats import MonarchMatrix
from sparsecore.ops import monarch_project
from sparsecore.formats._monarch_project import slices

Case, Peer = h.Case, h.Peer
fmt_ratio, paired_ratio = h.fmt_ratio, h.paired_ratio

__all__ = ["run", "case_names", "make_case", "stacked_matmul"]

SIZES = (1024, 4096)
BATCHES = (1, 64, 512)


def case_names():
    return [f"n{n}_b{b}" for n in SIZES for b in BATCHES]


def stacked_matmul(w1, w2, X):
    """The numpy peer: ``np.matmul`` over the stacked blocks with the two
    permutations as reshape/transpose (a strided view, then a copy)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    B = X.shape[1]
    Z = np.matmul(w1, X.reshape(k, p, B))
    U = np.matmul(w2, Z.reshape(r, l, B).transpose(1, 0, 2))
    return U.transpose(1, 0, 2).reshape(l * s, B)


def _torch_bmm(torch):
    def run(d):
        w1, w2, X = d
        k, q, p = w1.shape
        l, s, r = w2.shape
        B = X.shape[1]
        Z = torch.bmm(w1, X.view(k, p, B))
        U = torch.bmm(w2, Z.view(r, l, B).transpose(0, 1))
        return U.transpose(0, 1).reshape(l * s, B)
    return run


def make_case(name, dtype=np.float32, seed=0):
    n, b = (int(x) for x in name[1:].split("_b"))
    M = MonarchMatrix.random((n, n), dtype=dtype, random_state=seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n, b)).astype(dtype)
    if b == 1:
        X = X[:, 0]
    return Case(name, {"M": M, "W": M.toarray(), "X": X},
                {"n": n, "batch": b, "blocks": M.n_blocks[0], "dtype": np.dtype(dtype).name})


def _peers(case, t):
    """numpy dense, numpy stacked, torch bmm (when installed) and sparsecore
    at t threads (time_peers sets BLAS and torch to t)."""
    def stacked(d):
        X = d["X"]
        return stacked_matmul(d["M"].right, d["M"].left, X.reshape(X.shape[0], -1))

    peers = [Peer("numpy dense", t, lambda d: d["W"] @ d["X"]),
             Peer("numpy stacked", t, stacked)]
    torch = optional("torch")
    if torch is not None:
        def prep(d):
            X = d["X"]
            return (torch.from_numpy(d["M"].right.copy()),
                    torch.from_numpy(d["M"].left.copy()),
                    torch.from_numpy(X.reshape(X.shape[0], -1)))
        peers.append(Peer("torch bmm", t, _torch_bmm(torch), prep))
    peers.append(Peer("sparsecore", t, lambda d: d["M"].matmul(d["X"], n_threads=t)))
    return peers


FAMILY = register(Family("monarch", case_names(), make_case, _peers,
                         ["numpy dense", "numpy stacked", "torch bmm", "sparsecore"]))


def make_projection_case(name):
    n = int(name[1:])
    return Case(name, np.random.default_rng(2).standard_normal((n, n)).astype(np.float32))


def _projection_peers(case, t):
    """``power`` at t threads; ``svd`` (numpy's LAPACK) at 1 thread only.
    Each returns ``(projection, relative error)``."""
    peers = [Peer("power", t, lambda W: monarch_project(W, method="power", n_threads=t,
                                                        return_error=True))]
    if t == 1:
        peers.append(Peer("svd", 1, lambda W: monarch_project(W, method="svd",
                                                              return_error=True)))
    return peers


PROJECTION = register(Family("monarch.projection", ["n1024", "n4096"], make_projection_case,
                             _projection_peers, ["power", "svd"], kind="operations"))


def _products(args, threads, rounds, dtype):
    case0 = Case("-", None)
    peers = [p for t in threads for p in _peers(case0, t)]
    names = case_names()
    if args.cases:
        names = [n for n in names if n in args.cases]
    others = sorted({p.name for p in peers} - {"numpy dense", "sparsecore"})
    print(f"\n## monarch: Y = M @ X, {np.dtype(dtype).name}, sqrt(n) blocks; ratios are "
          f"time(numpy dense W @ X)/time(peer) at the same thread count, > 1 is faster")
    settle = _settle(threads)
    pause = f", {settle:g} s pause before each sample" if settle else ""
    print(f"# medians of {rounds} rounds, peers alternated{pause}; 'vs best' = sparsecore over "
          f"the fastest of {', '.join(others)}; ideal (FLOP ratio) = sqrt(n)/2\n")
    header = ["case"]
    for t in threads:
        header += [f"dense ms {t}t"] + [f"{o} {t}t" for o in others] + [f"sparsecore {t}t",
                                                                         f"vs best {t}t"]
    if len(threads) > 1:
        header.append(f"sc {max(threads)}t/1t")
    header.append("other load")
    rows, results = [], []
    load = ForeignLoad()
    for name in names:
        case = make_case(name, dtype)
        load.start()
        times = h.time_peers(case, peers, rounds=rounds, settle=_settle(threads))
        foreign = load.stop()
        ref = case.inputs["W"].astype(np.float64) @ case.inputs["X"].astype(np.float64)
        got = case.inputs["M"].matmul(case.inputs["X"])
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        rec = {"case": name, **case.info, "max_rel_diff": rel, "times": times,
               "other_load": foreign}
        row = [name]
        for t in threads:
            base = f"numpy dense {t}t"
            row.append(h.fmt_ms(statistics.median(times[base])))
            for o in others:
                row.append(fmt_ratio(paired_ratio(times, base, f"{o} {t}t")))
            row.append(fmt_ratio(paired_ratio(times, base, f"sparsecore {t}t")))
            best = _vs_best(times, t, others)
            rec[f"vs_best_{t}t"] = best
            row.append(fmt_ratio(best))
        if len(threads) > 1:
            row.append(fmt_ratio(paired_ratio(times, "sparsecore 1t",
                                              f"sparsecore {max(threads)}t")))
        row.append("-" if foreign is None else f"{foreign:.0%}")
        rows.append(row)
        results.append(rec)
    print(h.format_table(header, rows))
    print("  (other load: CPU time other processes took during the case, as a share of the "
          "machine; rows with a large share are contaminated)")
    return results


class ForeignLoad:
    """Share of the machine's CPU time that other processes used between
    start() and stop() (Linux; None elsewhere): benchmarks on a shared box
    are only as good as this is small."""

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:8]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            return None
        return sum(v), sum(v) - v[3] - v[4], own

    def start(self):
        self._a = self._snap()

    def stop(self):
        b = self._snap()
        if self._a is None or b is None or b[0] == self._a[0]:
            return None
        total = b[0] - self._a[0]
        foreign = (b[1] - self._a[1]) - (b[2] - self._a[2])
        return max(0.0, foreign / total)


def _settle(threads):
    """Pause between samples when several thread counts run: idle OpenBLAS
    workers spin about 0.1 s after a threaded call (see time_peers)."""
    return 0.2 if max(threads) > 1 else 0.0


def _vs_best(times, t, others):
    """Median over rounds of min(peer time) / our time."""
    ours = times[f"sparsecore {t}t"]
    peers = [times[f"{o} {t}t"] for o in others if f"{o} {t}t" in times]
    if not peers:
        return None
    return statistics.median(min(ts) / o for ts, o in zip(zip(*peers), ours))


def _timed(fn, rounds):
    out, ts = None, []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, ts


def _projection(args, threads, rounds, ctl):
    print("\n## monarch projection: nearest Monarch matrix (sqrt(n) blocks) in Frobenius norm")
    print("# 'lapack svd' = batched LAPACK SVD of the n slices (method='svd', the exact optimum),"
          " numpy BLAS/LAPACK at 1 thread; 'power' = method='power' (defaults)\n")
    rng = np.random.default_rng(7)
    sizes = (1024,) if args.quick else SIZES
    header = ["n", "matrix", "dtype", "svd s 1t"] + [f"power s {t}t" for t in threads] + \
             ["svd/power 1t", "err svd", "err power", "power/svd err"]
    rows, results = [], []
    for n in sizes:
        for kind, dtype in (("gaussian", np.float32), ("monarch", np.float32),
                            ("monarch", np.float64)):
            if kind == "gaussian":
                W = rng.standard_normal((n, n)).astype(dtype)
            else:
                W = MonarchMatrix.random((n, n), dtype=dtype, random_state=n).toarray()
            ctl.set(1)
            time.sleep(_settle(threads))
            power = {}
            for t in threads:
                res, ts = _timed(lambda t=t: monarch_project(W, method="power", n_threads=t,
                                                             return_error=True), rounds)
                power[t] = statistics.median(ts)
                err_pow = res[1]
            svd_rounds = 1 if n >= 4096 else max(1, rounds // 2)
            (_, err_svd), ts = _timed(lambda: monarch_project(W, return_error=True), svd_rounds)
            t_svd = statistics.median(ts)
            row = [n, kind, np.dtype(dtype).name, f"{t_svd:.3f}"] + \
                  [f"{power[t]:.3f}" for t in threads] + \
                  [fmt_ratio(t_svd / power[1]) if 1 in power else "-",
                   f"{err_svd:.3g}", f"{err_pow:.3g}",
                   f"{err_pow / err_svd:.5f}" if err_svd > 0 else "-"]
            rows.append(row)
            results.append({"n": n, "matrix": kind, "dtype": np.dtype(dtype).name,
                            "svd_s": t_svd, "power_s": power, "err_svd": err_svd,
                            "err_power": err_pow})
    # the batched SVD alone (no scatter), to show what the LAPACK peer costs
    n = sizes[-1]
    W = rng.standard_normal((n, n)).astype(np.float32)
    b = int(np.sqrt(n))
    T = np.ascontiguousarray(slices(W, b, b, b, b))
    _, ts = _timed(lambda: np.linalg.svd(T, full_matrices=False), 1)
    print(h.format_table(header, rows))
    print(f"  (np.linalg.svd of the {b * b} slices alone, n={n}, 1 thread: {ts[0]:.3f} s)")
    return results


def run(args):
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    ctl = h.ThreadControl()
    if not ctl.available:
        print("# threadpoolctl is not installed: numpy's BLAS runs at its own thread count")
    products = _products(args, threads, rounds, np.float32)
    products64 = []
    if not args.quick:
        products64 = _products(args, threads, rounds, np.float64)
    try:
        projection = _projection(args, threads, rounds, ctl)
    finally:
        ctl.restore()
    _summary(products, projection, threads)
    if args.json:
        h.write_json(args.json, {"suite": "monarch", "threads": threads,
                               "products": products + products64, "projection": projection})


def _summary(products, projection, threads):
    """Each figure against its target, from the runs above (1 thread, float32)."""
    print("\n  goals (float32, 1 thread unless stated):")

    def ratio(rec, t=1):
        return paired_ratio(rec["times"], f"numpy dense {t}t", f"sparsecore {t}t")

    for rec in products:
        if 1 not in threads:
            break
        n, b = rec["n"], rec["batch"]
        goal = {(1024, 1): 8, (4096, 1): 30}.get((n, b), 12 if n == 1024 else 24)
        line = (f"    n={n:<5} batch={b:<4} vs dense {fmt_ratio(ratio(rec)):>7} (goal >= {goal}x)"
                f"   vs best peer {fmt_ratio(rec.get('vs_best_1t')):>6} (goal >= 1.3x)")
        tn = max(threads)
        if tn > 1:
            scale = paired_ratio(rec["times"], "sparsecore 1t", f"sparsecore {tn}t")
            line += f"   {tn}t/1t {fmt_ratio(scale):>6}"
            if b >= 64:
                line += " (goal >= 1.7x)"
        print(line)
    for rec in projection:
        if rec["n"] == 4096 and rec["matrix"] == "gaussian" and 1 in rec["power_s"]:
            print(f"    projection n=4096 power: {rec['power_s'][1]:.3f} s (goal <= 0.5 s), error "
                  f"{rec['err_power'] / rec['err_svd']:.5f} x SVD optimum (goal <= 1.01)")
        if rec["matrix"] == "monarch":
            goal = 1e-6 if rec["dtype"] == "float32" else 1e-13
            print(f"    true Monarch n={rec['n']} {rec['dtype']}: error svd {rec['err_svd']:.2g}, "
                  f"power {rec['err_power']:.2g} (goal <= {goal:g})")
