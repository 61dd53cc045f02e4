"""Activations fused into the compact layers' kernels: the operators' bias
and activation arguments, fuse_activations on models (kept only where the
output is unchanged), gradients falling back to torch's activation,
state_dict/save/load, torch.compile and torch.export."""
import copy
import io

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    CompactBlockLinear,
    CompactNMLinear,
    fuse_activations,
    prune,
)


def close(a, b, tol=2e-6):
    scale = max(1.0, float(b.detach().abs().max()))
    return float((a.detach() - b.detach()).abs().max()) <= tol * scale


class SwiGLU(nn.Module):
    """A LLaMA-style MLP: the activation follows gate only."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(32, 64)
        self.up = nn.Linear(32, 64)
        self.down = nn.Linear(64, 32)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.down(self.act(self.gate(x)) * self.up(x))


class TwoUses(nn.Module):
    """The activation is also applied to the input: not fusable."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(32, 32)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.lin(x)) + self.act(x)


def compact(layer, kind):
    if kind == "nm":
        return CompactNMLinear.from_dense(layer, 2, 4)
    return CompactBlockLinear.from_dense(layer, (8, 8), 0.5)


@pytest.mark.parametrize("kind", ["nm", "block"])
@pytest.mark.parametrize("act,module", [("relu", nn.ReLU()), ("gelu", nn.GELU()),
                                        ("gelu_tanh", nn.GELU(approximate="tanh")),
                                        ("silu", nn.SiLU())])
def test_operator_epilogue_matches_torch(kind, act, module):
    torch.manual_seed(0)
    layer = compact(nn.Linear(32, 16), kind)
    x = 3 * torch.randn(9, 32)
    with torch.no_grad():
        want = module(F.linear(x, layer.dense_weight(), layer.bias))
        layer.activation = act
        assert close(layer(x), want)
        assert close(layer.to_dense()(x), want)
    # with a gradient wanted the activation runs in torch, so backward works
    layer.zero_grad()
    x.requires_grad_()
    layer(x).sum().backward()
    assert x.grad is not None and layer.bias.grad is not None


@pytest.mark.parametrize("kind", ["nm", "block"])
def test_bias_gradient_through_the_operator(kind):
    torch.manual_seed(1)
    layer = compact(nn.Linear(16, 8), kind).double()
    x = torch.randn(5, 16, dtype=torch.float64, requires_grad=True)
    ref = layer.to_dense()
    layer(x).pow(2).sum().backward()
    ref(x.detach()).pow(2).sum().backward()
    assert torch.allclose(layer.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)


def test_operator_with_activation_has_no_backward():
    torch.manual_seed(0)
    layer = CompactNMLinear.from_dense(nn.Linear(8, 4), 2, 4)
    x = torch.randn(3, 8, requires_grad=True)
    y = torch.ops.sparsecore.nm_linear(x, layer.values, layer.offsets, 2, 4, 8, 1, layer.bias,
                                       "gelu")
    with pytest.raises(RuntimeError, match="no backward"):
        y.sum().backward()


@pytest.mark.parametrize("kind", ["nm", "block"])
def test_fuse_sequential_and_swiglu(kind):
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 16))
    seq[0] = compact(seq[0], kind)
    x = torch.randn(7, 32)
    fused = fuse_activations(seq, x)
    assert isinstance(seq[1], nn.GELU) and seq[0].activation is None  # not inplace
    assert fused[0].activation == "gelu" and isinstance(fused[1], nn.Identity)
    with torch.no_grad():
        assert close(fused(x), seq(x))

    mlp = SwiGLU()
    for name in ("gate", "up", "down"):
        setattr(mlp, name, compact(getattr(mlp, name), kind))
    fused = fuse_activations(mlp, x)
    assert fused.gate.activation == "silu" and fused.up.activation is None
    assert isinstance(fused.act, nn.Identity)
    with torch.no_grad():
        assert close(fused(x), mlp(x))


def test_activation_used_elsewhere_is_not_fused():
    torch.manual_seed(0)
    model = TwoUses()
    model.lin = CompactNMLinear.from_dense(model.lin, 2, 4)
    fused = fuse_activations(model, torch.randn(4, 32))
    assert fused.lin.activation is None and isinstance(fused.act, nn.GELU)


def test_fused_state_dict_save_load_and_errors():
    torch.manual_seed(0)
    seq = nn.Sequential(CompactNMLinear.from_dense(nn.Linear(32, 64), 2, 4), nn.ReLU())
    fused = fuse_activations(seq, torch.randn(3, 32))
    x = torch.randn(5, 32)
    buf = io.BytesIO()
    torch.save(fused, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    clone = copy.deepcopy(fused)
    with torch.no_grad():
        for m in (loaded, clone):
            assert m[0].activation == "relu"
            assert torch.equal(m(x), fused(x))
    # the activation is structure, not state: state dicts load both ways
    target = copy.deepcopy(seq)
    target.load_state_dict(fused.state_dict())
    fused2 = copy.deepcopy(fused)
    fused2.load_state_dict(seq.state_dict())
    with torch.no_grad():
        assert torch.equal(target(x), seq(x)) and torch.equal(fused2(x), fused(x))
    with pytest.raises(ValueError, match="fused activation"):
        fused[0].to_masked()
    with pytest.raises(ValueError, match="activation must be"):
        fused[0].activation = "tanh"


def test_compile_and_export_of_a_fused_model():
    torch._dynamo.reset()
    torch.manual_seed(0)
    seq = nn.Sequential(CompactBlockLinear.from_dense(nn.Linear(32, 64), (8, 8), 0.5),
                        nn.GELU(), CompactNMLinear.from_dense(nn.Linear(64, 16), 2, 4))
    x = torch.randn(6, 32)
    fused = fuse_activations(seq, x).eval()
    with torch.no_grad():
        eager = fused(x)
        assert close(torch.compile(fused, fullgraph=True)(x), eager, 1e-6)
    ep = torch.export.export(fused, (x,))
    with torch.no_grad():
        assert close(ep.module()(x), eager, 1e-6)


def test_prune_fuses_by_default():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
    calib = [torch.randn(16, 32) for _ in range(2)]
    out = prune(model, calib, "2:4", "wanda", verbose=0)
    assert out[0].activation == "gelu" and isinstance(out[1], nn.Identity)
    plain = prune(model, calib, "2:4", "wanda", fuse=False, verbose=0)
    assert plain[0].activation is None and isinstance(plain[1], nn.GELU)
    with torch.no_grad():
        assert close(out(calib[0]), plain(calib[0]))
    # "magnitude" takes no statistics, but its calibration list checks the fusion
    mag = prune(model, calib, "2:4", "magnitude", verbose=0)
    assert mag[0].activation == "gelu"
    assert prune(model, None, "2:4", "magnitude", verbose=0)[0].activation is None


@pytest.mark.parametrize("kind", ["nm", "block"])
def test_no_grad_calls_give_the_operators_bits(kind):
    # without a gradient, eager calls skip the operator's dispatch
    torch.manual_seed(0)
    layer = compact(nn.Linear(32, 16), kind)
    layer.activation = "silu"
    x = torch.randn(5, 32)
    with torch.no_grad():
        y = layer(x)
        if kind == "nm":
            want = torch.ops.sparsecore.nm_linear(x, layer.values, layer.offsets, 2, 4, 32, 0,
                                                  layer.bias, "silu")
        else:
            want = torch.ops.sparsecore.block_linear(x, layer.blocks, layer.indices,
                                                     layer.indptr, 16, 0, layer.bias, "silu")
    assert torch.equal(y, want)


def test_tracers_see_the_operator():
    torch.manual_seed(0)
    seq = nn.Sequential(CompactNMLinear.from_dense(nn.Linear(16, 8), 2, 4), nn.GELU())
    fused = fuse_activations(seq, torch.randn(3, 16))
    x, x2 = torch.randn(4, 16), torch.randn(4, 16)
    with torch.no_grad():
        traced = torch.jit.trace(fused, x)
        assert close(traced(x2), fused(x2))
        from torch.fx.experimental.proxy_tensor import make_fx
        gm = make_fx(fused, tracing_mode="real")(x)
        assert any("sparsecore" in str(n.target) for n in gm.graph.nodes)
        assert close(torch.func.vmap(fused)(x), fused(x))


def test_fusion_is_refused_where_it_cannot_be_checked():
    import dataclasses

    @dataclasses.dataclass
    class Out:
        h: torch.Tensor

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.act = nn.GELU()

        def forward(self, x):
            return Out(self.act(self.fc(x)))

    torch.manual_seed(0)
    out = prune(Block(), [torch.randn(8, 16)], "2:4", "wanda", verbose=0)  # no crash
    assert out.fc.activation is None and isinstance(out.act, nn.GELU)

    # a layer shared by two parents
    fc = CompactNMLinear.from_dense(nn.Linear(16, 16), 2, 4)
    model = nn.Sequential(nn.Sequential(fc, nn.GELU()), nn.Sequential(fc, nn.GELU()))
    fused = fuse_activations(model, torch.randn(4, 16))
    assert fused[0][0].activation is None
    with torch.no_grad():
        x = torch.randn(4, 16)
        assert close(fused(x), model(x))

    # a clamp that looks like ReLU near zero
    seq = nn.Sequential(CompactNMLinear.from_dense(nn.Linear(16, 16), 2, 4), nn.Hardtanh(0, 10))
    assert fuse_activations(seq, torch.randn(4, 16))[0].activation is None


def test_fusion_keeps_each_submodules_mode():
    torch.manual_seed(0)
    model = nn.Sequential(CompactNMLinear.from_dense(nn.Linear(16, 16), 2, 4), nn.ReLU(),
                          nn.BatchNorm1d(16))
    model.train()
    model[2].eval()           # a frozen normalisation inside a training model
    fused = fuse_activations(model, torch.randn(4, 16), inplace=True)
    assert fused.training and fused[0].training and not fused[2].training
    dense = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.BatchNorm1d(16))
    dense.train()
    dense[2].eval()
    pruned = prune(dense, [torch.randn(8, 16)], "2:4", "wanda", verbose=0)
    assert pruned.training and pruned[0].training and not pruned[2].training


def test_fused_model_checkpoint_loads_into_the_dense_architecture(tmp_path):
    pytest.importorskip("safetensors")
    from sparsecore.torch import load_compressed_tensors, save_compressed_tensors

    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
    pruned = prune(dense, [torch.randn(8, 32)], "2:4", "wanda", verbose=0)
    assert pruned[0].activation == "gelu" and "activation=gelu" in repr(pruned[0])
    save_compressed_tensors(pruned, tmp_path)
    fresh = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
    loaded = load_compressed_tensors(tmp_path, fresh)   # the architecture keeps its GELU
    x = torch.randn(5, 32)
    with torch.no_grad():
        assert close(loaded(x), pruned(x))
