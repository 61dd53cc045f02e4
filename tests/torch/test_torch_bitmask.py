"""The row-bitmask layer (compressed-tensors' sparse-bitmask layout): its
kernels against float64 references, the layer against the dense product of
its weight, training, state, tracing, and the checkpoint package."""
import copy
import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import sparsecore  # noqa: E402
from sparsecore._ext import _spmm  # noqa: E402
from sparsecore.torch import (  # noqa: E402
    BlockSparseLinear,
    CompactBitmaskLinear,
    fuse_activations,
    load_compressed_tensors,
    save_compressed_tensors,
)
from sparsecore.torch._ops import BITMASK_MAX_BATCH  # noqa: E402


def parts(W):
    """Row-bitmask parts of W's nonzeros, by their direct formulas."""
    keep = W != 0
    start = np.concatenate([[0], np.cumsum(keep.sum(1))[:-1]]).astype(np.int64)
    return W[keep], np.packbits(keep, axis=1, bitorder="little"), start


@pytest.fixture(params=["avx512", "avx2"])
def simd(request):
    if request.param == "avx512" and not (_spmm.cpu_has_avx512()
                                          and _spmm.build_has_avx512()):
        pytest.skip("no AVX-512 here")
    before = sparsecore.get_simd()
    sparsecore.set_simd(request.param)
    yield request.param
    sparsecore.set_simd(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,K", [(5, 7), (33, 16), (64, 100), (130, 257), (7, 1)])
def test_kernel_against_float64(simd, dtype, m, K):
    rng = np.random.default_rng(m * K)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for density in (0.0, 0.3, 1.0):
        W = (rng.standard_normal((m, K)) * (rng.random((m, K)) < density)).astype(dtype)
        vals, bits, start = parts(W)
        for B in (1, 2, 3, 8, 9, 17):
            X = rng.standard_normal((K, B)).astype(dtype)
            bias = rng.standard_normal(m).astype(dtype)
            for Xl in (X, np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2]):
                for threads in (1, 2):
                    Y = np.full((m, B), np.nan, dtype)
                    _spmm.spmm_bitmask(vals, bits, start, K, Xl, Y, threads, bias, "relu")
                    ref = np.maximum(W.astype(np.float64) @ X + bias[:, None], 0)
                    scale = np.abs(W).sum(1).max() * np.abs(X).max() + 1
                    assert np.abs(Y - ref).max() <= tol * scale
            W2 = np.full((m, K + 3), np.nan, dtype)
            _spmm.bitmask_expand(vals, bits, start, K, W2, 2)
            assert np.array_equal(W2[:, :K], W)


def test_kernel_column_alone_and_threads():
    """A column's result does not depend on the other columns of its pass
    nor on the thread count."""
    rng = np.random.default_rng(1)
    W = (rng.standard_normal((300, 200)) * (rng.random((300, 200)) < 0.5)).astype(np.float32)
    vals, bits, start = parts(W)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    Y = np.empty((300, 8), np.float32)
    _spmm.spmm_bitmask(vals, bits, start, 200, X, Y, 1)
    Y2 = np.empty_like(Y)
    _spmm.spmm_bitmask(vals, bits, start, 200, X, Y2, 2)
    assert np.array_equal(Y, Y2)
    for b in (0, 5):
        y = np.empty((300, 1), np.float32)
        _spmm.spmm_bitmask(vals, bits, start, 200, np.ascontiguousarray(X[:, b:b + 1]), y, 1)
        assert np.array_equal(y[:, 0], Y[:, b])


def linear(in_f=40, out_f=24, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_matches_its_dense_weight(dtype):
    lin = linear(dtype=dtype)
    layer = CompactBitmaskLinear.from_dense(lin, density=0.5)
    assert layer.values.dtype == dtype and layer.nnz == round(0.5 * 40 * 24)
    W = layer.dense_weight()
    assert torch.equal(W != 0, layer.mask)
    assert torch.equal(W[layer.mask], lin.weight.detach()[layer.mask])
    # the kept weights are the largest in magnitude
    mag = lin.weight.detach().abs()
    assert mag[layer.mask].min() >= mag[~layer.mask].max()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for B in (1, 3, BITMASK_MAX_BATCH, BITMASK_MAX_BATCH + 1, 64):
        x = torch.randn(B, 40, dtype=dtype)
        torch.testing.assert_close(layer(x), nn.functional.linear(x, W, lin.bias), rtol=tol,
                                   atol=tol)
    x = torch.randn(2, 5, 40, dtype=dtype)
    assert layer(x).shape == (2, 5, 24)
    masked = CompactBitmaskLinear._from_parts(layer.values, layer.bitmask, layer.row_offsets,
                                              40, 24, layer.bias, backend="masked")
    torch.testing.assert_close(masked(x), layer(x), rtol=tol, atol=tol)


@pytest.mark.parametrize("bias", [True, False])
def test_wide_batches_expand_in_blocks(monkeypatch, bias):
    """Past the kernel's batch the weight is expanded a block of rows at a
    time (here 5 rows, the last block partial) into torch's GEMM."""
    from sparsecore.torch import _ops

    lin = nn.Linear(40, 24, bias=bias)
    layer = CompactBitmaskLinear.from_dense(lin, density=0.5)
    monkeypatch.setattr(_ops, "_EXPAND_WHOLE_BYTES", 0)
    monkeypatch.setattr(_ops, "_EXPAND_BLOCK_BYTES", 5 * 40 * 4)
    x = torch.randn(BITMASK_MAX_BATCH + 3, 40)
    for act in (None, "relu"):
        layer.activation = act
        with torch.no_grad():
            y = layer(x)
        ref = nn.functional.linear(x, layer.dense_weight(), lin.bias)
        torch.testing.assert_close(y, ref if act is None else ref.relu(), rtol=1e-5, atol=1e-5)
        assert y.is_contiguous()


def test_from_dense_keeps_nonzeros_mask_or_score():
    lin = linear()
    with torch.no_grad():
        lin.weight.mul_(torch.rand_like(lin.weight) < 0.4)
    kept = CompactBitmaskLinear.from_dense(lin)
    assert torch.equal(kept.dense_weight(), lin.weight.detach())
    mask = torch.rand(24, 40) < 0.7
    exact = CompactBitmaskLinear.from_dense(lin, mask=mask)
    assert torch.equal(exact.mask, mask)
    score = torch.arange(24 * 40, dtype=torch.float32).reshape(24, 40)
    top = CompactBitmaskLinear.from_dense(lin, density=0.25, score=score)
    assert torch.equal(top.mask, score >= 24 * 40 * 0.75)
    with pytest.raises(ValueError, match="density"):
        CompactBitmaskLinear.from_dense(lin, density=1.5)
    with pytest.raises(ValueError, match="mask alone"):
        CompactBitmaskLinear.from_dense(lin, density=0.5, mask=mask)
    with pytest.raises(ValueError, match="shape"):
        CompactBitmaskLinear.from_dense(lin, mask=mask[:, :8])
    with pytest.raises(ValueError, match="score needs a density"):
        CompactBitmaskLinear.from_dense(lin, score=score)


def test_wide_batches_leave_busy_cpus_and_torch_threads_alone(monkeypatch):
    """The GEMM of a wide batch runs at the kernels' load-aware thread count
    (one here, as if the other CPUs were busy) and torch's setting is back
    afterwards."""
    from sparsecore.torch import _ops

    seen = []

    def counted(real):
        def run(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return real(*args, **kwargs)
        return run

    layer = CompactBitmaskLinear.from_dense(linear(), density=0.5)
    monkeypatch.setattr(_ops, "effective_n_threads", lambda n: 1)
    monkeypatch.setattr(_ops, "_EXPAND_WHOLE_BYTES", 0)
    monkeypatch.setattr(_ops, "_EXPAND_BLOCK_BYTES", 8 * 40 * 4)
    monkeypatch.setattr(torch, "mm", counted(torch.mm))
    monkeypatch.setattr(torch, "addmm", counted(torch.addmm))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            y = layer(torch.randn(BITMASK_MAX_BATCH + 1, 40))
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
        assert y.shape == (BITMASK_MAX_BATCH + 1, 24)
    finally:
        torch.set_num_threads(before)


def test_gradients_match_the_dense_product():
    layer = CompactBitmaskLinear.from_dense(linear(dtype=torch.float64), density=0.5)
    W = layer.dense_weight().detach().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    for B in (3, 20):
        x = torch.randn(B, 40, dtype=torch.float64, requires_grad=True)
        x2 = x.detach().clone().requires_grad_()
        g = torch.randn(B, 24, dtype=torch.float64)
        layer.zero_grad()
        W.grad = b.grad = None
        (layer(x) * g).sum().backward()
        (nn.functional.linear(x2, W, b) * g).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad)
        torch.testing.assert_close(layer.values.grad, W.grad[layer.mask])
        torch.testing.assert_close(layer.bias.grad, b.grad)


def test_state_dict_save_load_and_copies():
    layer = CompactBitmaskLinear.from_dense(linear(), density=0.5)
    x = torch.randn(5, 40)
    assert sorted(layer.state_dict()) == ["_extra_state", "bias", "bitmask", "row_offsets",
                                          "values"]
    other = CompactBitmaskLinear(40, 24, density=0.2)  # another number of stored weights
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other(x), layer(x))
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    again = CompactBitmaskLinear(40, 24)
    again.load_state_dict(torch.load(buf))
    assert torch.equal(again(x), layer(x))
    assert torch.equal(copy.deepcopy(layer)(x), layer(x))
    torch.testing.assert_close(layer.to_dense()(x), layer(x))
    masked = layer.to_masked()
    assert isinstance(masked, BlockSparseLinear) and torch.equal(masked.mask, layer.mask)
    torch.testing.assert_close(masked(x), layer(x))


def test_malformed_state_is_refused_before_loading():
    layer = CompactBitmaskLinear.from_dense(linear(in_f=41), density=0.5)
    sd = layer.state_dict()
    before = copy.deepcopy(layer.state_dict())

    def refused(change, match):
        bad = dict(sd)
        change(bad)
        target = CompactBitmaskLinear(41, 24)
        snapshot = copy.deepcopy(target.state_dict())
        with pytest.raises(RuntimeError, match=match):
            target.load_state_dict(bad)
        for k, v in snapshot.items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(target.state_dict()[k], v)

    refused(lambda d: d.update(row_offsets=d["row_offsets"] + 1), "where each row starts")
    pad = sd["bitmask"].clone()
    pad[0, -1] |= 0x80  # column 47 of a 41-column row
    refused(lambda d: d.update(bitmask=pad), "past in_features")
    refused(lambda d: d.update(values=d["values"][:-1]), "one value per set bit")
    refused(lambda d: d.update(bitmask=d["bitmask"].to(torch.int16)), "uint8")
    refused(lambda d: d.update(_extra_state={"format": "nm"}), "saved by a layer")
    for k, v in before.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(layer.state_dict()[k], v)


@pytest.mark.parametrize("kind", ["bitmask", "block"])
def test_part_of_the_structure_is_refused(kind):
    """A state_dict holding only some of the structure's tensors would pair
    them with the layer's other ones (reads past the values): refused, for
    strict and non-strict loads, before anything is copied."""
    from sparsecore.torch import CompactBlockLinear

    torch.manual_seed(0)
    if kind == "bitmask":
        src, dst = (CompactBitmaskLinear(64, 32, density=d, bias=False) for d in (0.9, 0.4))
        keep = ("bitmask", "row_offsets")
    else:
        src, dst = (CompactBlockLinear(64, 32, (8, 8), d, bias=False) for d in (0.9, 0.4))
        keep = ("indices",)
    part = {k: v for k, v in src.state_dict().items() if k in keep}
    before = {k: v.clone() for k, v in dst.state_dict().items() if isinstance(v, torch.Tensor)}
    for strict in (False, True):
        with pytest.raises(RuntimeError, match="part of this layer's structure"):
            dst.load_state_dict(part, strict=strict)
        for k, v in before.items():
            assert torch.equal(dst.state_dict()[k], v)


def test_compile_and_export_forward_and_backward():
    layer = CompactBitmaskLinear.from_dense(linear(), density=0.5)
    model = nn.Sequential(layer, nn.ReLU())
    for B in (2, 16):
        x = torch.randn(B, 40)
        compiled = torch.compile(model, fullgraph=True)
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-6, atol=1e-6)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-6, atol=1e-6)
    # the masked backend and the dense ``weight`` traced without a gradient
    masked = CompactBitmaskLinear._from_parts(layer.values, layer.bitmask, layer.row_offsets,
                                              40, 24, layer.bias, backend="masked")
    x = torch.randn(4, 40)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(masked, fullgraph=True)(x), layer(x),
                                   rtol=1e-6, atol=1e-6)
        weight = torch.compile(lambda: layer.weight * 1, fullgraph=True)()
    assert torch.equal(weight, layer.dense_weight())
    torch.compile(layer, fullgraph=True)(x).sum().backward()
    g = layer.values.grad.clone()
    layer.zero_grad()
    layer(x).sum().backward()
    torch.testing.assert_close(g, layer.values.grad)


def test_fused_activation():
    torch.manual_seed(3)
    model = nn.Sequential(CompactBitmaskLinear(40, 24, density=0.5), nn.GELU(),
                          nn.Linear(24, 4))
    x = torch.randn(3, 40)
    fused = fuse_activations(model, x)
    assert fused[0].activation == "gelu" and isinstance(fused[1], nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


def test_pattern_switch_agrees_at_the_threshold(tmp_path):
    """24 of 60 weights kept is exactly the 40 % switch: prune and the
    checkpoint reader both build the bitmask layer."""
    from sparsecore.torch import prune

    torch.manual_seed(0)
    model = prune(nn.Sequential(nn.Linear(20, 3), nn.ReLU()), None, "unstructured",
                  "magnitude", sparsity=0.6, verbose=0)
    assert isinstance(model[0], CompactBitmaskLinear) and model[0].nnz == 24
    save_compressed_tensors(model, tmp_path)
    loaded = load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(20, 3), nn.ReLU()))
    assert isinstance(loaded[0], CompactBitmaskLinear)
    with pytest.raises(ValueError, match="unstructured"):
        save_compressed_tensors(model, tmp_path / "b", format="sparse-24-bitmask")


def test_checkpoint_round_trip_and_package(tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(CompactBitmaskLinear(32, 16, density=0.5), nn.ReLU(),
                          nn.Linear(16, 8))
    save_compressed_tensors(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert cfg["sparsity_config"]["format"] == "sparse-bitmask"
    torch.manual_seed(9)
    loaded = load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(32, 16), nn.ReLU(),
                                                             nn.Linear(16, 8)))
    assert isinstance(loaded[0], CompactBitmaskLinear)
    for name in ("values", "bitmask", "row_offsets", "bias"):
        assert torch.equal(getattr(loaded[0], name), getattr(model[0], name))
    ct = pytest.importorskip("compressed_tensors",
                             reason="the compressed-tensors package is the layout's reference")
    if tuple(int(v) for v in ct.__version__.split(".")[:2]) >= (0, 15):
        pytest.skip("compressed-tensors >= 0.15 has no sparse compressors")
    from compressed_tensors.compressors import ModelCompressor

    target = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8))
    ModelCompressor.from_compression_config(cfg).decompress(str(tmp_path), target)
    assert torch.equal(target[0].weight, model[0].dense_weight())
