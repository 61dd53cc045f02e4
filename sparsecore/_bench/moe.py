"""MoE suite: sparse dispatch (each expert runs only on its samples) against
evaluating every expert on the whole batch, 64 experts, k = 2.

Peers: ``dense loop`` (MixtureOfExperts(combine="dense"): every expert
module on the whole batch), ``dense bmm`` (the same experts stacked into
batched matmuls: the fastest dense evaluation), ``sparsecore`` (sparse
dispatch), and the routing options on the same sparse path:
``sparsecore aux`` (plus the Switch load-balancing loss, alpha 1e-2),
``sparsecore cf1.25`` (expert capacity factor 1.25, over-capacity pairs
dropped in batch order and counted), ``sparsecore expert choice`` (each
expert takes its top ``k * batch / n_experts`` tokens, Zhou et al. 2022).
Forward passes under ``torch.no_grad``; ratios are time(dense
loop)/time(peer). Registers the family ``moe``.
"""
import numpy as np

from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, register

Case, Peer = h.Case, h.Peer
fmt_ratio, paired_ratio = h.fmt_ratio, h.paired_ratio

__all__ = ["run", "make_case", "CASES"]

# (batch, d_model, d_hidden, n_experts, k)
CASES = {
    "ffn-64e-k2-b4096": (4096, 128, 256, 64, 2),
    "ffn-64e-k2-b1024": (1024, 128, 256, 64, 2),
    "ffn-64e-k4-b4096": (4096, 128, 256, 64, 4),
    "ffn-16e-k2-b4096": (4096, 128, 256, 16, 2),
}
QUICK = ["ffn-64e-k2-b1024"]


def make_case(name, seed=0):
    """Experts (two-layer ReLU FFNs), a Top-k gate and a batch."""
    import torch
    from torch import nn

    from sparsecore.moe import ExpertChoiceGate, MixtureOfExperts, TopKGate

    batch, d, h, n, k = CASES[name]
    torch.manual_seed(seed)
    experts = [nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, d)) for _ in range(n)]
    gate = TopKGate(d, n, k)
    x = torch.randn(batch, d)
    sparse = MixtureOfExperts(experts, gate, combine="sparse").eval()
    dense = MixtureOfExperts(experts, gate, combine="dense").eval()
    aux = MixtureOfExperts(experts, gate, load_balance=1e-2).eval()
    capped = MixtureOfExperts(experts, gate, capacity_factor=1.25).eval()
    ec_gate = ExpertChoiceGate(d, n, capacity_factor=float(k))
    with torch.no_grad():  # the same router weights as the top-k gate
        ec_gate.linear.weight.copy_(gate.linear.weight)
        ec_gate.linear.bias.copy_(gate.linear.bias)
    expert_choice = MixtureOfExperts(experts, ec_gate).eval()
    W1 = torch.stack([e[0].weight.T for e in experts])  # (n, d, h)
    b1 = torch.stack([e[0].bias for e in experts])[:, None]
    W2 = torch.stack([e[2].weight.T for e in experts])
    b2 = torch.stack([e[2].bias for e in experts])[:, None]

    def dense_bmm(x):
        w = gate(x).weights  # (b, n)
        hid = torch.relu(torch.matmul(x, W1) + b1)  # (n, b, h)
        out = torch.matmul(hid, W2) + b2  # (n, b, d)
        return torch.einsum("bn,nbd->bd", w, out)

    flops_dense = 2 * batch * n * (d * h + h * d)
    return Case(name, {"x": x, "sparse": sparse, "dense": dense, "bmm": dense_bmm, "aux": aux,
                       "capped": capped, "expert_choice": expert_choice},
                {"batch": batch, "experts": n, "k": k, "d": d, "h": h,
                 "flop_ratio": flops_dense / (flops_dense * k / n)})


_RUNS = {
    "dense loop": lambda d: d["dense"](d["x"])[0],
    "dense bmm": lambda d: d["bmm"](d["x"]),
    "sparsecore": lambda d: d["sparse"](d["x"])[0],
    "sparsecore aux": lambda d: d["aux"](d["x"]),
    "sparsecore cf1.25": lambda d: d["capped"](d["x"])[0],
    "sparsecore expert choice": lambda d: d["expert_choice"](d["x"])[0],
}


def _peers(case, t):
    """The evaluations at t torch threads, forward under no_grad."""
    import torch

    def make(run):
        def call(d):
            with torch.no_grad():
                return run(d)
        return call
    return [Peer(name, t, make(run)) for name, run in _RUNS.items()]


FAMILY = register(Family("moe", list(CASES), make_case, _peers, list(_RUNS)))


def run(args):
    try:
        import torch
    except ImportError:
        print('\n## moe: skipped (torch is not installed: pip install "sparsecore[moe]")')
        return
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    names = QUICK if args.quick else list(CASES)
    if args.cases:
        names = [n for n in names if n in args.cases] or [n for n in CASES if n in args.cases]
    peers = [p for t in threads for p in _peers(None, t)]
    print(f"\n## moe: sparse dispatch vs dense evaluation of every expert, forward pass, float32, "
          f"torch {torch.__version__}")
    print(f"# experts: Linear(d,h)-ReLU-Linear(h,d); Top-k gate; medians of {rounds} rounds; "
          f"ratios are time(dense loop 1t)/time(peer), > 1 is faster\n")
    base = peers[0].label
    rows, results = [], []
    for name in names:
        case = make_case(name)
        with torch.no_grad():
            ys = case.inputs["sparse"](case.inputs["x"])[0]
            yd = case.inputs["dense"](case.inputs["x"])[0]
            yb = case.inputs["bmm"](case.inputs["x"])
        err = float(max((ys - yd).abs().max(), (ys - yb).abs().max()))
        times = h.time_peers(case, peers, rounds=rounds)
        with torch.no_grad():
            case.inputs["capped"](case.inputs["x"])
        stats = case.inputs["capped"].last_stats
        results.append({"case": name, **case.info, "max_abs_diff": err, "times": times,
                        "cf1.25_capacity": stats.capacity, "cf1.25_dropped": stats.dropped,
                        "cf1.25_dropped_frac": stats.dropped / max(stats.routed, 1),
                        "cf1.25_dropped_samples": stats.dropped_samples})
        row = [name, f"{case.info['flop_ratio']:.0f}x", f"{err:.1e}", h.fmt_ms(np.median(times[base]))]
        row += [fmt_ratio(paired_ratio(times, base, p.label)) for p in peers[1:]]
        rows.append(row)
    header = ["case", "FLOP ratio", "max|diff|", f"{base} ms"] + [p.label for p in peers[1:]]
    print(h.format_table(header, rows))
    print()
    for r in results:
        print(f"  {r['case']:<20} capacity factor 1.25: capacity {r['cf1.25_capacity']}, "
              f"{r['cf1.25_dropped']} of {r['batch'] * r['k']} routed pairs dropped "
              f"({100 * r['cf1.25_dropped_frac']:.1f} %), "
              f"{r['cf1.25_dropped_samples']} samples lost every expert")
    for t in threads:
        for r in results:
            if r["experts"] == 64 and r["k"] == 2:
                for peer in ("sparsecore", "sparsecore aux", "sparsecore cf1.25",
                             "sparsecore expert choice"):
                    s = paired_ratio(r["times"], f"dense loop {t}t", f"{peer} {t}t")
                    b = paired_ratio(r["times"], f"dense bmm {t}t", f"{peer} {t}t")
                    print(f"  {r['case']:<20} {t}t: {peer:<24} vs dense loop {fmt_ratio(s)}, "
                          f"vs dense bmm {fmt_ratio(b)}")
    if args.json:
        h.write_json(args.json, {"suite": "moe", "threads": threads, "results": results})
