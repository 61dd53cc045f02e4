"""torch.library operators of sparsecore.torch: opcheck (schema, fake
tensors, autograd registration, AOT dispatch), values against dense torch
products, gradcheck in float64, torch.compile(fullgraph=True) and
torch.export of every layer."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sparsecore.ops import block_prune, nm_prune  # noqa: E402
from sparsecore.torch import (  # noqa: E402
    BlockSparseLinear,
    CompactBlockLinear,
    CompactNMLinear,
    MonarchLinear,
    NMSparseLinear,
)
from sparsecore.torch import _ops  # noqa: E402

# products against dense torch, relative to the largest reference entry:
# float32 1e-6, float64 1e-12. Compiled against eager: rtol 1e-6 (float32).
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def close(a, b, dtype):
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    return float((a - b).abs().max()) <= TOL[dtype] * scale if a.numel() else True


def nm_parts(out_f, in_f, n, m, dtype, seed=0):
    W = torch.randn(out_f, in_f, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed)).to(dtype)
    S = nm_prune(W.numpy(), n, m)
    return (torch.from_numpy(np.array(S.values)), torch.from_numpy(np.array(S.indices)),
            torch.from_numpy(S.toarray()))


def block_parts(out_f, in_f, bs, density, dtype, seed=0):
    W = torch.randn(out_f, in_f, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed)).to(dtype)
    S = block_prune(W.numpy(), bs, density)
    return (torch.from_numpy(np.array(S.blocks)), torch.from_numpy(np.array(S.indices)),
            torch.from_numpy(np.array(S.indptr)), torch.from_numpy(S.toarray()))


def inputs(B, K, dtype, layout):
    x = torch.randn(B, K, dtype=dtype)
    if layout == "transposed":
        x = x.T.contiguous().T
    elif layout == "offset":
        x = torch.randn(B + 1, K + 3, dtype=dtype)[1:, 2:K + 2]
    return x


LAYOUTS = ["contiguous", "transposed", "offset"]
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("B", [0, 1, 7, 40])  # 40: the dense values gradient
@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (4, 8), (1, 8)])
def test_nm_ops(dtype, layout, B, nm):
    n, m = nm
    K = 18 if m == 4 else 24      # 18: a partial last group
    values, offsets, W = nm_parts(12, K, n, m, dtype)
    x = inputs(B, K, dtype, layout)
    dy = torch.randn(B, 12, dtype=dtype)
    assert close(_ops.nm_linear(x, values, offsets, n, m, K, 1), x @ W.T, dtype)
    assert close(_ops.nm_linear_grad_input(dy, values, offsets, n, m, K, 2), dy @ W, dtype)
    dv = _ops.nm_linear_grad_values(dy, x, offsets, n, m, 1)
    G = dy.T @ x
    cols = (torch.arange(values.shape[1]) // n * m + offsets.long()).clamp(max=K - 1)
    ref = torch.gather(G, 1, cols) * (torch.gather(W, 1, cols) != 0)
    assert close(dv * (torch.gather(W, 1, cols) != 0), ref, dtype)
    xr = x.clone().requires_grad_()
    vr = values.clone().requires_grad_()
    torch.library.opcheck(_ops.nm_linear, (xr, vr, offsets, n, m, K, 1))
    torch.library.opcheck(_ops.nm_linear, (x, values, offsets, n, m, K, 0))
    torch.library.opcheck(_ops.nm_linear_grad_input, (dy, values, offsets, n, m, K, 1))
    torch.library.opcheck(_ops.nm_linear_grad_values, (dy, x, offsets, n, m, 1))


@pytest.mark.parametrize("nm", [(2, 4), (4, 8), (1, 4)])
def test_nm_values_gradient_paths_agree(nm, monkeypatch):
    # the dense GEMM + gather and the SDDMM kernel give the same gradient,
    # partial last group included
    n, m = nm
    K = 18 if m == 4 else 28
    values, offsets, W = nm_parts(20, K, n, m, torch.float64)
    x = torch.randn(64, K, dtype=torch.float64)
    dy = torch.randn(64, 20, dtype=torch.float64)
    dense = _ops.nm_linear_grad_values(dy, x, offsets, n, m, 1)
    monkeypatch.setattr(_ops, "_DENSE_GRAD_MIN_BATCH", 10**9)
    kernel = _ops.nm_linear_grad_values(dy, x, offsets, n, m, 1)
    torch.testing.assert_close(dense, kernel, rtol=1e-12, atol=1e-12)
    assert dense.shape == offsets.shape and dense.is_contiguous()


@pytest.mark.parametrize("density", [0.1, 0.6])
@pytest.mark.parametrize("bs", [(4, 4), (2, 8), (16, 16)])
def test_block_gradient_paths_agree(bs, density, monkeypatch):
    # GEMM + gather (a quarter or more of the blocks stored) and the SDDMM
    # kernel give the same gradient, partial last block row and column too
    r, c = bs
    M, K = 3 * r + 1, 4 * c + 3
    rng = np.random.default_rng(0)
    keep = rng.random((-(-M // r), -(-K // c))) < density
    keep[0, 0] = True
    indptr = torch.tensor(np.r_[0, np.cumsum(keep.sum(1))], dtype=torch.int64)
    indices = torch.tensor(np.nonzero(keep)[1], dtype=torch.int64)
    x = torch.randn(48, K, dtype=torch.float64)
    dy = torch.randn(48, M, dtype=torch.float64)
    fast = _ops.block_linear_grad_blocks(dy, x, indices, indptr, r, c, 1)
    monkeypatch.setattr(_ops, "_DENSE_GRAD_MIN_BATCH", 10**9)
    kernel = _ops.block_linear_grad_blocks(dy, x, indices, indptr, r, c, 1)
    # entries of partial blocks outside the matrix are not compared
    full = torch.zeros(keep.shape[0] * r, keep.shape[1] * c, dtype=torch.float64)
    full[:M, :K] = 1
    inside = full.view(keep.shape[0], r, keep.shape[1], c).transpose(1, 2)[
        torch.repeat_interleave(torch.arange(keep.shape[0]), indptr.diff()), indices] != 0
    torch.testing.assert_close(fast * inside, kernel * inside, rtol=1e-12, atol=1e-12)
    assert fast.shape == kernel.shape and fast.is_contiguous()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("B", [0, 1, 7, 40])
@pytest.mark.parametrize("bs", [(4, 4), (2, 8), (1, 1)])
def test_block_ops(dtype, layout, B, bs):
    blocks, indices, indptr, W = block_parts(16, 32, bs, 0.4, dtype)
    x = inputs(B, 32, dtype, layout)
    dy = torch.randn(B, 16, dtype=dtype)
    assert close(_ops.block_linear(x, blocks, indices, indptr, 16, 1), x @ W.T, dtype)
    assert close(_ops.block_linear_grad_input(dy, blocks, indices, indptr, 32, 1), dy @ W,
                 dtype)
    db = _ops.block_linear_grad_blocks(dy, x, indices, indptr, bs[0], bs[1], 1)
    r, c = bs
    G4 = (dy.T @ x).reshape(16 // r, r, 32 // c, c).transpose(1, 2)
    rows = torch.repeat_interleave(torch.arange(16 // r), indptr.diff().long())
    assert close(db, G4[rows, indices.long()], dtype)
    br = blocks.clone().requires_grad_()
    torch.library.opcheck(_ops.block_linear,
                          (x.clone().requires_grad_(), br, indices, indptr, 16, 1))
    torch.library.opcheck(_ops.block_linear_grad_input, (dy, blocks, indices, indptr, 32, 1))
    torch.library.opcheck(_ops.block_linear_grad_blocks, (dy, x, indices, indptr, r, c, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("B", [0, 1, 7])
def test_monarch_ops(dtype, layout, B):
    layer = MonarchLinear(16, 24, 4, dtype=dtype)
    W = layer.dense_weight().detach()
    left, right = layer.left.detach(), layer.right.detach()
    x = inputs(B, 16, dtype, layout)
    dy = torch.randn(B, 24, dtype=dtype)
    assert close(_ops.monarch_linear(x, left, right, 1), x @ W.T, dtype)
    assert close(_ops.monarch_linear_grad_input(dy, left, right, 1), dy @ W, dtype)
    torch.library.opcheck(_ops.monarch_linear,
                          (x.clone().requires_grad_(), left.clone().requires_grad_(),
                           right.clone().requires_grad_(), 1))
    torch.library.opcheck(_ops.monarch_linear_grad_input, (dy, left, right, 0))


def test_gradcheck_float64():
    values, offsets, _ = nm_parts(6, 10, 2, 4, torch.float64)
    x = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    v = values.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: _ops.nm_linear(a, b, offsets, 2, 4, 10, 1),
                                    (x, v))
    blocks, indices, indptr, _ = block_parts(8, 12, (2, 4), 0.5, torch.float64)
    b = blocks.clone().requires_grad_()
    x = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, w: _ops.block_linear(a, w, indices, indptr, 8, 1), (x, b))
    layer = MonarchLinear(8, 12, 2, dtype=torch.float64)
    L, R = (layer.left.detach().clone().requires_grad_(),
            layer.right.detach().clone().requires_grad_())
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, p, q: _ops.monarch_linear(a, p, q, 1), (x, L, R))


LAYERS = {
    "compact_nm": lambda: CompactNMLinear(32, 16, 2, 4),
    "compact_block": lambda: CompactBlockLinear(32, 16, (8, 8), 0.5),
    "monarch": lambda: MonarchLinear(32, 16, 4),
    "nm": lambda: NMSparseLinear(32, 16, 2, 4),
    "block": lambda: BlockSparseLinear(32, 16, (8, 8), 0.5),
}


def model_of(kind):
    torch.manual_seed(0)
    return nn.Sequential(LAYERS[kind](), nn.ReLU(), nn.Linear(16, 4))


def forward_backward(model, x):
    model.zero_grad()
    x = x.detach().clone().requires_grad_()
    y = model(x)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    return y.detach(), x.grad, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("kind", list(LAYERS))
def test_compile_fullgraph_equals_eager(kind):
    torch._dynamo.reset()
    model = model_of(kind)
    x = torch.randn(2, 5, 32)    # a leading batch of sequences
    eager = forward_backward(model, x)
    compiled = forward_backward(torch.compile(model, fullgraph=True), x)
    assert close(compiled[0], eager[0], torch.float32)
    assert close(compiled[1], eager[1], torch.float32)
    for a, b in zip(compiled[2], eager[2]):
        assert close(a, b, torch.float32)


@pytest.mark.parametrize("kind", ["compact_nm", "compact_block", "monarch"])
def test_compiled_graph_calls_the_operator(kind):
    torch._dynamo.reset()
    model = model_of(kind).eval()
    names = []

    def backend(gm, example_inputs):
        names.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    with torch.no_grad():
        torch.compile(model, backend=backend, fullgraph=True)(torch.randn(3, 32))
    op = {"compact_nm": "nm_linear", "compact_block": "block_linear",
          "monarch": "monarch_linear"}[kind]
    assert f"sparsecore.{op}" in names or f"sparsecore.{op}.default" in names, names


@pytest.mark.parametrize("kind", list(LAYERS))
def test_export_round_trip(kind, tmp_path):
    model = model_of(kind).eval()
    x = torch.randn(6, 32)
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    if kind.startswith("compact") or kind == "monarch" or kind == "nm":
        assert any(t.startswith("sparsecore.") for t in targets), targets
    path = tmp_path / "model.pt2"
    torch.export.save(ep, path)
    loaded = torch.export.load(path)
    with torch.no_grad():
        want = model(x)
        assert close(loaded.module()(x), want, torch.float32)
        x2 = torch.randn(3, 32)
        assert close(loaded.module()(x2), model(x2), torch.float32)
