"""Compact inference layers (CompactNMLinear, CompactBlockLinear) and
compact(): storage, checkpoint size, state_dict / torch.save / deepcopy
round trips, training of the stored values, conversions, errors."""
import copy
import io

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    BlockSparseLinear,
    CompactBlockLinear,
    CompactNMLinear,
    DynamicSparsifier,
    MonarchLinear,
    NMSparseLinear,
    compact,
)

# float32 outputs within 1e-6 of the reference relative to its largest
# entry, float64 within 1e-12
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def close(a, b, dtype=torch.float32):
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    return float((a - b).abs().max()) <= TOL[dtype] * scale if a.numel() else True


def saved_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


def compact_layers():
    torch.manual_seed(0)
    dense = nn.Linear(48, 24)
    return {
        "nm": CompactNMLinear.from_dense(dense, 2, 4),
        "nm_partial": CompactNMLinear.from_dense(nn.Linear(18, 6), 1, 4),
        "block": CompactBlockLinear.from_dense(dense, (8, 8), 0.3),
    }


def test_state_dict_holds_only_compact_tensors():
    layers = compact_layers()
    sd = layers["nm"].state_dict()
    assert sorted(sd) == ["_extra_state", "bias", "offsets", "values"]
    assert sd["values"].shape == (24, 24) and sd["offsets"].dtype == torch.uint8
    sd = layers["block"].state_dict()
    assert sorted(sd) == ["_extra_state", "bias", "blocks", "indices", "indptr"]
    assert sd["blocks"].shape[1:] == (8, 8) and sd["indices"].dtype == torch.int32
    assert sorted(n for n, _ in layers["nm"].named_parameters()) == ["bias", "values"]


class _ReadsWeight(nn.Module):
    """Code written for nn.Linear: casts its input to the layer's weight dtype."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x.to(self.layer.weight.dtype))


@pytest.mark.parametrize("kind", ["nm", "block", "monarch"])
def test_weight_is_a_read_only_dense_view(kind):
    torch.manual_seed(0)
    layer = compact_layers().get(kind) or MonarchLinear(32, 32, n_blocks=4)
    W = layer.weight
    assert W.shape == (layer.out_features, layer.in_features) and not W.requires_grad
    assert torch.equal(W, layer.dense_weight().detach())
    assert layer.weight is W  # kept while the storage is unchanged
    assert "weight" not in layer.state_dict() and "weight" not in dict(layer.named_parameters())
    stored = next(p for n, p in layer.named_parameters() if n != "bias")
    with torch.no_grad():
        stored.mul_(2)  # changed in place: rebuilt
    assert torch.equal(layer.weight, layer.dense_weight().detach())
    twin = copy.deepcopy(layer)
    assert twin.weight is not layer.weight and torch.equal(twin.weight, layer.weight)
    with pytest.raises(KeyError, match="weight"):
        layer.weight = nn.Parameter(torch.zeros_like(W))
    # converted: never the view of the old tensors (.to may reuse their address)
    for dtype in (torch.float64, torch.float32):
        layer.to(dtype)
        assert layer.weight.dtype == dtype
        assert torch.equal(layer.weight, layer.dense_weight().detach())
    # inference tensors and torch.func's wrappers have no version or storage
    # to key on: built each time, and nothing made there is handed out later
    with torch.inference_mode():
        frozen = copy.deepcopy(layer)
        assert torch.equal(frozen.weight, layer.weight)
        inner = layer.weight
    assert torch.equal(frozen.weight, inner)
    x = torch.randn(3, layer.in_features, requires_grad=True)
    (x @ layer.weight.T).sum().backward()
    masked = copy.deepcopy(layer)
    masked.backend = "masked"  # torch ops, which torch.func transforms
    reads = _ReadsWeight(masked)
    params = {k: v.detach() for k, v in reads.named_parameters()}
    grads = torch.func.grad(
        lambda p: torch.func.functional_call(reads, p, (x.detach(),)).sum())(params)
    assert sorted(grads) == sorted(params)
    # code written for nn.Linear reads the weight's dtype, compiled as well
    x = torch.randn(3, layer.in_features)
    torch._dynamo.reset()
    f = torch.compile(lambda t: layer(t.to(layer.weight.dtype)), fullgraph=True)
    with torch.no_grad():
        assert close(f(x), layer(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compact_of_training_layer_is_the_same_function(dtype):
    torch.manual_seed(1)
    x = torch.randn(5, 3, 48, dtype=dtype)
    for layer in (NMSparseLinear(48, 24, 2, 4, dtype=dtype),
                  NMSparseLinear(18, 6, 1, 4, dtype=dtype),
                  BlockSparseLinear(48, 24, (8, 8), 0.3, dtype=dtype)):
        small = layer.compact()
        xi = x[..., :layer.in_features]
        assert close(small(xi), layer(xi), dtype)
        assert close(small.dense_weight(), layer.masked_weight(), dtype)
        assert torch.equal(small.mask, layer.mask)
        assert small.nnz == layer.nnz
        assert close(small.to_dense()(xi), layer(xi), dtype)
        small.backend = "masked"
        assert close(small(xi), layer(xi), dtype)


def test_state_dict_round_trip_into_fresh_layers():
    for name, layer in compact_layers().items():
        x = torch.randn(4, layer.in_features)
        if name == "block":
            fresh = CompactBlockLinear(48, 24, (8, 8), 0.7)   # another number of blocks
        elif name == "nm":
            fresh = CompactNMLinear(48, 24, 2, 4)
        else:
            fresh = CompactNMLinear(18, 6, 1, 4)
        fresh.load_state_dict(layer.state_dict())
        assert torch.equal(fresh(x), layer(x))
        for k, v in layer.state_dict().items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(fresh.state_dict()[k], v)


def test_torch_save_load_and_deepcopy():
    torch.manual_seed(2)
    model = nn.Sequential(compact_layers()["nm"], nn.ReLU(), CompactBlockLinear(24, 16, (8, 8), 0.5))
    x = torch.randn(3, 48)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    twin = copy.deepcopy(model)
    assert torch.equal(twin(x), model(x))
    fresh = nn.Sequential(CompactNMLinear(48, 24), nn.ReLU(),
                          CompactBlockLinear(24, 16, (8, 8), 0.25))
    fresh.load_state_dict(sd)
    assert torch.equal(fresh(x), model(x))
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    whole = torch.load(buf, weights_only=False)
    assert torch.equal(whole(x), model(x))


def test_checkpoint_size_nm_2_4():
    torch.manual_seed(0)
    dense = nn.Linear(768, 3072)
    small = CompactNMLinear.from_dense(dense, 2, 4)
    ratio = saved_bytes(small.state_dict()) / saved_bytes(dense.state_dict())
    # 2.5 bytes per dense float32 weight (value + uint8 offset for half of them)
    assert ratio <= 0.65, ratio


@pytest.mark.parametrize("density", [0.1, 0.25, 0.5])
def test_checkpoint_size_blocks(density):
    torch.manual_seed(0)
    dense = nn.Linear(768, 3072)
    small = CompactBlockLinear.from_dense(dense, (16, 16), density)
    ratio = saved_bytes(small.state_dict()) / saved_bytes(dense.state_dict())
    assert ratio <= density + 0.02, ratio


def test_compact_model_copy_and_inplace():
    torch.manual_seed(0)
    model = nn.Sequential(NMSparseLinear(32, 16), nn.ReLU(), BlockSparseLinear(16, 8, (4, 4), 0.5),
                          nn.ReLU(), MonarchLinear(8, 8, 2), nn.Linear(8, 2))
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(4, 32)
    small = compact(model)
    assert [type(m).__name__ for m in small] == ["CompactNMLinear", "ReLU", "CompactBlockLinear",
                                                 "ReLU", "MonarchLinear", "Linear"]
    assert close(small(x), model(x))
    for k, v in model.state_dict().items():       # the input model is unchanged
        assert torch.equal(v, before[k])
    same = compact(model, inplace=True)
    assert same is model and type(model[0]) is CompactNMLinear
    assert type(compact(NMSparseLinear(8, 4))) is CompactNMLinear


def test_compact_after_dynamic_sparse_training():
    torch.manual_seed(0)
    model = nn.Sequential(NMSparseLinear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    sp = DynamicSparsifier(update_every=2, total_steps=10, random_state=0)
    sp.prepare(model, [{"tensor_fqn": "0.weight"}])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 16), torch.randint(0, 3, (32,))
    for _ in range(6):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
        sp.step()
    with pytest.raises(ValueError, match="squash_mask"):
        compact(model)
    sp.squash_mask()
    small = compact(model)
    assert close(small(X), model(X))


def test_training_the_compact_values():
    torch.manual_seed(0)
    for layer in (CompactNMLinear(24, 12), CompactBlockLinear(24, 12, (4, 4), 0.5)):
        ref = layer.to_dense()
        x = torch.randn(9, 24)
        g = torch.randn(9, 12)
        (layer(x) * g).sum().backward()
        (ref(x) * g).sum().backward()
        param = layer.values if isinstance(layer, CompactNMLinear) else layer.blocks
        # the gradient of the stored values is the dense gradient at their positions
        dense_grad_of_values = torch.autograd.grad(
            (layer.dense_weight() * ref.weight.grad).sum(), param)[0]
        assert close(param.grad, dense_grad_of_values)
        assert close(layer.bias.grad, ref.bias.grad)
        structure = [b.clone() for b in layer.buffers()]
        opt = torch.optim.SGD(layer.parameters(), lr=0.05)
        target = torch.randn(9, 12)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = ((layer(x) - target) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < losses[0]
        assert all(torch.equal(a, b) for a, b in zip(structure, layer.buffers()))


def test_to_masked_round_trip():
    for layer in compact_layers().values():
        masked = layer.to_masked()
        x = torch.randn(3, layer.in_features)
        assert close(masked(x), layer(x))
        assert torch.equal(masked.compact().dense_weight(), layer.dense_weight())


def test_load_errors():
    layer = CompactNMLinear(16, 4)
    sd = layer.state_dict()
    bad = dict(sd, offsets=sd["offsets"].flip(-1).contiguous())
    with pytest.raises(RuntimeError, match="increasing"):
        layer.load_state_dict(bad)
    with pytest.raises(RuntimeError, match="uint8"):
        layer.load_state_dict(dict(sd, offsets=sd["offsets"].long()))
    with pytest.raises(RuntimeError, match="saved by a layer"):
        CompactNMLinear(16, 4, 4, 8).load_state_dict(sd)
    blk = CompactBlockLinear(16, 8, (4, 4), 0.5)
    sd = blk.state_dict()
    with pytest.raises(RuntimeError, match="block columns"):
        blk.load_state_dict(dict(sd, indices=sd["indices"] + 10))
    with pytest.raises(RuntimeError, match="rise"):
        blk.load_state_dict(dict(sd, indptr=sd["indptr"].flip(0).contiguous()))
    assert torch.equal(blk.state_dict()["indices"], sd["indices"])   # unchanged on failure


def test_construction_errors():
    with pytest.raises(ValueError):
        CompactNMLinear(16, 4, 4, 4)
    with pytest.raises(TypeError, match="in_features"):
        CompactNMLinear(16.0, 4)
    with pytest.raises(ValueError, match="block_shape"):
        CompactBlockLinear(18, 8, (4, 4))
    with pytest.raises(ValueError, match="not both"):
        CompactNMLinear.from_dense(nn.Linear(8, 4), score=torch.ones(4, 8),
                                   mask=torch.ones(4, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="2:4"):
        CompactNMLinear.from_dense(nn.Linear(8, 4), mask=torch.ones(4, 8, dtype=torch.bool))
    with pytest.raises(TypeError, match="dtype"):
        CompactNMLinear(8, 4)(torch.randn(2, 8, dtype=torch.float64))


def test_thread_count_bit_identical():
    torch.manual_seed(5)
    for layer in (CompactNMLinear(64, 64), CompactBlockLinear(64, 64, (8, 8), 0.5)):
        x = torch.randn(33, 64, requires_grad=True)
        outs = []
        for nt in (1, 2):
            layer.n_threads = nt
            layer.zero_grad()
            x.grad = None
            y = layer(x)
            y.sum().backward()
            outs.append((y.detach(), x.grad.clone(), next(layer.parameters()).grad.clone()))
        for a, b in zip(*outs):
            assert torch.equal(a, b)


def test_default_threads_leave_busy_cpus(monkeypatch):
    # n_threads=None: torch's thread count, less the CPUs other processes
    # keep busy (as sparsecore's other products count them)
    from sparsecore import _threads
    from sparsecore.torch import _ops
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(_threads, "_openmp_helpers", type("H", (), {
            "openmp_enabled": staticmethod(lambda: True), "max_threads": staticmethod(lambda: 4)}))
        monkeypatch.setattr(_threads, "free_cpus", lambda: 1)
        assert _ops._threads(0) == 1
        assert _ops._threads(3) == 3
        monkeypatch.setattr(_threads, "free_cpus", lambda: 4)
        assert _ops._threads(0) == 2
        layer = CompactNMLinear(64, 32)
        assert layer._threads() == 2
        layer.n_threads = 5
        assert layer._threads() == 5
    finally:
        torch.set_num_threads(before)
