"""sparsecore.torch.DynamicSparsifier: RigL-style prune and regrow."""
import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    BlockSparseLinear,
    DynamicSparsifier,
    NMSparseLinear,
)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(20, 16, generator=g)
        yield x, (x[:, :8] > 0).long().argmax(1)


def train(model, sparsifier, steps, check=None, lr=0.1):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for x, y in batches(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        before = {k: v["mask"].clone() for k, v in sparsifier.state.items()}
        sparsifier.step()
        if check is not None:
            check(before)


def nm_ok(mask, n, m):
    R, K = mask.shape
    return bool((mask.reshape(R, K // m, m).sum(-1) == n).all())


def test_nm_stays_valid_after_every_step():
    model = mlp()
    sp = DynamicSparsifier(nm=(2, 4), update_every=3, update_ratio=0.5, total_steps=30)
    sp.prepare(model, None)
    changed = []

    def check(before):
        for fqn, s in sp.state.items():
            assert nm_ok(s["mask"], 2, 4)
            changed.append(not torch.equal(before[fqn], s["mask"]))
            w = model.get_submodule(fqn.rpartition(".")[0]).weight
            assert not w[~s["mask"]].any()

    train(model, sp, 20, check)
    assert any(changed)
    assert sp.step_count == 20
    ups = [h for h in sp.history if h["grown"]]
    assert ups and all(h["step"] % 3 == 0 for h in ups)


def test_unstructured_keeps_nnz_and_grows_where_gradient_is_large():
    model = mlp(2)
    sp = DynamicSparsifier(sparsity=0.75, update_every=2, update_ratio=0.3,
                           schedule="constant")
    sp.prepare(model, [{"tensor_fqn": "0.weight"}])
    mask = sp.state["0.weight"]["mask"]
    nnz = int(mask.sum())
    assert nnz == round(0.25 * mask.numel())
    orig = model[0].parametrizations.weight.original

    def check(before):
        now = sp.state["0.weight"]["mask"]
        before = before["0.weight"]
        assert int(now.sum()) == nnz
        grown = now & ~before
        dropped = before & ~now
        assert not (grown & dropped).any()
        if grown.any():
            assert not orig[grown].any()  # regrown weights start at zero

    train(model, sp, 9, check)
    assert sum(h["grown"] for h in sp.history) > 0


def test_growth_picks_largest_dense_gradient():
    lin = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
    model = nn.Sequential(lin)
    sp = DynamicSparsifier(sparsity=0.5, update_every=1, update_ratio=0.5,
                           schedule="constant")
    sp.prepare(model, None)
    assert sp.state["0.weight"]["mask"].tolist() == [[True, True, False, False]]
    x = torch.tensor([[0.0, 0.0, 0.0, 5.0]])  # gradient only on the last input
    model(x).sum().backward()
    sp.step()
    # drops the smallest active (3.0), grows the inactive entry of largest |grad|
    assert sp.state["0.weight"]["mask"].tolist() == [[True, False, False, True]]
    assert model[0].parametrizations.weight.original[0, 3] == 0


def test_sparsecore_layers_are_updated_in_place():
    torch.manual_seed(3)
    model = nn.Sequential(NMSparseLinear(16, 32, 1, 4), nn.ReLU(),
                          BlockSparseLinear(32, 8, (4, 8), 0.5))
    nm_mask, block_mask = model[0].mask, model[2].block_mask
    sp = DynamicSparsifier(update_every=2, update_ratio=0.5, schedule="constant")
    sp.prepare(model, None)
    assert sp.state["0.weight"]["mask"] is nm_mask
    nblocks = int(block_mask.sum())
    start = nm_mask.clone(), block_mask.clone()

    def check(before):
        assert nm_ok(model[0].mask, 1, 4)
        assert int(model[2].block_mask.sum()) == nblocks
        x = torch.randn(3, 16)
        ref = model[2].to_dense()(torch.relu(model[0].to_dense()(x)))
        torch.testing.assert_close(model(x), ref)

    train(model, sp, 8, check)
    assert not torch.equal(start[0], model[0].mask)
    assert not torch.equal(start[1], model[2].block_mask)


def test_block_pattern_on_linear():
    model = mlp(4)
    sp = DynamicSparsifier(sparsity=0.5, block_shape=(4, 4), update_every=2,
                           update_ratio=0.5, schedule="constant")
    sp.prepare(model, [{"tensor_fqn": "0.weight"}])

    def check(before):
        mask = sp.state["0.weight"]["mask"]
        blocks = mask.reshape(8, 4, 4, 4)
        assert bool((blocks.all(dim=(1, 3)) | ~blocks.any(dim=(1, 3))).all())
        assert int(mask.sum()) == 16 * 32 // 2

    train(model, sp, 6, check)


def test_cosine_schedule_and_stop():
    sp = DynamicSparsifier(update_every=10, update_ratio=0.4, total_steps=100)
    assert sp._ratio(0) == pytest.approx(0.4)
    assert sp._ratio(50) == pytest.approx(0.2)
    assert sp._ratio(25) == pytest.approx(0.2 * (1 + math.cos(math.pi / 4)))
    assert sp._ratio(100) == 0 and not sp._is_update(100)
    assert sp._is_update(90) and not sp._is_update(95) and not sp._is_update(0)


def test_random_growth_needs_no_gradient():
    model = mlp(5)
    sp = DynamicSparsifier(sparsity=0.8, grow="random", update_every=1, schedule="constant",
                           random_state=0)
    sp.prepare(model, None)
    sp.step()
    assert sum(h["grown"] for h in sp.history) > 0


def test_missing_gradient_is_an_error():
    model = mlp(6)
    sp = DynamicSparsifier(update_every=1, schedule="constant")
    sp.prepare(model, None)
    with pytest.raises(RuntimeError, match="no dense gradient"):
        sp.step()


def test_state_dict_round_trip():
    model = mlp(7)
    sp = DynamicSparsifier(nm=(2, 4), update_every=2, update_ratio=0.5, total_steps=50)
    sp.prepare(model, None)
    train(model, sp, 5)
    sd = sp.state_dict()
    model2 = mlp(8)
    sp2 = DynamicSparsifier(nm=(2, 4), update_every=2, update_ratio=0.5, total_steps=50)
    sp2.prepare(model2, None)
    sp2.load_state_dict(sd)
    assert sp2.step_count == 5
    for fqn in sp.state:
        assert torch.equal(sp.state[fqn]["mask"], sp2.state[fqn]["mask"])
        # the loaded mask is the one the parametrization applies
        mod = model2.get_submodule(fqn.rpartition(".")[0])
        assert mod.parametrizations.weight[0].mask is sp2.state[fqn]["mask"]
    model2.load_state_dict(model.state_dict())
    x = torch.randn(4, 16)
    torch.testing.assert_close(model(x), model2(x))


def test_load_broken_nm_mask_is_an_error():
    model = mlp(9)
    sp = DynamicSparsifier(nm=(2, 4), update_every=2, total_steps=10)
    sp.prepare(model, None)
    sd = sp.state_dict()
    sd = {"state": {k: dict(v) for k, v in sd["state"].items()}, "groups": sd["groups"],
          "step_count": 0}
    sd["state"]["0.weight"]["mask"] = torch.ones(32, 16, dtype=torch.bool)
    before = sp.state["0.weight"]["mask"].clone()
    with pytest.raises(ValueError, match="not 2:4"):
        sp.load_state_dict(sd)
    assert torch.equal(sp.state["0.weight"]["mask"], before)


def test_squash_mask():
    model = mlp(10)
    sp = DynamicSparsifier(sparsity=0.5, schedule="constant")
    sp.prepare(model, None)
    sp.squash_mask()
    assert not hasattr(model[0], "parametrizations")
    assert (model[0].weight == 0).float().mean() == 0.5


def test_constructor_errors():
    with pytest.raises(ValueError, match="sparsity"):
        DynamicSparsifier(sparsity=1.0, schedule="constant")
    with pytest.raises(ValueError, match="total_steps"):
        DynamicSparsifier()
    with pytest.raises(ValueError, match="n must satisfy"):
        DynamicSparsifier(nm=(4, 4), schedule="constant")
    with pytest.raises(ValueError, match="update_ratio"):
        DynamicSparsifier(update_ratio=0, schedule="constant")
    with pytest.raises(ValueError, match="grow"):
        DynamicSparsifier(grow="momentum", schedule="constant")
    with pytest.raises(ValueError, match="not both"):
        DynamicSparsifier(nm=(2, 4), block_shape=(4, 4), schedule="constant")
    sp = DynamicSparsifier(nm=(2, 4), schedule="constant")
    with pytest.raises(ValueError, match="is 1:4 but the sparsifier asks for 2:4"):
        sp.prepare(nn.Sequential(NMSparseLinear(8, 4, 1, 4)), None)
