"""torch suite: sparsecore.torch layers against dense ``F.linear`` and torch's
own sparse layouts (CSR, BSR), with ``torch.set_num_threads`` equal to the
layers' thread count.

Cases (CPU, float32): a 4096 x 4096 layer at batch 256, inference, block-sparse
(16 x 16, density 0.1), N:M 1:4 and 2:4, Monarch (64 blocks); a BERT-base
feed-forward block (768 -> 3072 -> 768, GELU, 128 tokens) at 90 % block
sparsity, forward and a training step (forward + backward); the MLP blocks of
the prune suite (BERT-base FFN, LLaMA-like SwiGLU, random weights) pruned to
2:4 by :func:`sparsecore.torch.prune` (activations fused) at 1 and 512
tokens, and the SwiGLU block pruned to 50 % unstructured (row-bitmask
layers) at 1 and 8 tokens, inference. Registers the family ``torch``.
"""
import statistics

from sparsecore._bench import _harness as h
from sparsecore._bench._registry import Family, register

Case, Peer = h.Case, h.Peer

__all__ = ["case_names", "make_case", "run"]

LAYER_CASES = ("block16_d0.1", "nm1:4", "nm2:4", "monarch64")
FFN_CASES = ("ffn_forward", "ffn_train")
PRUNED_CASES = ("pruned_ffn_t1", "pruned_ffn_t512", "pruned_swiglu_t1", "pruned_swiglu_t4",
                "pruned_swiglu_t512",
                "unstructured_swiglu_t1", "unstructured_swiglu_t8")
# the speedup over torch dense each case is expected to reach
TARGETS = {"block16_d0.1": 3.0, "nm1:4": 1.5, "nm2:4": 1.2, "monarch64": 5.0,
           "ffn_forward": 2.0, "ffn_train": 1.5, "pruned_swiglu_t1": 1.4,
           "pruned_swiglu_t512": 1.2}


def case_names():
    return list(LAYER_CASES) + list(FFN_CASES) + list(PRUNED_CASES)


def _pruned_case(name):
    """A prune-suite MLP block and its pruned twin ("pruned_*": 2:4;
    "unstructured_*": 50 % unstructured) at the case's token count."""
    import torch

    from sparsecore._bench.prune import mlp_blocks
    from sparsecore.torch import prune

    kind, tokens = name.split("_")[1], int(name.rsplit("_t", 1)[1])
    label = next(b for b in mlp_blocks() if b.lower().startswith(
        {"ffn": "bert", "swiglu": "llama"}[kind]))
    dense, d = mlp_blocks()[label]
    pattern, sparsity = ("2:4", None) if name.startswith("pruned") else ("unstructured", 0.5)
    layer = prune(dense, [torch.randn(16, d)], pattern, "magnitude", sparsity=sparsity,
                  verbose=0)
    return Case(name, {"layer": layer, "dense": dense, "x": torch.randn(tokens, d)},
                {"size": label, "batch": tokens})


def make_case(name, size=4096, batch=256):
    """A layer case (``size`` x ``size`` at ``batch``) or a BERT-base FFN
    case (128 tokens, 90 % block sparsity); inputs: the sparse module, its
    dense twin and x."""
    import torch
    from torch import nn

    from sparsecore.torch import BlockSparseLinear, MonarchLinear, NMSparseLinear, sparsify

    torch.manual_seed(0)
    if name in PRUNED_CASES:
        return _pruned_case(name)
    if name in FFN_CASES:
        dense = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))
        layer = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))
        layer.load_state_dict(dense.state_dict())
        sparsify(layer, "block", block_shape=(16, 16), density=0.1)
        size, batch = "768-3072-768", 128
        x = torch.randn(batch, 768)
    else:
        if name.startswith("block"):
            layer = BlockSparseLinear(size, size, (16, 16), 0.1)
        elif name.startswith("nm"):
            n, m = (int(v) for v in name[2:].split(":"))
            layer = NMSparseLinear(size, size, n, m)
        elif name.startswith("monarch"):
            layer = MonarchLinear(size, size, int(name[len("monarch"):]))
        else:
            raise KeyError(name)
        dense = layer.to_dense()
        x = torch.randn(batch, size)
    return Case(name, {"layer": layer, "dense": dense, "x": x}, {"size": size, "batch": batch})


def _peers(case, t):
    import torch

    layer, dense = case.inputs["layer"], case.inputs["dense"]
    train = case.name == "ffn_train"

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
    peers = [Peer("torch dense", t, run_of(dense))]
    if case.name in PRUNED_CASES:
        return peers + [Peer("sparsecore", t, infer(layer))]
    if not train and not case.name.startswith("monarch"):
        peers += _torch_sparse_peers(torch, case, t)
    if case.name.startswith("monarch"):
        from sparsecore.torch import monarch_reference

        def bmm(d):
            with torch.no_grad():
                return monarch_reference(d["x"], layer.left, layer.right, layer.bias)
        peers.append(Peer("torch bmm", t, bmm))
    peers.append(Peer("sparsecore", t, run_of(layer)))
    if not case.name.startswith("monarch"):
        # the compact inference form (values + indices only) of the same layer
        from sparsecore.torch import compact

        peers.append(Peer("sparsecore compact", t, run_of(compact(layer))))
    return peers


def _torch_sparse_peers(torch, case, t):
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

    peers.append(Peer("torch csr", t, apply(csr)))
    if bsr is not None:
        peers.append(Peer("torch bsr", t, apply(bsr)))
    return peers


FAMILY = register(Family("torch", case_names(), make_case, _peers,
                         ["torch dense", "torch csr", "torch bsr", "torch bmm", "sparsecore"]))


def run(args):
    try:
        import torch
    except ImportError:
        print("\n## torch: skipped (PyTorch is not installed: pip install torch==2.13.0)")
        return []
    threads = h.thread_counts(args.threads)
    rounds = 3 if args.quick else args.rounds
    size, batch = (1024, 64) if args.quick else (4096, 256)
    names = case_names()
    if args.cases:
        names = [n for n in names if n in args.cases]
    print(f"\n## torch: sparsecore.torch layers vs dense F.linear, float32; layers "
          f"{size}x{size} at batch {batch}, BERT-base FFN 768->3072->768 at 128 tokens with "
          f"90 % block sparsity (16x16); prune-suite MLP blocks at 2:4 (pruned_*)")
    print(f"# ratios: time(torch dense)/time(peer), torch.set_num_threads = the layers' "
          f"thread count; medians of {rounds} rounds, peers alternated\n")
    rows, results = [], []
    saved = torch.get_num_threads()
    try:
        for name in names:
            case = make_case(name, size, batch)
            peers = [p for t in threads for p in _peers(case, t)]
            times = h.time_peers(case, peers, rounds=rounds,
                               settle=0.2 if max(threads) > 1 else 0.0)
            others = [p.name for p in peers if p.threads == threads[0]
                      and p.name not in ("torch dense",)]
            rec = {"case": name, **case.info, "times": times}
            for t in threads:
                base = f"torch dense {t}t"
                row = [name, t, h.fmt_ms(statistics.median(times[base]))]
                ratios = {o: h.paired_ratio(times, base, f"{o} {t}t") for o in others}
                rec[f"ratios_{t}t"] = ratios
                row.append(", ".join(f"{o} {h.fmt_ratio(r)}" for o, r in ratios.items()))
                row.append(f">= {TARGETS[name]:g}x" if name in TARGETS else "-")
                rows.append(row)
            results.append(rec)
    finally:
        torch.set_num_threads(saved)
    print(h.format_table(["case", "threads", "dense ms", "speedup vs dense", "target (sparsecore)"],
                       rows))
    if args.json:
        h.write_json(args.json, {"suite": "torch", "threads": threads, "results": results})
    return results
