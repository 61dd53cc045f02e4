"""sparsecore.torch.prune: masks against direct formulas (magnitude, Wanda),
SparseGPT against an explicit OBS reference, sequential calibration, padded
tokens, determinism, the input model left alone, errors."""
import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    CompactBitmaskLinear,
    CompactBlockLinear,
    CompactNMLinear,
    prune,
)

# float64 layers: weights within 1e-10 of the reference (relative to the
# largest entry); float32 models: outputs within 1e-5.


def single(in_f=16, out_f=8, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_f, out_f, dtype=dtype))


def calib(in_f=16, n=3, rows=40, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(in_f, in_f, generator=g, dtype=dtype)
    scale = torch.logspace(-1, 1, in_f, dtype=dtype)
    return [(torch.randn(rows, in_f, generator=g, dtype=dtype) @ A) * scale for _ in range(n)]


def nm_keep(score, n, m):
    R, K = score.shape
    keep = torch.zeros(R, K, dtype=torch.bool)
    for i in range(R):
        for g in range(0, K, m):
            order = sorted(range(m), key=lambda j: (-float(score[i, g + j]), j))[:n]
            for j in order:
                keep[i, g + j] = True
    return keep


def test_wanda_nm_matches_the_formula():
    model = single()
    data = calib()
    W = model[0].weight.detach()
    X = torch.cat(data)
    score = W.abs() * X.pow(2).sum(0).sqrt()
    for n, m in [(2, 4), (1, 4), (4, 8)]:
        out = prune(model, data, f"{n}:{m}", "wanda", verbose=0)[0]
        assert isinstance(out, CompactNMLinear)
        keep = nm_keep(score, n, m)
        assert torch.equal(out.mask, keep)
        assert torch.equal(out.dense_weight(), W * keep)
        assert torch.equal(out.bias, model[0].bias)


def test_wanda_unstructured_is_per_row_magnitude_per_layer():
    model = single()
    data = calib()
    W = model[0].weight.detach()
    X = torch.cat(data)
    score = W.abs() * X.pow(2).sum(0).sqrt()
    out = prune(model, data, "unstructured", "wanda", sparsity=0.25, verbose=0)[0]
    assert isinstance(out, CompactBitmaskLinear)  # 3/4 kept
    keep = torch.ones_like(W, dtype=torch.bool)
    for i in range(W.shape[0]):
        keep[i, torch.argsort(score[i], stable=True)[:4]] = False
    assert torch.equal(out.mask, keep)
    mag = prune(model, None, "unstructured", "magnitude", sparsity=0.25, verbose=0)[0]
    flat = torch.ones(W.numel(), dtype=torch.bool)
    flat[torch.argsort(W.abs().flatten(), stable=True)[:W.numel() // 4]] = False
    assert torch.equal(mag.mask, flat.reshape(W.shape))
    assert mag.nnz == W.numel() - W.numel() // 4
    # below 40 % kept, CSR (1 x 1 blocks)
    sparse = prune(model, data, "unstructured", "wanda", sparsity=0.75, verbose=0)[0]
    assert isinstance(sparse, CompactBlockLinear) and tuple(sparse.block_shape) == (1, 1)


def test_blocks_keep_the_best_blocks():
    model = single(16, 8)
    data = calib()
    W = model[0].weight.detach()
    X = torch.cat(data)
    score = (W.abs() * X.pow(2).sum(0).sqrt()).reshape(2, 4, 4, 4).sum(dim=(1, 3))
    out = prune(model, data, "4x4", "wanda", sparsity=0.5, verbose=0)[0]
    best = torch.zeros(8, dtype=torch.bool)
    best[torch.argsort(score.flatten(), descending=True, stable=True)[:4]] = True
    assert torch.equal(out.block_mask, best.reshape(2, 4))
    assert out.density == 0.5


def obs_reference(W, H, n, m, percdamp=0.01):
    """SparseGPT's column sweep written with explicit inverses of the
    trailing Hessian blocks (no Cholesky factor, no lazy updates)."""
    W = W.clone()
    H = H.clone()
    K = W.shape[1]
    H += percdamp * torch.diagonal(H).mean() * torch.eye(K, dtype=H.dtype)
    inv = [torch.linalg.inv(H[j:, j:]) for j in range(K)]
    keep = torch.ones_like(W, dtype=torch.bool)
    for i in range(K):
        if i % m == 0:
            sal = torch.stack([W[:, i + j] ** 2 / inv[i + j][0, 0] for j in range(m)], 1)
            keep[:, i:i + m] = nm_keep(sal, n, m)
        w = W[:, i].clone()
        q = torch.where(keep[:, i], w, torch.zeros_like(w))
        row = inv[i][0]
        W[:, i:] -= ((w - q) / row[0])[:, None] * row[None, :]
        W[:, i] = q
    return W, keep


@pytest.mark.parametrize("blocksize", [128, 4, 8])
def test_sparsegpt_matches_explicit_obs(blocksize):
    model = single(16, 6)
    data = calib()
    X = torch.cat(data)
    W = model[0].weight.detach()
    want, keep = obs_reference(W, X.T @ X, 2, 4)
    out = prune(model, data, "2:4", "sparsegpt", blocksize=blocksize, verbose=0)[0]
    assert torch.equal(out.mask, keep)
    got = out.dense_weight().detach()
    assert float((got - want).abs().max()) <= 1e-10 * float(want.abs().max())


def test_sparsegpt_reconstructs_better_than_wanda():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 24))
    data = calib(32, n=4, rows=64, dtype=torch.float32)
    X = torch.cat(data)
    with torch.no_grad():
        ref = model(X)
        errs = {meth: float((prune(model, data, pat, meth, sparsity=sp, verbose=0)(X) - ref).norm())
                for meth in ("magnitude", "wanda", "sparsegpt")
                for pat, sp in [("2:4", None)]}
    assert errs["sparsegpt"] < errs["wanda"] < errs["magnitude"]
    for pat, sp in [("unstructured", 0.5), ("4x4", 0.5)]:
        with torch.no_grad():
            e_w = float((prune(model, data, pat, "wanda", sparsity=sp, verbose=0)(X) - ref).norm())
            e_s = float((prune(model, data, pat, "sparsegpt", sparsity=sp, verbose=0)(X) - ref)
                        .norm())
        assert e_s < e_w


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d, dtype=torch.float64)
        self.fc2 = nn.Linear(2 * d, d, dtype=torch.float64)

    def forward(self, x, scale=1.0):
        return x + scale * self.fc2(torch.relu(self.fc1(x)))


class Net(nn.Module):
    def __init__(self, d=8, blocks=2):
        super().__init__()
        self.layers = nn.ModuleList([Block(d) for _ in range(blocks)])
        self.classifier = nn.Linear(d, 3, dtype=torch.float64)

    def forward(self, x, scale=1.0, attention_mask=None):
        for b in self.layers:
            x = b(x, scale)
        return self.classifier(x)


def test_sequential_groups_see_the_pruned_earlier_ones():
    torch.manual_seed(0)
    net = Net()
    data = calib(8)
    out = prune(net, data, "2:4", "wanda", verbose=0)
    assert type(out.classifier) is nn.Linear          # skipped by default
    # block 1's statistics come from block 0 pruned; fc1 and fc2 of a block
    # from one pass with that block dense
    b0 = out.layers[0]
    X = torch.cat(data)
    with torch.no_grad():
        h = b0(X)
        h1 = torch.relu(net.layers[1].fc1(h))
    W = net.layers[1].fc1.weight.detach()
    assert torch.equal(out.layers[1].fc1.mask, nm_keep(W.abs() * h.pow(2).sum(0).sqrt(), 2, 4))
    W2 = net.layers[1].fc2.weight.detach()
    assert torch.equal(out.layers[1].fc2.mask,
                       nm_keep(W2.abs() * h1.pow(2).sum(0).sqrt(), 2, 4))


def test_padded_tokens_are_left_out():
    torch.manual_seed(0)
    net = Net()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 8, dtype=torch.float64, generator=g)
    am = torch.ones(4, 6, dtype=torch.long)
    am[:, 4:] = 0
    padded = x.clone()
    padded[:, 4:] = 1e6      # would dominate the norms if they were counted
    a = prune(net, [{"x": padded, "attention_mask": am}], "2:4", "sparsegpt", verbose=0)
    b = prune(net, [{"x": x[:, :4].reshape(-1, 8)}], "2:4", "sparsegpt", verbose=0)
    for la, lb in zip(a.modules(), b.modules()):
        if isinstance(la, CompactNMLinear):
            assert torch.equal(la.mask, lb.mask)
            assert torch.allclose(la.values, lb.values, rtol=1e-10, atol=1e-12)


def test_deterministic_copy_and_inplace(capsys):
    torch.manual_seed(0)
    net = Net()
    before = copy.deepcopy(net.state_dict())
    data = calib(8)
    a = prune(net, data, "2:4", "sparsegpt", verbose=0)
    b = prune(net, data, "2:4", "sparsegpt", verbose=1)
    assert "prune" in capsys.readouterr().err
    for k, v in a.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b.state_dict()[k])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    same = prune(net, data, "2:4", "magnitude", inplace=True, verbose=0)
    assert same is net and isinstance(net.layers[0].fc1, CompactNMLinear)


def test_forward_callable_and_include():
    torch.manual_seed(0)
    net = Net()
    data = [calib(8)[0]]
    out = prune(net, data, "2:4", "wanda", include="layers.1.*", forward=lambda m, b: m(b, 0.5),
                verbose=0)
    assert type(out.layers[0].fc1) is nn.Linear and isinstance(out.layers[1].fc1, CompactNMLinear)


def test_pruned_model_compiles():
    torch.manual_seed(0)
    net = Net()
    out = prune(net, calib(8), "2:4", "wanda", verbose=0)
    x = calib(8)[0]
    with torch.no_grad():
        torch._dynamo.reset()
        assert torch.allclose(torch.compile(out, fullgraph=True)(x), out(x), rtol=1e-12)


def test_errors_before_work():
    net = Net()
    data = calib(8)
    with pytest.raises(ValueError, match="method"):
        prune(net, data, method="obs")
    with pytest.raises(ValueError, match="pattern"):
        prune(net, data, "3:2")
    with pytest.raises(ValueError, match="does not combine"):
        prune(net, data, "2:4", sparsity=0.7)
    with pytest.raises(ValueError, match="sparsity"):
        prune(net, data, "unstructured")
    with pytest.raises(ValueError, match="sparsity"):
        prune(net, data, "4x4", sparsity=1.5)
    with pytest.raises(ValueError, match="multiple of M"):
        prune(single(18, 4), calib(18), "2:4")
    with pytest.raises(ValueError, match="blocks"):
        prune(single(16, 6), calib(16), "4x4", sparsity=0.5)
    with pytest.raises(ValueError, match="needs calibration"):
        prune(net, None, "2:4", "wanda")
    with pytest.raises(ValueError, match="empty"):
        prune(net, [], "2:4", "wanda")
    with pytest.raises(TypeError, match="iterable of batches"):
        prune(net, data[0], "2:4", "wanda")
    with pytest.raises(ValueError, match=r"calibration\[0\]"):
        prune(net, [torch.randn(5, 7, dtype=torch.float64)], "2:4", "wanda")
    with pytest.raises(ValueError, match="no nn.Linear"):
        prune(net, data, include="nothing*")
    with pytest.raises(TypeError, match="model"):
        prune("net", data)
    assert type(net.layers[0].fc1) is nn.Linear


@pytest.mark.parametrize("pattern, sparsity", [("2:4", None), ("unstructured", 0.5)])
def test_dsnot_keeps_counts_and_shrinks_expected_error(pattern, sparsity):
    model = single(32, 12)
    data = [d + 0.5 for d in calib(32)]       # a nonzero input mean
    X = torch.cat(data)
    W = model[0].weight.detach()
    wanda = prune(model, data, pattern, "wanda", sparsity=sparsity, verbose=0)[0]
    dsnot = prune(model, data, pattern, "dsnot", sparsity=sparsity, verbose=0)[0]
    assert torch.equal(dsnot.mask.sum(1), wanda.mask.sum(1))      # same count per row
    if pattern == "2:4":
        assert bool((dsnot.mask.reshape(12, 8, 4).sum(-1) == 2).all())
    mean = X.mean(0)
    err_w = ((W * ~wanda.mask) @ mean).abs()
    err_d = ((W * ~dsnot.mask) @ mean).abs()
    assert bool((err_d <= err_w + 1e-12).all()) and float(err_d.sum()) < float(err_w.sum())
    assert torch.equal(dsnot.dense_weight(), W * dsnot.mask)      # no weight update


def test_dsnot_rejects_blocks():
    with pytest.raises(ValueError, match="dsnot"):
        prune(single(), calib(), "4x4", "dsnot", sparsity=0.5)


def masked_by_magnitude_24(W):
    """W (out, in) with the 2 largest |W| of every 4 consecutive inputs kept."""
    return W * nm_keep(W.abs(), 2, 4)


def test_transformers_conv1d_layers_are_pruned_and_sparsified():
    """GPT-2 keeps its linear layers as transformers' Conv1D, weight (in, out)."""
    transformers = pytest.importorskip("transformers")
    from sparsecore.torch import sparsify

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2Model(cfg).eval()
    ids = [{"input_ids": torch.randint(0, 64, (2, 16))} for _ in range(2)]
    before = copy.deepcopy(model.state_dict())
    pruned = prune(model, ids, "2:4", "magnitude", verbose=0)
    convs = [n for n, m in model.named_modules() if type(m).__name__ == "Conv1D"]
    assert len(convs) == 8
    assert all(isinstance(pruned.get_submodule(n), CompactNMLinear) for n in convs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # the same function as GPT-2 with each Conv1D weight pruned by hand
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for n in convs:
            conv = ref.get_submodule(n)
            conv.weight.copy_(masked_by_magnitude_24(conv.weight.T).T)
        out, want = pruned(**ids[0]).last_hidden_state, ref(**ids[0]).last_hidden_state
    assert float((out - want).abs().max()) <= 1e-5 * float(want.abs().max())
    assert pruned.h[0].mlp.c_fc.activation == "gelu_tanh"  # GPT-2's "gelu_new", fused
    # calibration the model cannot run is refused before anything changes, in place too
    with pytest.raises(ValueError, match="cannot run"):
        prune(model, [{"input_ids": torch.full((1, 4), 999)}], "2:4", "wanda", inplace=True,
              verbose=0)
    assert [n for n, m in model.named_modules() if type(m).__name__ == "Conv1D"] == convs
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

    replaced = sparsify(model, "nm", n=2, m=4)
    assert sorted(replaced) == sorted(convs)
    with torch.no_grad():
        trained = model(**ids[0]).last_hidden_state
    assert float((trained - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_models_that_read_linear_weight_dtype_run_pruned():
    """transformers' T5 compares its input's dtype with ``wo.weight.dtype``."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=64, d_model=32, d_ff=64, num_layers=2, num_heads=2,
                                d_kv=16)
    model = transformers.T5EncoderModel(cfg).eval()
    ids = [{"input_ids": torch.randint(0, 64, (2, 12))} for _ in range(2)]
    pruned = prune(model, ids, "2:4", "wanda", verbose=0)
    wo = pruned.encoder.block[0].layer[1].DenseReluDense.wo
    assert isinstance(wo, CompactNMLinear) and wo.weight.dtype == torch.float32
    with torch.no_grad():
        out = pruned(**ids[0]).last_hidden_state
        torch._dynamo.reset()
        compiled = torch.compile(pruned, fullgraph=True)(**ids[0]).last_hidden_state
    assert out.shape == (2, 12, 32) and torch.isfinite(out).all()
    assert float((compiled - out).abs().max()) <= 1e-5 * float(out.abs().max())


def test_pruned_gpt2_checkpoint_loads_into_a_fresh_gpt2(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    from sparsecore.torch import load_compressed_tensors, save_compressed_tensors

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2Model(cfg).eval()
    ids = [{"input_ids": torch.randint(0, 64, (2, 16))} for _ in range(2)]
    for pattern, sparsity in (("2:4", None), ("unstructured", 0.5)):
        pruned = prune(model, ids, pattern, "wanda", sparsity=sparsity, verbose=0)
        d = tmp_path / pattern.replace(":", "_")
        save_compressed_tensors(pruned, d)
        fresh = load_compressed_tensors(d, transformers.GPT2Model(cfg).eval())
        assert type(fresh.h[0].attn.c_proj).__name__.startswith("Compact")
        with torch.no_grad():
            want = pruned(**ids[1]).last_hidden_state
            got = fresh(**ids[1]).last_hidden_state
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_tokenizer_outputs_are_keyword_batches():
    """A tokenizer's BatchEncoding is a Mapping, not a dict: it runs as
    ``model(**batch)`` and its attention mask leaves padding out; given alone
    (not in a list) it is refused as a single batch."""
    transformers = pytest.importorskip("transformers")
    from sparsecore.torch import recover

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2)
    model = transformers.BertModel(cfg).eval()
    ids = torch.randint(3, 64, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    enc = transformers.BatchEncoding({"input_ids": ids, "attention_mask": mask})
    plain = {"input_ids": ids, "attention_mask": mask}
    a = prune(model, [enc], "2:4", "wanda", verbose=0)
    b = prune(model, [plain], "2:4", "wanda", verbose=0)
    for k, v in b.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(a.state_dict()[k], v)
    with pytest.raises(TypeError, match="single batch"):
        prune(model, enc, "2:4", "wanda", verbose=0)
    tuned = recover(a, model, [enc], steps=1, verbose=0)
    assert isinstance(tuned.encoder.layer[0].intermediate.dense, CompactNMLinear)
    with pytest.raises(TypeError, match="single batch"):
        recover(a, model, enc, steps=1, verbose=0)


class _TakesFeatures(nn.Module):
    """A model whose forward takes the whole mapping of inputs, as
    sentence-transformers' models do."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8, dtype=torch.float64)

    def forward(self, features, scale=1.0):
        return self.fc(features["x"]) * scale


class _TakesKeywords(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8, dtype=torch.float64)

    def forward(self, x, scale=1.0):
        return self.fc(x) * scale


def test_mapping_batches_go_whole_to_a_forward_that_wants_them():
    data = [{"x": b} for b in calib(8)]
    for net in (_TakesFeatures(), _TakesKeywords()):
        wrapped = prune(nn.DataParallel(net), data, "2:4", "wanda", verbose=0)
        assert isinstance(wrapped.module.fc, CompactNMLinear)
        pruned = prune(net, data, "2:4", "wanda", verbose=0)
        ref = prune(net, data, "2:4", "wanda", verbose=0,
                    forward=lambda m, b: m(b) if isinstance(m, _TakesFeatures) else m(**b))
        assert torch.equal(pruned.fc.values, ref.fc.values)
