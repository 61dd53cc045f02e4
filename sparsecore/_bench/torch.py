"""torch suite: sparsecore.torch layers against dense ``F.linear`` and torch's
own sparse layouts (CSR, BSR), with ``torch.set_num_threads`` equal to the
layers' thread count.

Goals of issue 7 (CPU, float32): a 4096 x 4096 layer at batch 256, inference:
block-sparse (16 x 16, density 0.1) >= 3x dense, N:M 1:4 >= 1.5x, 2:4 >= 1.2x,
Monarch (64 blocks) >= 5x; a BERT-base feed-forward block (768 -> 3072 -> 768,
GELU, 128 tokens) at 90 % block sparsity >= 2x dense forward and >= 1.5x for a
training step (forward + backward).
"""
import statistics

from sparsecore._bench._harness import (
    Case,
    Peer,
    fmt_ms,
    fmt_ratio,
    format_table,
    paired_ratio,
    thread_counts,
    time_peers,
    write_json,
)

__all__ = ["case_names", "run"]

LAYER_CASES = ("block16_d0.1", "nm1:4", "nm2:4", "monarch64")
FFN_CASES = ("ffn_forward", "ffn_train")
GOALS = {"block16_d0.1": 3.0, "nm1:4": 1.5, "nm2:4": 1.2, "monarch64": 5.0,
         "ffn_forward": 2.0, "ffn_train": 1.5}


def case_names():
    return list(LAYER_CASES) + list(FFN_CASES)


def _layer_case(torch, name, size, batch):
    from sparsecore.torch import BlockSparseLinear, MonarchLinear, NMSparseLinear

    torch.manual_seed(0)
    if name.startswith("block"):
        layer = BlockSparseLinear(size, size, (16, 16), 0.1)
    elif name.startswith("nm"):
        n, m = (int(v) for v in name[2:].split(":"))
        layer = NMSparseLinear(size, size, n, m)
    else:
        layer = MonarchLinear(size, size, int(name[len("monarch"):]))
    dense = layer.to_dense()
    x = torch.randn(batch, size)
    return Case(name, {"layer": layer, "dense": dense, "x": x},
                {"size": size, "batch": batch})


def _ffn_case(torch, name, tokens, density):
    from torch import nn

    from sparsecore.torch import sparsify

    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))
    sparse = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))
    sparse.load_state_dict(dense.state_dict())
    sparsify(sparse, "block", block_shape=(16, 16), density=density)
    x = torch.randn(tokens, 768)
    return Case(name, {"layer": sparse, "dense": dense, "x": x},
                {"size": "768-3072-768", "batch": tokens})


def _peers(torch, threads, case):
    layer, dense = case.inputs["layer"], case.inputs["dense"]
    train = case.name == "ffn_train"
    peers = []

    def infer(module):
        def run(d):
            with torch.no_grad():
                return module(d["x"])
        return run

    def step(module):
        def run(d):
            module.zero_grad(set_to_none=True)
            x = d["x"].detach().requires_grad_()
            module(x).sum().backward()
            return x.grad
        return run

    run_of = step if train else infer
    # the compact inference form (values + indices only) of the same layers
    small = None
    if not case.name.startswith("monarch"):
        from sparsecore.torch import compact

        small = compact(layer)
    for t in threads:
        def with_threads(fn, t=t):
            def run(d):
                torch.set_num_threads(t)
                return fn(d)
            return run

        peers.append(Peer("torch dense", t, with_threads(run_of(dense))))
        if not train and not case.name.startswith("monarch"):
            peers += _torch_sparse_peers(torch, case, t, with_threads)
        if case.name.startswith("monarch"):
            from sparsecore.torch import monarch_reference

            def bmm(d):
                with torch.no_grad():
                    return monarch_reference(d["x"], layer.left, layer.right, layer.bias)
            peers.append(Peer("torch bmm", t, with_threads(bmm)))
        peers.append(Peer("sparsecore", t, with_threads(run_of(layer))))
        if small is not None:
            peers.append(Peer("sparsecore compact", t, with_threads(run_of(small))))
    return peers


def _torch_sparse_peers(torch, case, t, with_threads):
    """y = x @ W.T with W as a torch CSR (and BSR for square blocks) tensor."""
    layer = case.inputs["layer"]
    mods = [layer] if not isinstance(layer, torch.nn.Sequential) else [
        m for m in layer if hasattr(m, "masked_weight")]
    peers = []
    with torch.no_grad():
        csr = [m.masked_weight().detach().to_sparse_csr() for m in mods]
        bsr = None
        if case.name.startswith(("block", "ffn")):
            bsr = [m.masked_weight().detach().to_sparse_bsr((16, 16)) for m in mods]
    gelu = torch.nn.functional.gelu

    def apply(ws):
        def run(d):
            with torch.no_grad():
                h = d["x"]
                for i, (w, m) in enumerate(zip(ws, mods)):
                    if i:
                        h = gelu(h)
                    h = (w @ h.T).T + m.bias
                return h
        return run

    peers.append(Peer("torch csr", t, with_threads(apply(csr))))
    if bsr is not None:
        peers.append(Peer("torch bsr", t, with_threads(apply(bsr))))
    return peers


def run(args):
    try:
        import torch
    except ImportError:
        print("\n## torch: skipped (PyTorch is not installed: pip install torch==2.13.0)")
        return []
    threads = thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    size, batch = (1024, 64) if args.quick else (4096, 256)
    names = case_names()
    if args.cases:
        names = [n for n in names if n in args.cases]
    print(f"\n## torch: sparsecore.torch layers vs dense F.linear, float32; layers "
          f"{size}x{size} at batch {batch}, BERT-base FFN 768->3072->768 at 128 tokens with "
          f"90 % block sparsity (16x16)")
    print(f"# ratios: time(torch dense)/time(peer), torch.set_num_threads = the layers' "
          f"thread count; medians of {rounds} rounds, peers alternated\n")
    rows, results = [], []
    saved = torch.get_num_threads()
    try:
        for name in names:
            if name in FFN_CASES:
                case = _ffn_case(torch, name, 128, 0.1)
            else:
                case = _layer_case(torch, name, size, batch)
            peers = _peers(torch, threads, case)
            times = time_peers(case, peers, rounds=rounds,
                               settle=0.2 if max(threads) > 1 else 0.0)
            others = [p.name for p in peers if p.threads == threads[0]
                      and p.name not in ("torch dense",)]
            rec = {"case": name, **case.info, "times": times}
            for t in threads:
                base = f"torch dense {t}t"
                row = [name, t, fmt_ms(statistics.median(times[base]))]
                ratios = {o: paired_ratio(times, base, f"{o} {t}t") for o in others}
                rec[f"ratios_{t}t"] = ratios
                row.append(", ".join(f"{o} {fmt_ratio(r)}" for o, r in ratios.items()))
                row.append(f">= {GOALS[name]:g}x")
                rows.append(row)
            results.append(rec)
    finally:
        torch.set_num_threads(saved)
    print(format_table(["case", "threads", "dense ms", "speedup vs dense", "goal (sparsecore)"],
                       rows))
    if args.json:
        write_json(args.json, {"suite": "torch", "threads": threads, "results": results})
    return results
