"""SBL suite: Kronecker-structured SBL (never forming the dictionary) against
classic EM-SBL and scikit-learn's ARDRegression and OMP on the formed
dictionary, on the problems of He & Joseph (IEEE TSP 2024, arXiv 2307.14719).

``python -m sparsecore bench sbl`` prints times, speed ratios and NMSE.
``python -m sparsecore._bench.sbl --trials 200 --out DIR`` writes the NMSE
versus SNR curves of the paper's 3-mode and IRS experiments as CSV (the
data of the user guide's figure).
"""
import argparse
import csv
import json
import math
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

from sparsecore import datasets
from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, optional, register

Case, Peer, format_table = h.Case, h.Peer, h.format_table

__all__ = ["run", "CASES", "make_case", "nmse_db", "sweep_irs", "sweep_paper3",
           "trial_errors", "main"]

# the paper's published IRS-MIMO channel NMSE (dB), mean of 50 trials, from
# the authors' results archive (PC-KroSBL/Results in YanbinHe/JournalKroSBL)
PAPER_IRS = {
    "snr": [4, 8, 12, 16, 20],
    "svd": [-2.2, -5.2, -7.1, -9.1, -9.8],
    "am": [-1.5, -4.9, -7.1, -8.6, -11.6],
    "pc0.8": [-5.1, -8.8, -13.1, -20.5, -25.3],
    "pc0.5": [-4.9, -8.5, -12.2, -19.5, -22.2],
    "csbl": [-0.2, -1.4, -3.3, -6.4, -8.4],
}

_R = 18
_C8 = np.eye(_R) + 0.8 * (np.eye(_R, k=1) + np.eye(_R, k=-1))
_C5 = np.eye(_R) + 0.5 * (np.eye(_R, k=1) + np.eye(_R, k=-1))

# the authors' settings (their MATLAB code): a prior start at 1 (absolute),
# per-mode pruning thresholds, at most 150 iterations, 9 inner AM sweeps
# at 1e-4 for the pattern-coupled prior
PAPER_SETTINGS_IRS = {
    "svd": dict(method="svd", prune=0.0, max_iter=150, init=[np.ones(_R)] * 3),
    "am": dict(method="am", prune=(1e-2, 1e-1, 1e-3), max_iter=150, init=[np.ones(_R)] * 3),
    "pc0.8": dict(method="am", block="pattern_coupled", beta=(0.8, 0.0, 0.8),
                  prune=(1e-2, 1e-1, 1e-2), max_iter=150, max_inner_iter=9, inner_tol=1e-4,
                  init=[_C8 @ np.ones(_R), np.ones(_R), _C8 @ np.ones(_R)]),
    "pc0.5": dict(method="am", block="pattern_coupled", beta=(0.5, 0.0, 0.5),
                  prune=(1e-2, 1e-1, 1e-2), max_iter=150, max_inner_iter=9, inner_tol=1e-4,
                  init=[_C5 @ np.ones(_R), np.ones(_R), _C5 @ np.ones(_R)]),
}
DEFAULT_SETTINGS_IRS = {
    "svd (default)": dict(method="svd"),
    "pc0.8 (default)": dict(method="am", block="pattern_coupled", beta=(0.8, 0.0, 0.8)),
}
PAPER3_SHAPES = [(8, 15), (12, 15), (15, 15)]
PAPER_SETTINGS_3 = {
    "svd": dict(method="svd", prune=1e-3, max_iter=150, init=[np.ones(15)] * 3),
    "am": dict(method="am", prune=1e-2, max_iter=150, init=[np.ones(15)] * 3),
}
DEFAULT_SETTINGS_3 = {
    "svd (default)": dict(method="svd"),
    "am (default)": dict(method="am"),
}


def nmse_db(values):
    """10 log10 of the mean NMSE (the paper's average), and of the median."""
    v = np.asarray(values, dtype=float)
    return 10 * math.log10(v.mean()), 10 * math.log10(np.median(v))


# ---------------------------------------------------------------------------
# timing cases: the family ``sbl``

def _problem(name, seed=0):
    if name == "kron2_32x64":
        return datasets.make_kronecker_sparse([(32, 64), (32, 64)], 4, snr_db=20, seed=seed)
    if name == "paper3_15^3":
        return datasets.make_kronecker_sparse(PAPER3_SHAPES, 3, snr_db=25, seed=seed)
    if name == "irs_18^3":
        return datasets.make_irs_channel(snr_db=12, seed=seed)
    if name == "kron3_64^3":
        return datasets.make_kronecker_sparse([(32, 64)] * 3, 4, snr_db=20, seed=seed)
    raise KeyError(name)


CASES = {
    # name: (description, dense peers run on the formed dictionary)
    "kron2_32x64": ("2 modes, 1024 x 4096, 4x4 support, 20 dB", True),
    "paper3_15^3": ("paper's 3-mode: 1440 x 3375, 3x3x3 support, 25 dB", True),
    "irs_18^3": ("paper's IRS-MIMO channel, complex 288 x 5832, 12 dB", True),
    "kron3_64^3": ("3 modes, 32768 x 262144 (the formed dictionary would be 64 GiB), "
                   "4x4x4 support, 20 dB", False),
}
#: peers timed once each (seconds to minutes a fit), at 1 BLAS thread
SLOW = ("EM-SBL", "ARDRegression")


def _error(prob, coef):
    if hasattr(prob, "channel_nmse"):
        return prob.channel_nmse(coef)
    return prob.nmse(coef)


class _WithDense:
    """A problem plus its formed dictionary (built outside the timings)."""

    def __init__(self, prob):
        from sparsecore.formats import KroneckerOperator

        self.__dict__.update(prob.__dict__)
        self._prob = prob
        self.dense = KroneckerOperator(prob.factors).toarray()

    def __getattr__(self, name):
        return getattr(self._prob, name)


def make_case(name, seed=0):
    """The problem ``name`` (with its formed dictionary where the dense
    peers run on it)."""
    prob = _problem(name, seed)
    return Case(name, _WithDense(prob) if CASES[name][1] else prob,
                {"description": CASES[name][0]})


def _quiet(fit):
    def run(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit(p)
    return run


def _peers(case, threads):
    """Fits returning the coefficients: sparsecore's Kronecker SBL on the
    factors, and the classic solvers on the formed dictionary (EM-SBL and
    ARDRegression at 1 thread only)."""
    from sparsecore.linear_model import kronecker_sbl, sbl

    name = case.name

    def ours(**kw):
        return _quiet(lambda p: kronecker_sbl(p.factors, p.y, noise_var=p.noise_var,
                                              n_threads=threads, **kw).coef)

    peers = [Peer("KroSBL-svd", threads, ours(method="svd"))]
    if name == "irs_18^3":
        peers.append(Peer("PC-KroSBL", threads, ours(
            method="am", block="pattern_coupled", beta=(0.8, 0.0, 0.8))))
    elif name != "kron3_64^3":
        peers.append(Peer("KroSBL-am", threads, ours(method="am")))
    if not CASES[name][1]:
        return peers
    if threads == 1:
        peers.append(Peer("EM-SBL", 1, _quiet(lambda p: sbl(p.dense, p.y,
                                                             noise_var=p.noise_var).coef)))
    if name == "kron2_32x64" and optional("sklearn") is not None:
        from sklearn.linear_model import ARDRegression, OrthogonalMatchingPursuit

        def omp(p):
            k = math.prod(len(s) for s in p.support)
            return OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(
                p.dense, p.y).coef_
        peers.append(Peer("OMP", threads, omp))
        if threads == 1:
            peers.append(Peer("ARDRegression", 1, _quiet(lambda p: ARDRegression(
                fit_intercept=False, threshold_lambda=1e4, tol=1e-3).fit(p.dense, p.y).coef_)))
    return peers


FAMILY = register(Family("sbl", list(CASES), make_case, _peers,
                         ["KroSBL-svd", "KroSBL-am", "PC-KroSBL", "OMP", "EM-SBL",
                          "ARDRegression"]))


def trial_errors(name, peer, threads=1, trials=10):
    """NMSE of ``peer`` on ``trials`` fresh draws of problem ``name`` (seeds
    1000, 1001, ...), the paper's average being 10 log10 of their mean."""
    errs = []
    for s in range(trials):
        case = make_case(name, seed=1000 + s)
        fit = next(p for p in _peers(case, threads) if p.name == peer)
        errs.append(_error(case.inputs, fit.run(case.inputs)))
    return errs


def _slow_runs(case, with_ard):
    """Classic EM-SBL (and ARDRegression) on the formed dictionary, at 1
    BLAS thread, timed once each."""
    out = {}
    with h.thread_limit(1):
        for peer in _peers(case, 1):
            if peer.name in SLOW and (with_ard or peer.name != "ARDRegression"):
                t0 = time.perf_counter()
                coef = peer.run(case.inputs)
                out[peer.name] = (time.perf_counter() - t0, _error(case.inputs, coef))
    return out


def _memory_probe(name, method):
    """Peak memory of one fit in this (fresh) process: prints JSON."""
    from sparsecore.linear_model import kronecker_sbl

    prob = _problem(name)
    base = h.status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, method=method)
    peak = h.status_kb("VmHWM")
    print(json.dumps({"peak_mib": peak / 1024, "extra_mib": (peak - base) / 1024}))


def _measure_memory(name, method="svd"):
    try:
        return h.run_probe("from sparsecore._bench.sbl import _memory_probe; "
                           f"_memory_probe({name!r}, {method!r})", timeout=600)
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return None


def run(args):
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    trials = 3 if args.quick else 10
    names = [n for n in CASES if not args.cases or n in args.cases]
    print("\n## sbl: Kronecker SBL (structured, never forms A) vs classic EM-SBL, "
          "ARDRegression and OMP on the formed A")
    print(f"# ours and OMP: medians of {rounds} rotated rounds; EM-SBL and ARD: one run each at "
          f"1 BLAS thread; NMSE: 10 log10 of the mean over {trials} trials (median in brackets)\n")
    rows, results = [], []
    for name in names:
        desc, dense = CASES[name]
        case = make_case(name)
        rec = {"case": name, "description": desc, "times": {}, "nmse_db": {}}
        base_t = None
        slow = {}
        if dense:
            slow = _slow_runs(case, with_ard=(name == "kron2_32x64" and not args.quick))
            base_t = slow["EM-SBL"][0]
        for t in threads:
            peers = [p for p in _peers(case, t) if p.name not in SLOW]
            times = h.time_peers(case, peers, rounds=rounds)
            for p in peers:
                rec["times"][p.label] = times[p.label]
        # accuracy over several problems (one thread count)
        errs = {p.name: trial_errors(name, p.name, max(threads), trials)
                for p in _peers(case, max(threads)) if p.name not in SLOW}
        for label, ts in rec["times"].items():
            med = statistics.median(ts)
            pname = label.rsplit(" ", 1)[0]
            mean_db, med_db = nmse_db(errs[pname]) if pname in errs else (float("nan"),) * 2
            ratio = base_t / med if base_t else None
            rows.append([name, label, h.fmt_ms(med), f"{mean_db:.1f} ({med_db:.1f})",
                         h.fmt_ratio(ratio)])
            rec["nmse_db"][pname] = [mean_db, med_db]
        for label, (sec, err) in slow.items():
            rows.append([name, f"{label} 1t", h.fmt_ms(sec), f"{10 * math.log10(err):.1f} (1 trial)",
                         h.fmt_ratio(base_t / sec)])
            rec["times"][label + " 1t"] = [sec]
        if name == "kron3_64^3":
            mem = _measure_memory(name) if not args.quick else None
            if mem:
                rec["memory"] = mem
                rows.append([name, "KroSBL-svd peak memory", "", f"{mem['peak_mib']:.0f} MiB process, "
                             f"{mem['extra_mib']:.0f} MiB for the fit", ""])
        results.append(rec)
    print(format_table(["case", "method", "ms", "NMSE dB mean (median)", "vs EM-SBL"], rows))
    _summary(results)
    if args.json:
        h.write_json(args.json, {"suite": "sbl", "threads": threads, "results": results})


def _summary(results):
    print()
    for rec in results:
        if rec["case"] != "kron2_32x64":
            continue
        t = rec["times"]
        ours = statistics.median(t["KroSBL-svd 1t"]) if "KroSBL-svd 1t" in t else None
        if ours is None:
            continue
        for peer in ("EM-SBL 1t", "ARDRegression 1t"):
            if peer in t:
                print(f"  KroSBL-svd 1t vs {peer:<20} {t[peer][0] / ours:8.0f}x faster")
        nm = rec["nmse_db"]
        if "KroSBL-svd" in nm and "OMP" in nm:
            print(f"  NMSE KroSBL-svd {nm['KroSBL-svd'][0]:.1f} dB vs oracle OMP "
                  f"{nm['OMP'][0]:.1f} dB (means over the trials)")


# ---------------------------------------------------------------------------
# NMSE versus SNR sweeps (docs data)
# ---------------------------------------------------------------------------

def sweep_paper3(trials, snrs=(5, 10, 15, 20, 25, 30), settings=None, oracle=True, seed=0):
    """The paper's Fig. 3(a) setting: N = 15^3, M = 8 x 12 x 15, K = 3 per
    mode. Returns {method: [mean dB per SNR]}, {method: [median dB]}."""
    from sparsecore.linear_model import kronecker_sbl

    settings = settings or {**PAPER_SETTINGS_3, **DEFAULT_SETTINGS_3}
    errs = {m: {s: [] for s in snrs} for m in settings}
    if oracle:
        errs["oracle LS"] = {s: [] for s in snrs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(trials):
            for snr in snrs:
                prob = datasets.make_kronecker_sparse(PAPER3_SHAPES, 3, snr_db=snr, seed=seed + t)
                for m, kw in settings.items():
                    res = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, **kw)
                    errs[m][snr].append(prob.nmse(res.coef))
                if oracle:
                    errs["oracle LS"][snr].append(prob.nmse(_oracle_ls(prob)))
    return _summarise(errs, snrs)


def _oracle_ls(prob):
    from sparsecore.formats import KroneckerOperator

    sub = KroneckerOperator([A[:, s] for A, s in zip(prob.factors, prob.support)])
    coef_s = np.linalg.lstsq(sub.toarray(), prob.y, rcond=None)[0]
    out = np.zeros(prob.coef.shape, dtype=coef_s.dtype)
    idx = np.ix_(*prob.support)
    full = out.reshape([A.shape[1] for A in prob.factors])
    full[idx] = coef_s.reshape([len(s) for s in prob.support])
    return out


def sweep_irs(trials, snrs=(4, 8, 12, 16, 20), settings=None, seed=10_000, classic=0,
              training_seeds=(0,)):
    """The paper's IRS-MIMO experiment: channel NMSE versus SNR. For each of
    ``training_seeds`` the pilots and IRS patterns are drawn once and
    ``trials`` channels are drawn, as the authors' main.m does. ``classic``
    trials of dense classic SBL are added when positive (seconds per run).
    Returns the raw NMSE: {training seed: {method: {snr: [values]}}}."""
    from sparsecore.formats import KroneckerOperator
    from sparsecore.linear_model import kronecker_sbl, sbl

    settings = settings or {**PAPER_SETTINGS_IRS, **DEFAULT_SETTINGS_IRS}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ts in training_seeds:
            pilots, patterns = datasets.irs_training(seed=ts)
            errs = {m: {s: [] for s in snrs} for m in settings}
            if classic:
                errs["csbl"] = {s: [] for s in snrs}
            for t in range(trials):
                for snr in snrs:
                    prob = datasets.make_irs_channel(snr_db=snr, seed=seed + 1000 * ts + t,
                                                     pilots=pilots, patterns=patterns)
                    for m, kw in settings.items():
                        res = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, **kw)
                        errs[m][snr].append(prob.channel_nmse(res.coef))
                    if t < classic:
                        A = KroneckerOperator(prob.factors).toarray()
                        res = sbl(A, prob.y, noise_var=prob.noise_var, prune=1e-4, max_iter=150)
                        errs["csbl"][snr].append(prob.channel_nmse(res.coef))
            out[ts] = errs
    return out


def _summarise(errs, snrs):
    means = {m: [nmse_db(v[s])[0] for s in snrs] for m, v in errs.items()}
    medians = {m: [nmse_db(v[s])[1] for s in snrs] for m, v in errs.items()}
    return means, medians


def _write_csv(path, snrs, means, medians, paper=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        header = ["snr_db"]
        for m in means:
            header += [f"{m} mean", f"{m} median"]
        if paper:
            header += [f"paper {m}" for m in paper if m != "snr"]
        w.writerow(header)
        for i, s in enumerate(snrs):
            row = [s]
            for m in means:
                row += [f"{means[m][i]:.2f}", f"{medians[m][i]:.2f}"]
            if paper:
                row += [paper[m][i] for m in paper if m != "snr"]
            w.writerow(row)


def main(argv=None):
    """Write the NMSE-versus-SNR curves as CSV (``--out``) and print them."""
    parser = argparse.ArgumentParser(prog="python -m sparsecore._bench.sbl")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--irs-trials", type=int, default=None)
    parser.add_argument("--classic-trials", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for the CSV files")
    parser.add_argument("--only", choices=["paper3", "irs"], default=None)
    parser.add_argument("--training-draws", type=int, default=1,
                        help="IRS pilot/pattern draws (seeds 0, 1, ...), each fixed over its trials")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "paper3"):
        snrs = (5, 10, 15, 20, 25, 30)
        t0 = time.perf_counter()
        means, medians = sweep_paper3(args.trials, snrs)
        print(f"# paper's 3-mode setting, {args.trials} trials ({time.perf_counter() - t0:.0f} s): "
              "NMSE dB, mean (median)")
        print(format_table(["method"] + [f"{s} dB" for s in snrs],
                           [[m] + [f"{a:.1f} ({b:.1f})" for a, b in zip(means[m], medians[m])]
                            for m in means]))
        if out:
            _write_csv(out / "krosbl_paper3_nmse_vs_snr.csv", snrs, means, medians)
    if args.only in (None, "irs"):
        snrs = tuple(PAPER_IRS["snr"])
        trials = args.irs_trials or args.trials
        seeds = tuple(range(args.training_draws))
        t0 = time.perf_counter()
        raw = sweep_irs(trials, snrs, classic=args.classic_trials, training_seeds=seeds)
        pooled = {m: {s: sum((raw[ts][m][s] for ts in seeds), []) for s in snrs}
                  for m in raw[seeds[0]]}
        means, medians = _summarise(pooled, snrs)
        print(f"\n# IRS-MIMO channel estimation, {len(seeds)} pilot/pattern draws x {trials} "
              f"channels ({time.perf_counter() - t0:.0f} s): channel NMSE dB, mean (median); "
              "paper = the authors' published means (one draw x 50 channels)")
        rows = [[m] + [f"{a:.1f} ({b:.1f})" for a, b in zip(means[m], medians[m])] for m in means]
        rows += [[f"paper {m}"] + [f"{v:.1f}" for v in PAPER_IRS[m]] for m in PAPER_IRS if m != "snr"]
        print(format_table(["method"] + [f"{s} dB" for s in snrs], rows))
        if len(seeds) > 1:
            print("\n# mean NMSE dB of each pilot/pattern draw (min .. max over the draws)")
            spread = []
            for m in pooled:
                per = [_summarise(raw[ts], snrs)[0][m] for ts in seeds]
                spread.append([m] + [f"{min(p[i] for p in per):.1f} .. {max(p[i] for p in per):.1f}"
                                     for i in range(len(snrs))])
            print(format_table(["method"] + [f"{s} dB" for s in snrs], spread))
        if out:
            _write_csv(out / "krosbl_irs_nmse_vs_snr.csv", snrs, means, medians, PAPER_IRS)


if __name__ == "__main__":
    main()
