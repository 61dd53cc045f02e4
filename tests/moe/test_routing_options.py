"""Routing options of the MoE layer: the Switch load-balancing loss, the
expert capacity factor with dropped-token accounting, and expert-choice
routing (sparsecore.moe).

Tolerances: float64 comparisons with a direct formula or a loop use 1e-12
(1e-10 for gradients through several matmuls); float32 ones use 1e-6.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparsecore.moe import (  # noqa: E402
    COMETGate,
    ExpertChoiceGate,
    HashGate,
    MixtureOfExperts,
    RoutingStats,
    TopKGate,
    apply_capacity,
    expert_capacity,
    load_balancing_loss,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class Scaled(torch.nn.Module):
    """An expert that records how many samples it saw."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.linear = torch.nn.Linear(d_in, d_out)
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return torch.tanh(self.linear(x))


def switch_loss_loop(logits):
    """Switch Transformers eq. (4) with alpha = 1, written out for k = 1."""
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    T, N = probs.shape
    f = np.array([np.mean(probs.argmax(1) == i) for i in range(N)])
    P = probs.mean(0)
    return N * float(np.sum(f * P))


# ------------------------------------------------------------ Switch loss
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_switch_loss_top1_matches_the_paper_formula(dtype):
    gate = TopKGate(5, 8, k=1, load_balance=1e-2).to(dtype)
    x = torch.randn(300, 5, dtype=dtype)
    out = gate(x)
    logits = gate.linear(x).detach().double().numpy()
    ref = switch_loss_loop(logits)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert math.isclose(float(out.aux_losses["load_balance"].detach()), 1e-2 * ref, rel_tol=tol)
    assert torch.allclose(out.probs, torch.softmax(gate.linear(x), 1))


def test_switch_loss_gradient_flows_through_router_probabilities():
    gate = TopKGate(4, 6, k=1).double()
    x = torch.randn(50, 4, dtype=torch.float64)
    out = gate(x)
    loss = load_balancing_loss(out.weights, probs=out.probs)
    g = torch.autograd.grad(loss, gate.linear.weight)[0]
    # d/dW of N sum_i f_i mean_x p_i(x), f held fixed
    f = torch.bincount(out.weights.argmax(1), minlength=6).double() / 50
    probs = torch.softmax(gate.linear(x), 1)
    ref_loss = 6 * (f * probs.mean(0)).sum()
    ref = torch.autograd.grad(ref_loss, gate.linear.weight)[0]
    assert torch.allclose(g, ref, atol=1e-12)
    assert g.abs().sum() > 0  # one-hot weights alone would give no gradient


def test_layer_load_balance_uses_the_gates_router_probabilities():
    gate = TopKGate(4, 6, k=2).double()
    layer = MixtureOfExperts([Scaled(4, 3).double() for _ in range(6)], gate, load_balance=0.01)
    x = torch.randn(40, 4, dtype=torch.float64)
    _, aux = layer(x)
    out = layer.last_gate_output
    mask = (out.weights != 0).double()
    ref = 0.01 * 6 * ((mask.sum(0) / mask.sum()) * torch.softmax(gate.linear(x), 1).mean(0)).sum()
    assert torch.allclose(aux["moe_load_balance"], ref, atol=1e-12)


def test_switch_loss_is_one_when_uniform_and_n_when_collapsed():
    n = 8
    probs = torch.full((16, n), 1.0 / n)
    onehot = torch.zeros(16, n)
    onehot[torch.arange(16), torch.arange(16) % n] = 1.0
    assert math.isclose(float(load_balancing_loss(onehot, probs)), 1.0, rel_tol=1e-6)
    collapsed = torch.zeros(16, n)
    collapsed[:, 3] = 1.0
    assert math.isclose(float(load_balancing_loss(collapsed)), float(n), rel_tol=1e-6)


# ------------------------------------------------------------ capacity
def test_expert_capacity_formula_and_errors():
    assert expert_capacity(4096, 64, 2, 1.0) == 128
    assert expert_capacity(4096, 64, 2, 1.25) == 160
    assert expert_capacity(100, 64, 1, 1.0) == 2  # ceil
    assert expert_capacity(0, 8, 2, 1.0) == 1
    with pytest.raises(ValueError, match="capacity_factor"):
        expert_capacity(10, 4, 1, 0.0)
    with pytest.raises(TypeError, match="capacity_factor"):
        expert_capacity(10, 4, 1, "1")
    with pytest.raises(ValueError, match="n_experts"):
        expert_capacity(10, 0, 1, 1.0)
    with pytest.raises(TypeError, match="k"):
        expert_capacity(10, 4, 1.5, 1.0)


def capacity_loop(w, capacity, order):
    w = w.numpy()
    kept = np.zeros_like(w)
    for e in range(w.shape[1]):
        rows = [s for s in range(w.shape[0]) if w[s, e] != 0]
        if order == "weight":
            rows = sorted(rows, key=lambda s: (-abs(w[s, e]), s))
        for s in rows[:capacity]:
            kept[s, e] = w[s, e]
    return kept


@pytest.mark.parametrize("order", ["sample", "weight"])
@pytest.mark.parametrize("capacity", [1, 3, 7, 200])
def test_apply_capacity_matches_a_loop(order, capacity):
    w = TopKGate(4, 5, 2)(torch.randn(60, 4)).weights.detach().double()
    w[5] = w[6]  # equal weights on two samples: ties go to the earlier one
    before = w.clone()
    kept, dropped = apply_capacity(w, capacity, order)
    assert torch.equal(w, before)
    assert np.array_equal(kept.numpy(), capacity_loop(w, capacity, order))
    assert torch.equal(dropped, (w != 0) & (kept == 0))
    assert ((kept != 0).sum(0) <= capacity).all()


def test_apply_capacity_sample_order_agrees_with_to_dispatch():
    from sparsecore.moe import to_dispatch

    w = TopKGate(4, 6, 2)(torch.randn(50, 4)).weights.detach()
    kept, _ = apply_capacity(w, 5)
    combine, _ = to_dispatch(w, 5)
    assert torch.equal(kept, combine.sum(2))


def test_apply_capacity_errors():
    w = torch.rand(4, 3)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        apply_capacity(w, 0)
    with pytest.raises(TypeError, match="capacity must be an int"):
        apply_capacity(w, 2.0)
    with pytest.raises(ValueError, match="drop_order"):
        apply_capacity(w, 2, "random")
    with pytest.raises(TypeError, match="floating"):
        apply_capacity(w.long(), 2)


@pytest.mark.parametrize("order", ["sample", "weight"])
def test_layer_capacity_sparse_equals_dense_and_counts_drops(order):
    n, batch = 6, 90
    gate = TopKGate(5, n, 2).double()
    with torch.no_grad():
        gate.linear.bias[2] += 3.0  # overload expert 2
    experts = [Scaled(5, 4).double() for _ in range(n)]
    x = torch.randn(batch, 5, dtype=torch.float64, requires_grad=True)
    sparse = MixtureOfExperts(experts, gate, capacity_factor=1.0, drop_order=order)
    dense = MixtureOfExperts(experts, gate, combine="dense", capacity_factor=1.0,
                             drop_order=order)
    ys, _ = sparse(x)
    gs = torch.autograd.grad(ys.pow(2).sum(), [x, *gate.parameters()])
    yd, _ = dense(x)
    gd = torch.autograd.grad(yd.pow(2).sum(), [x, *gate.parameters()])
    assert torch.allclose(ys, yd, atol=1e-12)
    for a, b in zip(gs, gd):
        assert torch.allclose(a, b, atol=1e-10)
    # direct evaluation: y_s = sum over kept experts of w_se f_e(x_s)
    w = gate(x).weights.detach()
    capacity = math.ceil(1.0 * 2 * batch / n)
    kept = torch.from_numpy(capacity_loop(w, capacity, order))
    ref = sum(kept[:, e:e + 1] * experts[e](x) for e in range(n))
    assert torch.allclose(ys, ref, atol=1e-12)
    stats = sparse.last_stats
    assert isinstance(stats, RoutingStats) and stats.capacity == capacity
    assert stats.routed == 2 * batch
    assert stats.dropped == int(((w != 0) & (kept == 0)).sum()) > 0
    assert stats.dropped_samples == int(((w != 0).any(1) & ~(kept != 0).any(1)).sum())
    assert stats.expert_counts == (kept != 0).sum(0).tolist()
    assert max(stats.expert_counts) == capacity
    assert sum(stats.expert_counts) + stats.dropped == stats.routed


def test_layer_capacity_runs_experts_only_on_kept_samples():
    n = 8
    gate = TopKGate(4, n, 2)
    experts = [Scaled(4, 2) for _ in range(n)]
    layer = MixtureOfExperts(experts, gate, capacity_factor=0.5)
    layer(torch.randn(64, 4))
    cap = layer.last_stats.capacity
    assert cap == 8
    assert [e.seen for e in experts] == layer.last_stats.expert_counts
    assert all(e.seen <= cap for e in experts)


def test_layer_without_capacity_reports_no_drops():
    layer = MixtureOfExperts([Scaled(3, 2) for _ in range(4)], COMETGate(3, 4, 2))
    layer(torch.randn(10, 3))
    s = layer.last_stats
    assert s.capacity is None and s.dropped == 0 and s.dropped_samples == 0
    assert sum(s.expert_counts) == s.routed


def test_layer_capacity_with_a_large_factor_changes_nothing():
    gate = HashGate(4, 2, n_keys=20)
    experts = [Scaled(3, 2) for _ in range(4)]
    x, keys = torch.randn(30, 3), torch.randint(0, 20, (30,))
    y0, _ = MixtureOfExperts(experts, gate)(x, keys)
    layer = MixtureOfExperts(experts, gate, capacity_factor=2.0)
    y1, _ = layer(x, keys)
    assert torch.equal(y0, y1) and layer.last_stats.dropped == 0


def test_layer_capacity_arguments():
    experts = [torch.nn.Linear(3, 1) for _ in range(4)]
    gate = TopKGate(3, 4, 2)
    with pytest.raises(ValueError, match="capacity_factor"):
        MixtureOfExperts(experts, gate, capacity_factor=0)
    with pytest.raises(TypeError, match="capacity_factor"):
        MixtureOfExperts(experts, gate, capacity_factor="1.25")
    with pytest.raises(ValueError, match="drop_order"):
        MixtureOfExperts(experts, gate, capacity_factor=1.0, drop_order="random")
    layer = MixtureOfExperts(experts, gate, capacity_factor=1.25)
    assert "capacity_factor=1.25" in repr(layer)


def test_layer_capacity_empty_batch():
    layer = MixtureOfExperts([torch.nn.Linear(3, 2) for _ in range(4)], TopKGate(3, 4, 2),
                             capacity_factor=1.0)
    y, _ = layer(torch.zeros(0, 3))
    assert y.shape == (0, 2) and layer.last_stats.routed == 0


# ------------------------------------------------------------ expert choice
def expert_choice_loop(probs, c):
    """Each expert (column) keeps its c largest scores; ties to the earlier token."""
    probs = probs.numpy()
    out = np.zeros_like(probs)
    for e in range(probs.shape[1]):
        order = sorted(range(probs.shape[0]), key=lambda t: (-probs[t, e], t))
        for t in order[:c]:
            out[t, e] = probs[t, e]
    return out


@pytest.mark.parametrize("batch,n,cf", [(64, 8, 2.0), (50, 16, 1.0), (10, 4, 0.5), (3, 8, 2.0)])
def test_expert_choice_matches_the_paper_formula(batch, n, cf):
    gate = ExpertChoiceGate(6, n, capacity_factor=cf).double()
    x = torch.randn(batch, 6, dtype=torch.float64)
    out = gate(x)
    S = torch.softmax(gate.linear(x), 1).detach()
    c = min(batch, math.ceil(cf * batch / n))
    assert gate.capacity(batch) == c
    assert np.allclose(out.weights.detach().numpy(), expert_choice_loop(S, c), atol=1e-12, rtol=0)
    assert ((out.weights != 0).sum(0) == c).all()  # every expert exactly c tokens
    assert torch.allclose(out.probs, S)
    assert (out.weights.sum(1) <= 1 + 1e-12).all()
    assert gate.k == n and gate.is_converged()


def test_expert_choice_ties_go_to_the_earlier_token():
    gate = ExpertChoiceGate(2, 4, capacity_factor=1.0)
    x = torch.zeros(8, 2)  # every token scores the same
    w = gate(x).weights
    assert torch.equal((w != 0).nonzero()[:, 0].unique(), torch.arange(2))


def test_expert_choice_in_the_layer_sparse_equals_dense():
    n = 8
    gate = ExpertChoiceGate(5, n, capacity_factor=2.0).double()
    experts = [Scaled(5, 3).double() for _ in range(n)]
    x = torch.randn(40, 5, dtype=torch.float64, requires_grad=True)
    ys, _ = MixtureOfExperts(experts, gate)(x)
    assert [e.seen for e in experts] == [10] * n  # ceil(2 * 40 / 8) tokens per expert
    gs = torch.autograd.grad(ys.sum(), [x, gate.linear.weight])
    yd, _ = MixtureOfExperts(experts, gate, combine="dense")(x)
    gd = torch.autograd.grad(yd.sum(), [x, gate.linear.weight])
    assert torch.allclose(ys, yd, atol=1e-12)
    for a, b in zip(gs, gd):
        assert torch.allclose(a, b, atol=1e-10)


def test_expert_choice_arguments():
    with pytest.raises(ValueError, match="capacity_factor"):
        ExpertChoiceGate(4, 8, capacity_factor=0.0)
    with pytest.raises(TypeError, match="capacity_factor"):
        ExpertChoiceGate(4, 8, capacity_factor=None)
    with pytest.raises(ValueError, match="in_features"):
        ExpertChoiceGate(0, 8)
    gate = ExpertChoiceGate(4, 8)
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        gate(torch.randn(5, 3))
    with pytest.raises(TypeError, match="floating"):
        gate(torch.ones(5, 4, dtype=torch.long))
    assert gate(torch.zeros(0, 4)).weights.shape == (0, 8)


def test_expert_choice_is_registered():
    from sparsecore.moe._registry import ExpertChoiceGateAdapter

    assert ExpertChoiceGateAdapter().load_gate() is ExpertChoiceGate
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[2]
    eps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps["sparsecore.adapters"]["moe.expert_choice"].endswith(":ExpertChoiceGateAdapter")
