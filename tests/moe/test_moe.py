"""MoE gates, permutation local search and sparse dispatch (sparsecore.moe).

Tolerances: float64 comparisons with a direct formula use 1e-12 (1e-10 where
a product of many factors or a softmax is involved); float32 ones use 1e-6.
"""
import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy.optimize import linear_sum_assignment  # noqa: E402

from sparsecore import moe  # noqa: E402
from sparsecore.moe import (  # noqa: E402
    COMETGate,
    DSelectKGate,
    HashGate,
    MixtureOfExperts,
    PermutationLocalSearch,
    TopKGate,
    load_balancing_loss,
    routing_matrix,
    sinkhorn,
    smooth_step,
    to_dispatch,
)

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def saturate(gate, scale=1e12):
    """Scale the smooth-step pre-activations so every split is exactly 0 or 1."""
    with torch.no_grad():
        if isinstance(gate, COMETGate):
            gate.split_weight.mul_(scale)
            if gate.split_bias is not None:
                gate.split_bias.mul_(scale)
        elif isinstance(gate, DSelectKGate):
            if gate.static:
                gate.selector_logits.mul_(scale)
            else:
                gate.selector_weight.mul_(scale)
                gate.selector_bias.mul_(scale)
    return gate


# ---------------------------------------------------------------- smooth-step
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.01, 1.0, 7.5])
def test_smooth_step_values_and_derivative(dtype, gamma):
    t = torch.linspace(-gamma, gamma, 401, dtype=dtype, requires_grad=True)
    s = smooth_step(t, gamma)
    td = t.detach().double()
    poly = -2 * td**3 / gamma**3 + 1.5 * td / gamma + 0.5
    ref = torch.where(td <= -gamma / 2, 0.0, torch.where(td >= gamma / 2, 1.0, poly))
    assert torch.allclose(s.double(), ref, atol=10 * TOL[dtype], rtol=0)
    (grad,) = torch.autograd.grad(s.sum(), t)
    dpoly = -6 * td**2 / gamma**3 + 1.5 / gamma
    dref = torch.where((td > -gamma / 2) & (td < gamma / 2), dpoly, 0.0)
    assert torch.allclose(grad.double(), dref, atol=10 * TOL[dtype] / gamma, rtol=0)
    # exact 0 / 1 and zero gradient outside the band
    outside = td.abs() >= gamma / 2
    assert set(s.detach()[outside].tolist()) <= {0.0, 1.0}
    assert (grad[outside] == 0).all()


def test_smooth_step_is_c1_at_the_band_edges():
    g = 2.0
    for edge in (-1.0, 1.0):
        t = torch.tensor([edge - 1e-9, edge + 1e-9], dtype=torch.float64, requires_grad=True)
        s = smooth_step(t, g)
        (grad,) = torch.autograd.grad(s.sum(), t)
        assert abs(float(s[0].detach() - s[1].detach())) < 1e-8
        assert float(grad.abs().max()) < 1e-8  # derivative -> 0 at both edges
    assert float(smooth_step(torch.tensor(0.0), g)) == 0.5


@pytest.mark.parametrize("gamma", [0, -1.0, float("nan"), float("inf")])
def test_gamma_must_be_positive(gamma):
    with pytest.raises(ValueError, match="gamma"):
        smooth_step(torch.zeros(2), gamma)
    with pytest.raises(ValueError, match="gamma"):
        COMETGate(3, 4, 2, gamma=gamma)
    with pytest.raises(ValueError, match="gamma"):
        DSelectKGate(3, 4, 2, gamma=gamma)


def test_gamma_type():
    with pytest.raises(TypeError, match="gamma"):
        DSelectKGate(3, 4, 2, gamma="1")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("make", [
    lambda k: TopKGate(3, 4, k),
    lambda k: HashGate(4, k),
    lambda k: DSelectKGate(3, 4, k),
    lambda k: DSelectKGate(None, 4, k),
    lambda k: COMETGate(3, 4, k),
])
def test_k_larger_than_n_experts(make):
    with pytest.raises(ValueError, match=r"k must be <= n_experts.*k=5 of 4"):
        make(5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        make(0)
    with pytest.raises(TypeError, match="k must be an int"):
        make(2.0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="n_experts must be >= 1"):
        TopKGate(3, 0, 1)
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        COMETGate(0, 4, 2)
    with pytest.raises(ValueError, match="noise must be one of"):
        TopKGate(3, 4, 2, noise="gumbel")
    with pytest.raises(ValueError, match="unreachable must be one of"):
        DSelectKGate(3, 5, 2, unreachable="ignore")
    with pytest.raises(ValueError, match="entropy_reg"):
        COMETGate(3, 4, 2, entropy_reg=-1.0)
    with pytest.raises(ValueError, match="load_balance"):
        TopKGate(3, 4, 2, load_balance=-0.1)


@pytest.mark.parametrize("gate", [TopKGate(3, 4, 2), DSelectKGate(3, 4, 2), COMETGate(3, 4, 2)])
def test_bad_routing_input(gate):
    with pytest.raises(ValueError, match=r"shape \(batch, 3\), got \(5, 2\)"):
        gate(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="shape"):
        gate(torch.zeros(5))
    with pytest.raises(TypeError, match="floating dtype"):
        gate(torch.zeros(5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gate(np.zeros((5, 3), dtype=np.float32))


def test_hash_gate_bad_keys():
    gate = HashGate(4, 2, n_keys=10)
    with pytest.raises(TypeError, match="integer tensor"):
        gate(torch.zeros(3))
    with pytest.raises(ValueError, match="1-D"):
        gate(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        gate(torch.tensor([1, -1]))
    with pytest.raises(ValueError, match="< n_keys=10"):
        gate(torch.tensor([1, 10]))


# ------------------------------------------------------------------- top-k
@pytest.mark.parametrize("n,k", [(1, 1), (5, 1), (5, 3), (6, 6), (64, 8)])
def test_topk_is_softmax_over_the_k_largest(n, k):
    gate = TopKGate(4, n, k).double()
    x = torch.randn(50, 4, dtype=torch.float64)
    out = gate(x)
    logits = gate.linear(x)
    ref = torch.zeros_like(logits)
    for b in range(50):
        top = torch.argsort(logits[b], descending=True)[:k]
        ref[b, top] = torch.softmax(logits[b, top], 0)
    assert torch.allclose(out.weights, ref, atol=1e-12)
    assert (out.nnz == k).all() and gate.is_converged()
    assert torch.equal(gate.nnz_per_sample(), out.nnz)


@pytest.mark.parametrize("noise", ["shazeer", "jitter"])
def test_topk_noise_only_in_training(noise):
    gate = TopKGate(4, 8, 2, noise=noise)
    if noise == "shazeer":
        with torch.no_grad():
            gate.noise_linear.bias.fill_(3.0)  # large noise
    x = torch.randn(200, 4)
    gate.eval()
    a, b = gate(x).weights, gate(x).weights
    assert torch.equal(a, b)
    gate.train()
    c = gate(x).weights
    assert not torch.equal(a, c)
    assert (gate(x).nnz == 2).all()


def test_topk_load_balance_loss():
    gate = TopKGate(4, 8, 2, load_balance=0.5)
    out = gate(torch.randn(64, 4))
    assert set(out.aux_losses) == {"load_balance"}
    assert float(out.aux_losses["load_balance"].detach()) > 0


# -------------------------------------------------------------------- hash
def test_hash_gate_table_and_hashing():
    for gate in (HashGate(7, 3, n_keys=20, seed=4), HashGate(7, 3, seed=4)):
        keys = torch.tensor([0, 5, 19, 5, 3])
        out = gate(keys)
        assert torch.equal(out.nnz, torch.full((5,), 3))
        assert torch.allclose(out.weights.sum(1), torch.ones(5))
        assert set(out.weights.unique().tolist()) == {0.0, float(torch.tensor(1 / 3))}
        assert torch.equal(out.weights[1], out.weights[3])  # same key, same experts
    a = HashGate(16, 1, seed=0)(torch.arange(1000)).weights.argmax(1)
    b = HashGate(16, 1, seed=1)(torch.arange(1000)).weights.argmax(1)
    assert not torch.equal(a, b)
    counts = torch.bincount(a, minlength=16)
    assert counts.min() > 30  # roughly uniform (expected 62.5)
    big = HashGate(4, 2)(torch.tensor([2**62, 0]))
    assert torch.equal(big.nnz, torch.tensor([2, 2]))


# --------------------------------------------------------------- DSelect-k
def keras_dselect_k(x, Wz, bz, Ww, bw, n, k, gamma):
    """NumPy re-derivation of the Keras DSelect-k layer (google-research,
    dselect_k_moe.py): returns (q over all 2^m codes, unnormalised weights
    over the first n codes, the unreachable regulariser summed over the batch)."""
    m = math.ceil(math.log2(n))
    z = (x @ Wz + bz).reshape(-1, k, m)
    R = np.where(z <= -gamma / 2, 0.0, np.where(z >= gamma / 2, 1.0,
                 -2 * z**3 / gamma**3 + 1.5 * z / gamma + 0.5))
    codes = np.array([[int(c) for c in np.binary_repr(l, m)] for l in range(2**m)])
    q = np.ones((x.shape[0], k, 2**m))
    for l in range(2**m):
        for t in range(m):
            q[:, :, l] *= np.where(codes[l, t] == 1, R[:, :, t], 1 - R[:, :, t])
    logits = x @ Ww + bw
    alpha = np.exp(logits - logits.max(1, keepdims=True))
    alpha /= alpha.sum(1, keepdims=True)
    g = (alpha[:, :, None] * q[:, :, :n]).sum(1)
    reg = (1.0 / q[:, :, :n].sum(-1)).sum()
    return q, g, reg, alpha


@pytest.mark.parametrize("n,k,unreachable", [(8, 2, "mask"), (8, 3, "penalty"), (16, 4, "mask"),
                                             (5, 2, "penalty"), (11, 3, "penalty")])
def test_dselect_k_matches_numpy_rederivation_of_keras(n, k, unreachable):
    gamma = 2.0
    gate = DSelectKGate(6, n, k, gamma=gamma, unreachable=unreachable, entropy_reg=0.0).double()
    with torch.no_grad():  # weights that put the selectors inside and outside the band
        # (the penalty is infinite once a selector saturates on a code >= n)
        gate.selector_weight.normal_(0, 1.5 if unreachable == "mask" else 0.1)
        gate.selector_bias.normal_(0, 0.5 if unreachable == "mask" else 0.1)
        gate.weight_weight.normal_(0, 1)
    x = torch.randn(40, 6, dtype=torch.float64)
    out = gate(x)
    q, g, reg, alpha = keras_dselect_k(
        x.numpy(), gate.selector_weight.detach().numpy().T, gate.selector_bias.detach().numpy(),
        gate.weight_weight.detach().numpy().T, gate.weight_bias.detach().numpy(), n, k, gamma)
    R, _ = gate.selector_outputs(x)
    assert np.allclose(gate.selector_probabilities(R).detach().numpy(), q, atol=1e-12)
    if n & (n - 1) == 0:
        assert np.allclose(out.weights.detach().numpy(), g, atol=1e-12)
    else:  # ours is renormalised over the real experts
        norm = (alpha * q[:, :, :n].sum(-1)).sum(1, keepdims=True)
        assert np.allclose(out.weights.detach().numpy(), g / norm, atol=1e-12)
        assert math.isclose(float(out.aux_losses["unreachable"].detach()), reg / 40, rel_tol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 6, 7, 9, 13])
def test_dselect_k_mask_puts_no_mass_on_unreachable_codes(n):
    gate = DSelectKGate(4, n, 2, gamma=1.0).double()
    with torch.no_grad():
        gate.selector_weight.normal_(0, 3.0)  # many selectors saturated, some at codes >= n
        gate.selector_bias.fill_(5.0)  # pushes every bit towards 1 -> the largest codes
    x = torch.randn(100, 4, dtype=torch.float64)
    R, _ = gate.selector_outputs(x)
    q = gate.selector_probabilities(R)
    assert q.shape[-1] == n  # only real experts exist
    assert torch.allclose(q.sum(-1), torch.ones_like(q.sum(-1)), atol=1e-12)
    out = gate(x)
    assert torch.allclose(out.weights.sum(1), torch.ones(100, dtype=torch.float64), atol=1e-12)
    assert (out.weights >= 0).all()
    # compare to the Keras codes: the mask only redirects mass of codes >= n
    saturate(gate)
    out = gate(x)
    assert gate.is_converged() and (out.nnz <= 2).all()
    assert torch.allclose(out.weights.sum(1), torch.ones(100, dtype=torch.float64), atol=1e-12)


def test_dselect_k_penalty_regulariser_is_at_least_k():
    gate = DSelectKGate(4, 5, 3, unreachable="penalty")
    out = gate(torch.randn(30, 4))
    assert float(out.aux_losses["unreachable"].detach()) >= 3 - 1e-6
    assert torch.allclose(out.weights.sum(1), torch.ones(30), atol=1e-6)


@pytest.mark.parametrize("n,k", [(1, 1), (2, 2), (5, 2), (16, 4), (33, 3)])
def test_dselect_k_static_and_converged_sparsity(n, k):
    gate = DSelectKGate(None, n, k)
    x = torch.randn(9, 7)  # only the batch size matters
    out = gate(x)
    assert out.weights.shape == (9, n)
    assert torch.allclose(out.weights, out.weights[:1].expand(9, -1))
    assert torch.allclose(out.weights.sum(1), torch.ones(9), atol=1e-6)
    saturate(gate)
    out = gate(x)
    assert gate.is_converged() and (out.nnz <= k).all()


def test_dselect_k_entropy_is_batch_mean():
    gate = DSelectKGate(3, 8, 2, entropy_reg=1.0).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    e1 = gate(x).aux_losses["entropy"]
    e2 = gate(torch.cat([x, x])).aux_losses["entropy"]
    assert torch.allclose(e1, e2, atol=1e-12)


# ------------------------------------------------------------------- COMET
def comet_reference(gate, x):
    """Direct evaluation of the COMET formulas, leaf by leaf (float64)."""
    n, k = gate.n_experts, gate.k
    z = x @ gate.split_weight.detach().T.double()
    if gate.split_bias is not None:
        z = z + gate.split_bias.detach().double()
    z = z.reshape(x.shape[0], n - 1, k)
    r = smooth_step(z, gate.gamma)
    a = (x @ gate.leaf_weight.detach().T.double() + gate.leaf_bias.detach().double()).reshape(-1, n, k)
    P = torch.ones(x.shape[0], n, k, dtype=torch.float64)
    for leaf in range(n):
        node = n - 1 + leaf
        while node > 0:
            parent = (node - 1) // 2
            left = node == 2 * parent + 1
            P[:, leaf] *= r[:, parent] if left else 1 - r[:, parent]
            node = parent
    num = P * torch.exp(a)
    g = num / num.sum((1, 2), keepdim=True)
    return P, g.sum(2)


@pytest.mark.parametrize("n,k", [(1, 1), (2, 1), (3, 2), (5, 3), (8, 2), (16, 4), (12, 12)])
def test_comet_matches_direct_formula_and_leaves_sum_to_one(n, k):
    gate = COMETGate(5, n, k, gamma=1.0).double()
    with torch.no_grad():
        gate.split_weight.normal_(0, 0.7)  # mix of saturated and soft splits
        gate.leaf_weight.normal_(0, 1)
    x = torch.randn(60, 5, dtype=torch.float64)
    out = gate(x)
    P_ref, g_ref = comet_reference(gate, x)
    P = gate.leaf_probabilities(gate.split_probabilities(x))
    assert torch.allclose(P, P_ref.transpose(1, 2), atol=1e-12)
    assert torch.allclose(P.sum(-1), torch.ones(60, k, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out.weights, g_ref, atol=1e-10)
    assert torch.allclose(out.weights.sum(1), torch.ones(60, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("n,k", [(2, 1), (5, 2), (16, 2), (16, 4), (7, 7)])
def test_comet_nnz_at_most_k_once_converged(n, k):
    gate = COMETGate(4, n, k)
    x = torch.randn(500, 4)
    assert not gate.is_converged(x)
    saturate(gate)
    out = gate(x)
    assert gate.is_converged()
    assert (out.nnz <= k).all() and (out.nnz >= 1).all()
    assert torch.allclose(out.weights.sum(1), torch.ones(500), atol=1e-6)
    assert torch.isfinite(out.weights).all()
    # saturated trees give exactly one leaf with P = 1 per tree
    P = gate.leaf_probabilities(gate.split_probabilities(x))
    assert torch.equal((P == 1).sum(-1), torch.ones(500, k, dtype=torch.long))


def test_comet_training_drives_samples_to_exact_sparsity():
    """The entropy regulariser saturates the splits of most samples: their
    weights become exactly k-sparse (samples within gamma/2 of a split stay
    soft until the split moves away from them)."""
    torch.manual_seed(1)
    x = torch.randn(256, 3)
    target = (x[:, :1] > 0).float() * 2 - 1
    gate = COMETGate(3, 4, 2, gamma=0.5, entropy_reg=1.0)
    experts = torch.nn.Linear(3, 4)
    assert (gate.nnz_per_sample(x) <= 2).float().mean() == 0
    opt = torch.optim.Adam([*gate.parameters(), *experts.parameters()], lr=0.05)
    for _ in range(300):
        out = gate(x)
        loss = ((out.weights * experts(x)).sum(1, keepdim=True) - target).pow(2).mean()
        loss = loss + sum(out.aux_losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (gate.nnz_per_sample(x) <= 2).float().mean() > 0.8


def test_comet_gradients_vanish_through_saturated_splits():
    gate = saturate(COMETGate(4, 8, 2))
    out = gate(torch.randn(32, 4))
    (out.weights[:, 0]).sum().backward()
    assert float(gate.split_weight.grad.abs().max()) == 0.0
    assert float(gate.leaf_weight.grad.abs().max()) > 0.0


# ----------------------------------------------------------- local search
def test_sinkhorn_is_doubly_stochastic():
    logits = torch.randn(3, 6, 6, dtype=torch.float64)
    P = sinkhorn(logits, 200)
    assert torch.allclose(P.sum(-2), torch.ones(3, 6, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(P.sum(-1), torch.ones(3, 6, dtype=torch.float64), atol=1e-6)
    # at a low temperature it approaches the maximum-weight permutation
    hard = sinkhorn(logits[0] / 0.05, 2000)
    rows, cols = linear_sum_assignment(-logits[0].numpy())
    assert torch.equal(hard.argmax(1), torch.from_numpy(cols))


def test_local_search_schedules():
    ls = PermutationLocalSearch(TopKGate(3, 5, 2), 10, tau=(1e-3, 1e-7), sinkhorn_iters=(20, 150))
    assert math.isclose(ls.temperature(), 1e-3) and ls.iterations() == 20
    for _ in range(5):
        ls.step()
    assert math.isclose(ls.temperature(), 1e-5, rel_tol=1e-9) and ls.iterations() == 85
    for _ in range(4):
        ls.step()
    assert ls.searching
    ls.step()
    assert not ls.searching and math.isclose(ls.temperature(), 1e-7)


@pytest.mark.parametrize("make", [
    lambda: TopKGate(4, 6, 2),
    lambda: DSelectKGate(4, 6, 2),
    lambda: COMETGate(4, 6, 3),
    lambda: HashGate(6, 2, n_keys=50),
])
def test_local_search_hardens_by_hungarian_and_permutes_exactly(make):
    inner = make()
    ls = PermutationLocalSearch(inner, 3, tau=(1.0, 0.5))
    is_hash = isinstance(inner, HashGate)
    x = torch.randint(0, 50, (40,)) if is_hash else torch.randn(40, 4)
    ls.train()
    out = ls(x)  # soft permutation: weights on the simplex
    assert torch.allclose(out.weights.sum(1), torch.ones(40), atol=1e-5)
    assert "permutation_entropy" in out.aux_losses
    out.weights[:, 0].sum().backward()
    assert ls.logits.grad is not None and float(ls.logits.grad.abs().max()) > 0
    soft = ls._last_soft.clone()
    for _ in range(3):
        ls.step()
    assert not ls.searching
    for j, matrix in enumerate(soft.double().numpy()):
        rows, cols = linear_sum_assignment(-matrix)
        assert torch.equal(ls.assignment[j], torch.from_numpy(cols))
    parts, _, _ = inner.expert_parts(x)
    expected = torch.zeros(40, 6)
    for j in range(parts.shape[1]):
        expected[:, ls.assignment[j]] += parts[:, j]
    out = ls(x)
    assert torch.allclose(out.weights, expected, atol=1e-6)
    assert torch.equal(out.nnz, (expected != 0).sum(1))


def test_local_search_converged_only_with_a_hard_permutation():
    ls = PermutationLocalSearch(saturate(COMETGate(4, 8, 2)), 5)
    x = torch.randn(30, 4)
    ls.train()
    ls(x)
    assert not ls.is_converged()  # soft permutation: dense weights
    ls.eval()
    out = ls(x)  # eval uses the Hungarian permutation even while searching
    assert ls.is_converged() and (out.nnz <= 2).all()
    ls.train()
    ls.harden()
    assert not ls.searching and ls.is_converged(x)


def test_local_search_arguments():
    with pytest.raises(TypeError, match="Gate"):
        PermutationLocalSearch(torch.nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match="n_permutations must be 1 or gate.n_parts=3"):
        PermutationLocalSearch(COMETGate(2, 4, 3), 3, n_permutations=2)
    with pytest.raises(ValueError, match="search_steps must be >= 0"):
        PermutationLocalSearch(TopKGate(2, 4, 2), -1)
    with pytest.raises(ValueError, match="tau must be positive"):
        PermutationLocalSearch(TopKGate(2, 4, 2), 3, tau=(0, 1e-7))
    shared = PermutationLocalSearch(COMETGate(2, 4, 3), 3, n_permutations=1)
    assert shared.logits.shape == (1, 4, 4)
    assert PermutationLocalSearch(TopKGate(2, 4, 2), 0).searching is False


# ------------------------------------------------------- mixture of experts
class Counting(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.lin = torch.nn.Linear(d_in, d_out)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[0])
        return torch.tanh(self.lin(x))


@pytest.mark.parametrize("gate_fn", [
    lambda: TopKGate(6, 8, 2),
    lambda: TopKGate(6, 8, 5),
    lambda: COMETGate(6, 8, 3),                    # soft: every expert
    lambda: saturate(COMETGate(6, 8, 2)),          # converged: <= 2 experts
    lambda: DSelectKGate(6, 7, 2),
])
def test_sparse_dispatch_equals_dense(gate_fn):
    gate = gate_fn().double()
    experts = [Counting(6, 3).double() for _ in range(gate.n_experts)]
    x = torch.randn(64, 6, dtype=torch.float64, requires_grad=True)
    sparse = MixtureOfExperts(experts, gate, combine="sparse")
    dense = MixtureOfExperts(experts, gate, combine="dense")
    ys, _ = sparse(x)
    gs = torch.autograd.grad(ys.pow(2).sum(), [x, *sparse.parameters()], allow_unused=True)
    yd, _ = dense(x)
    gd = torch.autograd.grad(yd.pow(2).sum(), [x, *dense.parameters()], allow_unused=True)
    assert torch.allclose(ys, yd, atol=1e-12)
    for a, b in zip(gs, gd):
        a = torch.zeros(()) if a is None else a
        b = torch.zeros(()) if b is None else b
        assert torch.allclose(a.double(), b.double(), atol=1e-10)


def test_only_selected_experts_run_on_their_samples():
    gate = TopKGate(4, 16, 2)
    experts = [Counting(4, 2) for _ in range(16)]
    moe_layer = MixtureOfExperts(experts, gate)
    x = torch.randn(100, 4)
    moe_layer(x)
    counts = (moe_layer.last_gate_output.weights != 0).sum(0).tolist()
    assert [sum(e.seen) for e in experts] == counts
    assert sum(sum(e.seen) for e in experts) == 200  # k * batch, not n * batch


def test_moe_multidimensional_outputs_and_routing_input():
    gate = HashGate(4, 2, n_keys=10)
    experts = [torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Unflatten(1, (2, 3))) for _ in range(4)]
    layer = MixtureOfExperts(experts, gate)
    x = torch.randn(12, 5)
    keys = torch.randint(0, 10, (12,))
    y, aux = layer(x, routing_x=keys)
    yd, _ = MixtureOfExperts(experts, gate, combine="dense")(x, keys)
    assert y.shape == (12, 2, 3) and torch.allclose(y, yd, atol=1e-6)
    assert aux == {}


def test_moe_empty_batch():
    layer = MixtureOfExperts([torch.nn.Linear(3, 2) for _ in range(4)], TopKGate(3, 4, 2))
    y, _ = layer(torch.zeros(0, 3))
    assert y.shape == (0, 2)


def test_moe_load_balance_aux():
    layer = MixtureOfExperts([torch.nn.Linear(3, 2) for _ in range(4)], COMETGate(3, 4, 2),
                             load_balance=0.1)
    _, aux = layer(torch.randn(16, 3))
    assert set(aux) == {"entropy", "moe_load_balance"}


def test_moe_mismatched_expert_output_shapes():
    experts = [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2), torch.nn.Linear(3, 5)]
    for combine in ("sparse", "dense"):
        layer = MixtureOfExperts(experts, DSelectKGate(None, 3, 3), combine=combine)
        with pytest.raises(ValueError, match=r"same output shape.*experts\[2\] gives \(batch, 5\)"):
            layer(torch.randn(8, 3))


def test_moe_bad_arguments():
    gate = TopKGate(3, 4, 2)
    with pytest.raises(ValueError, match="n_experts=4 experts but 3 were given"):
        MixtureOfExperts([torch.nn.Linear(3, 1)] * 3, gate)
    with pytest.raises(TypeError, match="gate must be a sparsecore.moe.Gate"):
        MixtureOfExperts([torch.nn.Linear(3, 1)] * 4, torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match=r"experts\[1\]"):
        MixtureOfExperts([torch.nn.Linear(3, 1), "expert"] * 2, gate)
    with pytest.raises(TypeError, match="sequence of modules"):
        MixtureOfExperts(torch.nn.Linear(3, 1), gate)
    with pytest.raises(ValueError, match="combine"):
        MixtureOfExperts([torch.nn.Linear(3, 1)] * 4, gate, combine="fast")
    layer = MixtureOfExperts([torch.nn.Linear(3, 1)] * 4, HashGate(4, 1, n_keys=5))
    with pytest.raises(ValueError, match=r"expected \(6, 4\)"):
        layer(torch.randn(6, 3), routing_x=torch.arange(5))


# ----------------------------------------------- dispatch tensors and losses
def test_to_dispatch_matches_a_loop():
    torch.manual_seed(3)
    w = TopKGate(4, 5, 2)(torch.randn(30, 4)).weights.detach()
    for capacity in (1, 4, 30):
        combine, mask = to_dispatch(w, capacity)
        assert combine.shape == mask.shape == (30, 5, capacity) and mask.dtype == torch.bool
        ref = torch.zeros(30, 5, capacity)
        fill = [0] * 5
        for s, e in itertools.product(range(30), range(5)):
            if w[s, e] != 0:
                if fill[e] < capacity:
                    ref[s, e, fill[e]] = w[s, e]
                fill[e] += 1
        assert torch.equal(combine, ref)
        assert torch.equal(mask, ref != 0)
        assert (mask.sum((0, 2)) <= capacity).all()  # no expert above capacity


def test_to_dispatch_errors():
    w = torch.rand(4, 3)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        to_dispatch(w, 0)
    with pytest.raises(TypeError, match="capacity must be an int"):
        to_dispatch(w, 1.5)
    with pytest.raises(ValueError, match=r"shape \(samples, experts\)"):
        to_dispatch(w[0], 2)
    with pytest.raises(TypeError, match="floating"):
        to_dispatch(w.long(), 2)


def test_load_balancing_loss():
    uniform = torch.full((8, 4), 0.25)
    assert math.isclose(float(load_balancing_loss(uniform)), 1.0, rel_tol=1e-6)
    onehot = torch.zeros(8, 4)
    onehot[:, 0] = 1
    assert math.isclose(float(load_balancing_loss(onehot)), 4.0, rel_tol=1e-6)
    w = TopKGate(3, 4, 2)(torch.randn(50, 3)).weights
    mask = (w != 0).float()
    ref = 4 * ((mask.sum(0) / mask.sum()) * w.mean(0)).sum()
    assert torch.allclose(load_balancing_loss(w), ref)


def test_routing_matrix_is_canonical_csr():
    w = saturate(COMETGate(3, 6, 2))(torch.randn(40, 3)).weights.detach()
    R = routing_matrix(w)
    assert R.has_canonical_format and R.shape == (40, 6)
    assert np.array_equal(R.toarray(), w.numpy())
    assert R.nnz == int((w != 0).sum())


# -------------------------------------------------------------- experiments
def test_synthetic_routing_data():
    from sparsecore._bench import moe_experiments as ex

    d = ex.make_routing_regression(n_samples=4000, seed=1)
    W = d["weights"]
    assert d["structure"] == "trees"
    assert d["X"].shape == (4000, 10) and W.shape == (4000, 16) and d["experts"].shape == (4000, 2)
    assert np.allclose(W.sum(1), 1, atol=1e-6)
    nnz = (W > 0).sum(1)
    # k = 2 trees; a sample whose two trees pick the same expert has one (as in COMET)
    assert nnz.max() == 2 and 0.8 < (nnz == 2).mean() < 1.0
    assert all(set(np.flatnonzero(W[i])) == set(d["experts"][i]) for i in range(0, 4000, 37))
    for j in range(2):  # balanced leaves in each tree
        assert np.bincount(d["leaves"][:, j], minlength=16).min() >= 4000 // 16 - 2
    resid = d["y"] - (W * (d["X"] @ d["beta"].T + d["intercept"])).sum(1)
    assert abs(resid.std() - 0.1) < 0.01
    # weights vary inside a (leaf, leaf) cell: the softmax of linear leaf logits
    cell = (d["leaves"][:, 0] == 3) & (d["leaves"][:, 1] == 5) & (nnz == 2)
    assert W[cell].max(1).std() > 0.01


def test_synthetic_routing_is_in_comets_model_class():
    """COMET with the generator's hyperplanes and leaf logits reproduces the
    true routing (float32 tolerance), so the experiment can be solved."""
    from sparsecore._bench import moe_experiments as ex

    d = ex.make_routing_regression(n_samples=3000, seed=4)
    gate = ex.comet_from_truth(d).eval()
    with torch.no_grad():
        w = gate(torch.from_numpy(d["X"])).weights.numpy()
    # the hyperplanes pass through sample medians: the few samples on (or within
    # float32 rounding of) a hyperplane are split softly, every other one exactly
    off = np.abs(w - d["weights"]).max(1) > 1e-5
    assert off.sum() <= 2 * 2 * 15
    with pytest.raises(ValueError, match="structure='trees'"):
        ex.comet_from_truth(ex.make_routing_regression(n_samples=100, structure="leaf_pairs"))


def test_synthetic_leaf_pairs_is_not_identifiable():
    """The first reading (one tree, a fixed pair per leaf): each leaf's target
    is one linear function, so one expert per leaf fits it to the noise floor
    and the true pairs cannot be recovered from (x, y)."""
    from sparsecore._bench import moe_experiments as ex

    d = ex.make_routing_regression(n_samples=4000, seed=1, structure="leaf_pairs")
    assert ((d["weights"] > 0).sum(1) == 2).all()
    assert np.bincount(d["leaves"][:, 0], minlength=16).min() >= 4000 // 16 - 2
    A = np.c_[d["X"], np.ones(4000)].astype(np.float64)
    sse = 0.0
    for leaf in range(16):
        m = d["leaves"][:, 0] == leaf
        coef = np.linalg.lstsq(A[m], d["y"][m], rcond=None)[0]
        sse += float(((d["y"][m] - A[m] @ coef) ** 2).sum())
    assert sse / 4000 < 1.05 * 0.1**2  # the noise floor, with 1 expert per sample
    with pytest.raises(ValueError, match="structure must be one of"):
        ex.make_routing_regression(n_samples=10, structure="tree")


def test_routing_f1_is_label_invariant():
    from sparsecore._bench import moe_experiments as ex

    d = ex.make_routing_regression(n_samples=500, seed=2)
    W = torch.from_numpy(d["weights"])
    perm = torch.randperm(16)
    f1, matching = ex.routing_f1(W[:, perm], W)
    assert f1 == 1.0 and torch.equal(torch.from_numpy(matching), perm)
    dense = torch.full_like(W, 1 / 16)
    f1_dense, _ = ex.routing_f1(dense, W)
    n_true = int((W > 0).sum())  # every true slot is hit by the dense routing
    assert math.isclose(f1_dense, 2 * n_true / (16 * 500 + n_true), rel_tol=1e-6)


def test_run_synthetic_smoke():
    from sparsecore._bench import moe_experiments as ex

    rows = ex.run_synthetic(gates=("oracle", "topk", "comet+"), n_samples=1000, epochs=2,
                            search_epochs=1)
    assert [r["gate"] for r in rows] == ["oracle", "topk", "comet+"]
    assert rows[0]["f1"] == 1.0 and rows[0]["oracle_ratio"] == 1.0
    assert all(np.isfinite(r["test_mse"]) for r in rows)


def test_run_synthetic_from_the_true_routing():
    from sparsecore._bench import moe_experiments as ex

    rows = ex.run_synthetic(gates=("oracle", "comet@truth"), n_samples=1000, epochs=2)
    assert [r["gate"] for r in rows] == ["oracle", "comet@truth"]
    assert rows[1]["f1"] > 0.97 and rows[1]["frac_le_k"] > 0.97
    with pytest.raises(ValueError, match="structure='trees'"):
        ex.run_synthetic(gates=("comet@truth",), n_samples=200, epochs=1, structure="leaf_pairs")
