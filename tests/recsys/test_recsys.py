"""sparsecore.recsys: the DSL trainer's invariants and schedule, the
recommender estimator, metrics and splits.

Everything runs on small synthetic data on the CPU. Tolerances: float32
model outputs against float64 references use rtol 1e-5 (atol 1e-6);
schedule values and metrics are compared to their formulas at 1e-12.
"""
import math

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsecore import plugins  # noqa: E402
from sparsecore.recsys import (  # noqa: E402
    DSLRecommender,
    DSLTrainer,
    as_interactions,
    cosine_update_ratio,
    ndcg_at_k,
    recall_at_k,
    train_test_split_per_user,
)


def synthetic(n_users=60, n_items=80, n_groups=4, p_in=0.3, p_out=0.02, seed=0):
    """Block-structured implicit data: users mostly like their group's items."""
    rng = np.random.default_rng(seed)
    gu = rng.integers(0, n_groups, n_users)
    gi = rng.integers(0, n_groups, n_items)
    p = np.where(gu[:, None] == gi[None, :], p_in, p_out)
    X = (rng.random((n_users, n_items)) < p).astype(np.float32)
    X[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1  # nobody empty
    return sp.csr_array(X)


def bpr_batch(U, V, gen, b=64):
    u = torch.randint(0, U.shape[0], (b,), generator=gen)
    i = torch.randint(0, V.shape[0], (b,), generator=gen)
    j = torch.randint(0, V.shape[0], (b,), generator=gen)
    return -torch.nn.functional.logsigmoid((U[u] * V[i]).sum(1) - (U[u] * V[j]).sum(1)).mean()


# --------------------------------------------------------------- schedule
def test_cosine_update_ratio_formula():
    T, p0, pmin = 1000, 0.5, 0.005
    for t in (0, 1, 250, 500, 999, 1000, 5000):
        expected = pmin + 0.5 * (p0 - pmin) * (1 + math.cos(math.pi * min(t, T) / T))
        assert abs(cosine_update_ratio(t, T, p0, pmin) - expected) < 1e-12
    assert cosine_update_ratio(0, T, p0, pmin) == pytest.approx(p0, abs=1e-15)
    assert cosine_update_ratio(T, T, p0, pmin) == pytest.approx(pmin, abs=1e-15)
    arr = cosine_update_ratio(np.arange(0, 1001, 100), T, p0, pmin)
    assert arr.shape == (11,) and np.all(np.diff(arr) < 0)


def make_trainer(support="unstructured", grow="gradient", budget="per_tensor", opt="adam",
                 density=0.3, interval=5, total=120, seed=0, shapes=((30, 8), (50, 8))):
    gen = torch.Generator().manual_seed(seed)
    params = {f"t{n}": torch.nn.Parameter(torch.randn(*s, generator=gen)) for n, s in enumerate(shapes)}
    if opt == "adam":
        o = torch.optim.Adam(params.values(), lr=0.05)
    elif opt == "adamw":
        o = torch.optim.AdamW(params.values(), lr=0.05, weight_decay=0.1, amsgrad=True)
    else:
        o = torch.optim.SGD(params.values(), lr=0.1, momentum=0.9)
    tr = DSLTrainer(params, o, density=density, total_steps=total, update_interval=interval,
                    grow=grow, budget=budget, support=support, random_state=seed)
    return tr, params, o, gen


# --------------------------------------------------------------- invariants
@pytest.mark.parametrize("support", ["unstructured", "aligned"])
@pytest.mark.parametrize("grow", ["gradient", "accumulated", "random"])
@pytest.mark.parametrize("budget", ["per_tensor", "shared"])
@pytest.mark.parametrize("opt", ["adam", "adamw", "sgd"])
def test_invariants_at_every_update(support, grow, budget, opt):
    tr, params, o, gen = make_trainer(support, grow, budget, opt)
    U, V = params["t0"], params["t1"]
    nnz0 = tr.nnz()
    groups = tr.budgets
    updates = 0
    for step in range(1, 121):
        loss = bpr_batch(U, V, gen)
        o.zero_grad()
        loss.backward()
        masks_before = {n: m.clone() for n, m in tr.masks.items()}
        n_hist = len(tr.history)
        tr.step()
        updated = len(tr.history) > n_hist
        assert updated == (step % 5 == 0 and step < 120)
        for name, p in params.items():  # masked weights are exactly 0 after every step
            assert torch.all(p.detach()[~tr.masks[name]] == 0)
        if not updated:
            assert all(torch.equal(masks_before[n], tr.masks[n]) for n in params)
            continue
        updates += 1
        rec = tr.history[-1]
        # the schedule's value at this step
        expected_ratio = 0.005 + 0.5 * (0.5 - 0.005) * (1 + math.cos(math.pi * step / 120))
        assert abs(rec["ratio"] - expected_ratio) < 1e-12
        nnz = tr.nnz()
        for g in groups:  # the non-zeros of every budget are unchanged
            assert sum(nnz[n] for n in g) == sum(nnz0[n] for n in g)
            before = sum(nnz0[n] for n in g)
            total = sum(params[n].numel() for n in g)
            moved = sum(tr.last_update[n]["pruned"].numel() for n in g)
            k = min(math.ceil(expected_ratio * before), before, total - before)
            assert moved == sum(tr.last_update[n]["grown"].numel() for n in g)
            assert moved == k if support == "unstructured" else moved <= k
        for name, p in params.items():
            pruned, grown = tr.last_update[name]["pruned"], tr.last_update[name]["grown"]
            # pruned and grown sets are disjoint, and describe the mask change
            assert not set(pruned.tolist()) & set(grown.tolist())
            old, new = masks_before[name].flatten(), tr.masks[name].flatten()
            assert torch.all(old[pruned]) and not torch.any(new[pruned])
            assert not torch.any(old[grown]) and torch.all(new[grown])
            # regrown weights start at exactly 0 ...
            assert torch.all(p.detach().flatten()[grown] == 0)
            # ... and the optimizer state of every masked entry is reset
            for key, value in o.state[p].items():
                if torch.is_tensor(value) and value.shape == p.shape:
                    assert torch.all(value[~tr.masks[name]] == 0), key
            if support == "aligned":  # every row keeps a prefix
                lengths = tr.masks[name].sum(1)
                assert torch.equal(tr.masks[name], torch.arange(p.shape[1])[None, :] < lengths[:, None])
    assert updates == 23


def test_grown_weights_are_zero_before_their_first_update():
    tr, params, o, gen = make_trainer(interval=3, total=30)
    U, V = params["t0"], params["t1"]
    for step in range(1, 10):
        o.zero_grad()
        bpr_batch(U, V, gen).backward()
        tr.step()
        if tr.last_update and tr.history[-1]["step"] == step:
            grown = {n: r["grown"].clone() for n, r in tr.last_update.items()}
            # the next step's forward pass sees them at 0
            for n, idx in grown.items():
                assert torch.all(params[n].detach().flatten()[idx] == 0)


def test_magnitude_prune_and_gradient_growth_choose_the_extremes():
    gen = torch.Generator().manual_seed(1)
    W = torch.nn.Parameter(torch.randn(40, 10, generator=gen))
    o = torch.optim.SGD([W], lr=0.0)  # lr 0: weights keep their values
    tr = DSLTrainer([W], o, density=0.5, total_steps=100, update_interval=1, random_state=0)
    mask0 = tr.masks["0"].clone()
    w0 = W.detach().clone()
    grad = torch.randn(40, 10, generator=gen)
    W.grad = grad.clone()
    tr.step()
    rec = tr.last_update["0"]
    flat_w, flat_g, flat_m = w0.abs().flatten(), grad.abs().flatten(), mask0.flatten()
    kept = flat_m.clone()
    kept[rec["pruned"]] = False
    # every pruned weight is no larger than every kept active one
    assert flat_w[rec["pruned"]].max() <= flat_w[kept].min()
    # every grown entry has a gradient at least as large as any other
    # inactive entry (entries pruned at this update are not candidates)
    others = ~flat_m.clone()
    others[rec["grown"]] = False
    assert flat_g[rec["grown"]].min() >= flat_g[others].max()


def test_aligned_prune_removes_cheapest_suffixes():
    W = torch.nn.Parameter(torch.tensor([[5.0, 4.0, 0.1, 0.2], [3.0, 0.5, 9.0, 8.0]]))
    o = torch.optim.SGD([W], lr=0.0)
    tr = DSLTrainer([W], o, density=1.0, total_steps=10, update_interval=1, support="aligned")
    assert tr.masks["0"].all()  # density 1: nothing masked
    tr = DSLTrainer([W], o, density=0.5, total_steps=10, support="aligned",
                    sparse_init="magnitude")
    # suffix maxima: row 0 -> [5, 4, 0.2, 0.2], row 1 -> [9, 9, 9, 8]; the four
    # cheapest keys (0.2, 0.2, 4, 5) are all of row 0, later columns first
    np.testing.assert_array_equal(tr.masks["0"].numpy(),
                                  [[False, False, False, False], [True, True, True, True]])
    W2 = torch.nn.Parameter(torch.tensor([[5.0, 4.0, 0.1, 0.2], [3.0, 0.5, 9.0, 0.3]]))
    tr = DSLTrainer([W2], torch.optim.SGD([W2], lr=0.0), density=0.5, total_steps=10,
                    support="aligned", sparse_init="magnitude")
    # keys row 0 -> [5, 4, 0.2, 0.2], row 1 -> [9, 9, 9, 0.3]: 0.2, 0.2, 0.3, 4
    np.testing.assert_array_equal(tr.masks["0"].numpy(),
                                  [[True, False, False, False], [True, True, True, False]])


def test_static_mask_and_dense_training():
    tr, params, o, gen = make_trainer(interval=None)
    masks = {n: m.clone() for n, m in tr.masks.items()}
    for _ in range(20):
        o.zero_grad()
        bpr_batch(params["t0"], params["t1"], gen).backward()
        tr.step()
    assert not tr.history
    assert all(torch.equal(masks[n], tr.masks[n]) for n in masks)
    # density 1 is plain training: identical to the optimizer alone
    torch.manual_seed(3)
    A = torch.nn.Parameter(torch.randn(10, 4))
    B = torch.nn.Parameter(A.detach().clone())
    oa, ob = torch.optim.Adam([A], lr=0.1), torch.optim.Adam([B], lr=0.1)
    trb = DSLTrainer([B], ob, density=1.0, total_steps=50, update_interval=2)
    for _ in range(10):
        for P, opt in ((A, oa), (B, ob)):
            opt.zero_grad()
            (P.sin().sum() + P.square().sum()).backward()
        oa.step()
        trb.step()
    assert torch.equal(A, B)


def test_sparse_embedding_gradients():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(40, 6, sparse=True)
    o = torch.optim.SGD(emb.parameters(), lr=0.1)
    tr = DSLTrainer(emb, o, density=0.25, total_steps=60, update_interval=4, random_state=0,
                    grow="accumulated")
    nnz = tr.nnz()
    assert list(nnz) == ["weight"]
    for _ in range(40):
        idx = torch.randint(0, 40, (16,))
        o.zero_grad()
        emb(idx).pow(2).sum().backward()
        assert emb.weight.grad.is_sparse
        tr.step()
        assert tr.nnz() == nnz
        assert torch.all(emb.weight.detach()[~tr.masks["weight"]] == 0)
    assert len(tr.history) == 10  # steps 4, 8, ..., 40


def test_trainer_state_dict_round_trip():
    tr, params, o, gen = make_trainer()
    for _ in range(12):
        o.zero_grad()
        bpr_batch(params["t0"], params["t1"], gen).backward()
        tr.step()
    state = tr.state_dict()
    tr2, *_ = make_trainer(seed=5)
    tr2.load_state_dict(state)
    assert all(torch.equal(tr.masks[n], tr2.masks[n]) for n in tr.masks)
    assert tr2.step_count == 12 and len(tr2.history) == 2


def test_trainer_errors():
    p = torch.nn.Parameter(torch.randn(5, 3))
    o = torch.optim.Adam([p])
    for density in (0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="density must be in"):
            DSLTrainer([p], o, density=density, total_steps=10)
    with pytest.raises(TypeError, match="density must be a real"):
        DSLTrainer([p], o, density="0.5", total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        DSLTrainer([p], o, density=0.5, total_steps=0)
    with pytest.raises(ValueError, match="grow must be one of"):
        DSLTrainer([p], o, density=0.5, total_steps=10, grow="momentum")
    with pytest.raises(ValueError, match="prune must be one of"):
        DSLTrainer([p], o, density=0.5, total_steps=10, prune="random")
    with pytest.raises(ValueError, match="update_ratio_min"):
        DSLTrainer([p], o, density=0.5, total_steps=10, update_ratio=0.1, update_ratio_min=0.2)
    with pytest.raises(TypeError, match="optimizer must be"):
        DSLTrainer([p], "adam", density=0.5, total_steps=10)
    q = torch.nn.Parameter(torch.randn(2, 2))
    with pytest.raises(ValueError, match="not optimised by the given optimizer"):
        DSLTrainer([p, q], o, density=0.5, total_steps=10)
    with pytest.raises(ValueError, match="without nn.Embedding"):
        DSLTrainer(torch.nn.Linear(3, 3), o, density=0.5, total_steps=10)
    r = torch.nn.Parameter(torch.randn(2, 2, 2))
    with pytest.raises(ValueError, match="support='aligned' needs 2-D"):
        DSLTrainer([r], torch.optim.SGD([r], lr=1), density=0.5, total_steps=10, support="aligned")
    with pytest.raises(ValueError, match="budget groups must cover"):
        DSLTrainer({"a": p}, o, density=0.5, total_steps=10, budget=[["a"], ["b"]])
    with pytest.raises(ValueError, match="budget groups must cover"):
        DSLTrainer([p], o, density=0.5, total_steps=10, budget=[])


# --------------------------------------------------------------- data and metrics
def test_split_per_user(rng):
    R = synthetic()
    tr, te = train_test_split_per_user(R, 0.2, random_state=0)
    assert (tr.multiply(te)).nnz == 0
    assert abs(tr + te - as_interactions(R)).sum() == 0
    counts = np.diff(as_interactions(R).indptr)
    np.testing.assert_array_equal(np.diff(te.indptr), np.minimum(np.round(0.2 * counts), counts - 1))
    tr2, te2 = train_test_split_per_user(R, 0.2, random_state=0)
    assert abs(tr - tr2).sum() == 0
    with pytest.raises(ValueError, match="test_size"):
        train_test_split_per_user(R, 1.0)


def test_metrics_against_formulas():
    truth = sp.csr_array(np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]]))
    rec = np.array([[2, 1, 0], [3, 4, 1]])
    users = np.array([0, 1])
    assert abs(recall_at_k(rec, truth, users) - (2 / 3 + 1 / 1) / 2) < 1e-12
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    dcg1, idcg1 = 1 / math.log2(4), 1.0
    assert abs(ndcg_at_k(rec, truth, users) - (dcg0 / idcg0 + dcg1 / idcg1) / 2) < 1e-12


def test_interaction_input_errors():
    with pytest.raises(ValueError, match="out of range"):
        as_interactions((np.array([0, 5]), np.array([1, 1])), n_users=3)
    with pytest.raises(ValueError, match="out of range"):
        as_interactions((np.array([0, -1]), np.array([1, 1])))
    with pytest.raises(ValueError, match="no interactions"):
        as_interactions(sp.csr_array((3, 4)))
    with pytest.raises(ValueError, match="0 feature"):
        as_interactions(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="0 sample"):
        as_interactions(sp.csr_array((0, 4)))
    with pytest.raises(ValueError, match="Negative values"):
        as_interactions(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        as_interactions(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="Expected 2D"):
        as_interactions(np.ones(3))
    with pytest.raises(TypeError, match="integer ids"):
        as_interactions((np.array([0.5]), np.array([1])))
    with pytest.raises(ValueError, match="differ in length"):
        as_interactions((np.array([0, 1]), np.array([1])))


# --------------------------------------------------------------- estimator
# on_empty="ignore": a per-user split may leave an item without training data
FAST = dict(n_factors=8, epochs=30, batch_size=256, lr=0.05, l2=1e-3, update_interval=4,
            on_empty="ignore")


@pytest.fixture(scope="module")
def data():
    R = synthetic()
    return (R, *train_test_split_per_user(R, 0.2, random_state=1))


@pytest.fixture(scope="module")
def fitted(data):
    _, train, _ = data
    return {
        "dense": DSLRecommender(density=1.0, random_state=0, **FAST).fit(train),
        "dsl": DSLRecommender(density=0.3, random_state=0, **FAST).fit(train),
        "static": DSLRecommender(density=0.3, random_state=0, **{**FAST, "update_interval": None}).fit(train),
        "aligned": DSLRecommender(density=0.3, support="aligned", random_state=0, **FAST).fit(train),
    }


def brute_force(U, V, seen, users, k):
    S = (U.toarray().astype(np.float64) @ V.toarray().T.astype(np.float64))[users]
    S[seen[users].toarray() > 0] = np.nan
    out = []
    for row in S:
        cols = np.flatnonzero(~np.isnan(row))
        out.append(cols[np.lexsort((cols, -row[cols]))][:k])
    return np.array(out)


@pytest.mark.parametrize("name", ["dense", "dsl", "static", "aligned"])
def test_recommend_matches_brute_force(fitted, data, name):
    rec = fitted[name]
    _, train, _ = data
    users = np.array([0, 3, 7, 59])
    items, scores = rec.recommend(users, k=10)
    ref = brute_force(rec.user_embeddings_, rec.item_embeddings_, train, users, 10)
    S = rec.user_embeddings_.toarray() @ rec.item_embeddings_.toarray().T
    np.testing.assert_allclose(scores, np.take_along_axis(S[users], items, 1), rtol=1e-5, atol=1e-6)
    # the same items unless two scores tie to float32 precision
    gaps = np.abs(np.diff(np.sort(S[users], 1), axis=1)).min()
    if gaps > 1e-5:
        np.testing.assert_array_equal(items, ref)
    seen = train[users].toarray() > 0
    assert not np.any(np.take_along_axis(seen, items, 1))
    # without exclusion seen items come back
    items_all, _ = rec.recommend(users, k=10, exclude_seen=False)
    assert np.any(np.take_along_axis(seen, items_all, 1))


def test_sparsity_and_budget(fitted):
    for name in ("dsl", "static", "aligned"):
        rec = fitted[name]
        rep = rec.sparsity_report_
        for tname, E in rec.embeddings_.items():
            t = rep["tensors"][tname]
            assert E.nnz <= t["nnz"] == round(0.3 * np.prod(t["shape"]))
            assert t["density"] == pytest.approx(0.3, abs=1e-2)
        assert rep["user_nnz"].sum() == rep["tensors"]["user"]["nnz"]
        mu = rec.trainer_.masks["user"].double()
        mi = rec.trainer_.masks["item"].double()
        assert rep["shared_support"] == pytest.approx(float((mu @ mi.T).mean()), rel=1e-12)
    # DSL aligns supports: more shared dimensions than the static mask
    assert fitted["dsl"].sparsity_report_["shared_support"] > fitted["static"].sparsity_report_["shared_support"]
    al = fitted["aligned"].trainer_.masks["user"]
    assert torch.equal(al, torch.arange(8)[None, :] < al.sum(1)[:, None])


def test_flops_and_memory(fitted):
    dense = fitted["dense"].flops_
    assert dense["train_ratio"] == 1 and dense["inference_ratio"] == 1
    n_params = (60 + 80) * 8
    assert dense["memory_dense_bytes"] == n_params * 4
    for name in ("dsl", "static", "aligned"):
        f = fitted[name].flops_
        assert f["train"] < f["train_dense"] == dense["train_dense"]
        assert f["inference"] < f["inference_dense"]
        E = fitted[name].embeddings_
        assert f["memory_bytes"] == sum(e.nnz * 8 + (e.shape[0] + 1) * 4 for e in E.values())
        assert f["memory_values_bytes"] == sum(e.nnz * 4 for e in E.values())
    # exact inference count: sum over dims of (#users using it) x (#items using it)
    m = fitted["static"].trainer_.masks
    assert fitted["static"].flops_["inference"] == int((m["user"].sum(0) * m["item"].sum(0)).sum())


def test_history_and_learning(fitted, data):
    R, train, test = data
    rec = fitted["dsl"]
    steps = 30 * math.ceil(train.nnz / 256)
    assert len(rec.history_) == (steps - 1) // 4
    for h in rec.history_:
        assert h["pruned"] == h["grown"] > 0 or h["ratio"] < 0.01
        assert {"step", "epoch", "ratio", "loss", "nnz"} <= set(h)
    assert len(fitted["static"].history_) == 0


def test_models_learn_block_structure():
    # a larger block-structured set (4 groups of about 25 items; test recall
    # of a random ranking is about 20 / 92): every trained model learns the
    # groups, and prune-and-grow beats the fixed random mask it starts from
    R = synthetic(n_users=200, n_items=100, p_in=0.4, p_out=0.01, seed=3)
    train, test = train_test_split_per_user(R, 0.2, random_state=1)
    kw = dict(n_factors=8, epochs=20, batch_size=256, lr=0.05, l2=1e-3, random_state=0,
              on_empty="ignore")
    recall = {
        name: DSLRecommender(**kw, **extra).fit(train).score(test, metric="recall@20")
        for name, extra in [("dense", dict(density=1.0)),
                            ("dsl", dict(density=0.3, update_interval=5)),
                            ("aligned", dict(density=0.3, update_interval=5, support="aligned")),
                            ("static", dict(density=0.3, update_interval=None))]
    }
    chance = 20 / 92
    for name in ("dense", "dsl", "aligned"):
        assert recall[name] > 2 * chance, recall
    assert min(recall["dsl"], recall["aligned"]) > 1.3 * recall["static"], recall


def test_validation_history(data):
    _, train, test = data
    rec = DSLRecommender(density=0.3, random_state=0, **{**FAST, "epochs": 3}).fit(
        train, validation_data=test, validation_metric="ndcg@10")
    assert rec.history_ and all(0 <= h["validation"] <= 1 for h in rec.history_)


def test_score_matches_metric_functions(fitted, data):
    _, _, test = data
    rec = fitted["dsl"]
    users = np.flatnonzero(np.diff(test.indptr))
    items, _ = rec.recommend(users, k=20)
    assert rec.score(test, metric="recall@20") == pytest.approx(recall_at_k(items, test, users), abs=1e-12)
    assert rec.score(test, metric="ndcg@20") == pytest.approx(ndcg_at_k(items, test, users), abs=1e-12)


def test_pairs_input_and_determinism(data):
    _, train, _ = data
    coo = sp.coo_array(train)
    kw = dict(density=0.3, random_state=7, **{**FAST, "epochs": 3})
    a = DSLRecommender(**kw).fit(train)
    b = DSLRecommender(**kw).fit((coo.row, coo.col), n_users=train.shape[0], n_items=train.shape[1])
    assert abs(a.user_embeddings_ - b.user_embeddings_).max() == 0
    c = DSLRecommender(**{**kw, "random_state": 8}).fit(train)
    assert abs(a.user_embeddings_ - c.user_embeddings_).max() > 0
    copy = train.copy()
    DSLRecommender(**kw).fit(train)
    assert abs(copy - train).sum() == 0 and train.dtype == copy.dtype


@pytest.mark.parametrize("budget", ["per_tensor", "shared_user_item"])
def test_shared_budget_split_moves(data, budget):
    _, train, _ = data
    rec = DSLRecommender(density=0.3, budget=budget, random_state=0, **FAST).fit(train)
    rep = rec.sparsity_report_
    total = (rep["tensors"]["user"]["nnz"] + rep["tensors"]["item"]["nnz"])
    assert total == round(0.3 * 60 * 8) + round(0.3 * 80 * 8) or total == round(0.3 * 140 * 8)
    if budget == "per_tensor":
        assert rep["user_density"] == pytest.approx(0.3, abs=1e-2)


def test_lightgcn_sparse_propagation_matches_torch(data):
    _, train, test = data
    rec = DSLRecommender(model="lightgcn", density=0.3, n_layers=2, random_state=0,
                         **{**FAST, "epochs": 5}).fit(train)
    with torch.no_grad():
        users, items = rec.model_.propagate()
    np.testing.assert_allclose(rec.user_embeddings_.toarray(), users.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec.item_embeddings_.toarray(), items.numpy(), rtol=1e-5, atol=1e-6)
    assert rec.flops_["train"] < rec.flops_["train_dense"]
    assert 0 <= rec.score(test) <= 1


def test_neumf(data):
    _, train, test = data
    rec = DSLRecommender(model="neumf", density=0.3, mlp_layers=(8, 4), random_state=0,
                         budget="shared_user_item", **{**FAST, "epochs": 5}).fit(train)
    assert rec.user_embeddings_ is None and set(rec.embeddings_) == {
        "gmf_user", "gmf_item", "mlp_user", "mlp_item"}
    users = np.array([1, 2, 40])
    items, scores = rec.recommend(users, k=5)
    with torch.no_grad():
        full = torch.stack([rec.model_.pair_scores(torch.full((80,), u), torch.arange(80))
                            for u in users]).numpy()
    full[train[users].toarray() > 0] = -np.inf
    np.testing.assert_allclose(scores, -np.sort(-full, 1)[:, :5], rtol=1e-5, atol=1e-6)
    assert rec.flops_["inference"] < rec.flops_["inference_dense"]
    assert 0 <= rec.score(test, metric="ndcg@20") <= 1


def test_estimator_errors(fitted, data):
    _, train, test = data
    rec = fitted["dsl"]
    with pytest.raises(ValueError, match=r"k must be in \[1, 80\]"):
        rec.recommend([0], k=81)
    with pytest.raises(ValueError, match=r"k must be in \[1, 80\]"):
        rec.recommend([0], k=0)
    with pytest.raises(ValueError, match="users has id 60 out of range"):
        rec.recommend([0, 60])
    with pytest.raises(ValueError, match="out of range"):
        rec.recommend([-1])
    with pytest.raises(ValueError, match="metric must look like"):
        rec.score(test, metric="auc")
    with pytest.raises(ValueError, match="X has 79 features"):
        rec.score(test[:, :79])
    with pytest.raises(ValueError, match="density must be in"):
        DSLRecommender(density=0).fit(train)
    with pytest.raises(ValueError, match="density must be in"):
        DSLRecommender(density=1.2).fit(train)
    with pytest.raises(ValueError, match="model must be one of"):
        DSLRecommender(model="svd").fit(train)
    with pytest.raises(ValueError, match="no interactions"):
        DSLRecommender().fit(sp.csr_array((4, 5)))
    with pytest.raises(ValueError, match="out of range"):
        DSLRecommender().fit((np.array([0, 1]), np.array([0, 9])), n_items=5)
    with pytest.raises(ValueError, match="validation_data has shape"):
        DSLRecommender(**{**FAST, "epochs": 1}).fit(train, validation_data=sp.csr_array(np.ones((3, 3))))


def test_users_or_items_without_interactions():
    X = np.zeros((4, 5), dtype=np.float32)
    X[[0, 1, 3], [0, 2, 4]] = 1  # user 2 and items 1, 3 have no interaction
    fast = dict(n_factors=2, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"1 of 4 users \(2\) and 2 of 5 items \(1, 3\)"):
        DSLRecommender(**fast).fit(X)
    with pytest.raises(ValueError, match=r"1 of 4 users \(2\)"):  # pairs with n_users beyond
        DSLRecommender(**fast).fit((np.array([0, 1, 3]), np.array([0, 1, 0])), n_users=4)
    with pytest.warns(UserWarning, match="2 of 5 items"):
        DSLRecommender(on_empty="warn", **fast).fit(X)
    rec = DSLRecommender(on_empty="ignore", **fast).fit(X)
    assert rec.recommend([2], k=2)[0].shape == (1, 2)
    with pytest.raises(ValueError, match="on_empty must be one of"):
        DSLRecommender(on_empty="drop", **fast).fit(X)


def test_registered_as_trainer_adapter():
    plugins.refresh_adapters()
    info = plugins.list_adapters()["recsys"]
    assert info.kind == "trainer" and info.available
    assert info.install == 'pip install "sparsecore[recsys]"'
    assert plugins.load_adapter("recsys").DSLRecommender is DSLRecommender


# on_empty="ignore": sklearn's generated inputs (integer or sparse) have all-zero rows
@parametrize_with_checks([DSLRecommender(n_factors=4, epochs=2, batch_size=64, random_state=0,
                                         on_empty="ignore")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_movielens_dsl_beats_static_mask(movielens_home):
    from sparsecore.datasets import fetch_movielens

    R = fetch_movielens("100k", data_home=movielens_home, download_if_missing=False).to_csr()
    train, test = train_test_split_per_user(R, 0.2, random_state=0)
    kw = dict(density=0.2, epochs=15, l2=1e-2, random_state=0, on_empty="ignore")
    dsl = DSLRecommender(support="aligned", **kw).fit(train)
    static = DSLRecommender(update_interval=None, **kw).fit(train)
    r_dsl, r_static = dsl.score(test), static.score(test)
    assert r_dsl > 1.5 * r_static and r_dsl > 0.2
    assert dsl.flops_["train_ratio"] < 0.3
