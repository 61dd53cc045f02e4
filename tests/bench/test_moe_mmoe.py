"""The scaled-down DSelect-k / COMET protocols (sparsecore._bench.moe_mmoe):
search spaces, the summaries (best by validation loss, top fraction, tuning
budget curve) against direct computations, and a tiny training of every gate
on generated stand-ins for MovieLens and MNIST."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparsecore._bench import moe_mmoe as mm  # noqa: E402
from sparsecore.datasets import MovieLensRatings, make_movielens_multitask, make_multimnist  # noqa: E402


def test_sample_config_stays_in_the_search_space():
    rng = np.random.default_rng(0)
    for dataset, p in mm.PROTOCOL.items():
        for gate in mm.GATES:
            for _ in range(20):
                cfg = mm.sample_config(dataset, gate, rng)
                assert p["lr"][0] <= cfg["lr"] <= p["lr"][1]
                if gate.startswith(("dselect_k", "comet")):
                    assert p["entropy"][0] <= cfg["entropy"] <= p["entropy"][1]
                    assert cfg["gamma"] in p["gamma"]
                else:
                    assert "gamma" not in cfg
                if gate == "comet+":
                    assert cfg["gamma"] == p["comet+_gamma"]
                assert ("search_epochs" in cfg) == gate.endswith("+")


def fake_rows(values):
    """values[gate] = list over seeds of list over trials of (val_loss, metric)."""
    rows = []
    for gate, seeds in values.items():
        for s, trials in enumerate(seeds):
            for t, (v, m) in enumerate(trials):
                rows.append({"dataset": "movielens", "gate": gate, "seed": s, "trial": t,
                             "val_loss": v, "test_auc": m, "frac_le_k": 1.0, "seconds": 1.0})
    return rows


def test_summarize_against_direct_computation():
    rng = np.random.default_rng(1)
    vals = {g: [[(float(rng.random()), float(rng.random())) for _ in range(10)]
                for _ in range(4)] for g in ("topk", "comet+")}
    vals["topk"][2][3] = (math.inf, math.nan)  # a diverged trial is never picked
    rows = fake_rows(vals)
    out = mm.summarize(rows, "movielens", gates=("topk", "comet+"), budgets=[1, 40], draws=4000)
    for gate in ("topk", "comet+"):
        per_seed = [min((t for t in seed if math.isfinite(t[0])))[1] for seed in vals[gate]]
        assert np.allclose(out[gate]["per_seed"], per_seed)
        flat = sorted((t for seed in vals[gate] for t in seed if math.isfinite(t[0])))
        assert out[gate]["top_n"] == 2  # 5 % of 40 trials
        assert math.isclose(out[gate]["top"], np.mean([m for _, m in flat[:2]]))
        # budget = all trials: the overall best by validation; budget 1: the mean metric
        assert math.isclose(out[gate]["curve"]["metric"][1], flat[0][1])
        finite = [m for seed in vals[gate] for v, m in seed if math.isfinite(v)]
        assert abs(out[gate]["curve"]["metric"][0] - np.mean(finite)) < 0.03
    wins, n = mm.paired_wins(out, "comet+", "topk")
    ref = sum(a > b for a, b in zip(out["comet+"]["per_seed"], out["topk"]["per_seed"]))
    assert (wins, n) == (ref, 4)


def test_budget_to_reach():
    curve = {"budgets": [1, 2, 5, 10], "metric": [0.5, 0.8, 0.99, 1.0]}
    assert mm.budget_to_reach(curve) == 10
    assert mm.budget_to_reach(curve, fraction=0.02) == 5
    assert mm.budget_to_reach(curve, reference=2.0) is None


@pytest.fixture
def tiny_data(monkeypatch):
    """Generated stand-ins in the driver's data cache (no download needed)."""
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    users = np.repeat(np.arange(n_users), 10).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, 10, replace=False) for _ in range(n_users)])
    ratings = MovieLensRatings(users=users, items=items.astype(np.int32),
                               ratings=rng.integers(1, 6, len(users)).astype(np.float32),
                               timestamps=np.zeros(len(users), np.int64),
                               n_users=n_users, n_items=n_items, variant="fake")
    ml = make_movielens_multitask(ratings, negatives=1, split=(0.7875, 0.1125, 0.1),
                                  stratify=True)
    y = np.repeat(np.arange(10), 8)
    mn = make_multimnist(rng.random((80, 784), dtype=np.float32), y)
    mn["keys"] = mm._lsh_keys(mn["images"].reshape(len(mn["images"]), -1))
    monkeypatch.setitem(mm._DATA, ("movielens", 0), ml)
    monkeypatch.setitem(mm._DATA, ("multimnist", 0), mn)


@pytest.mark.parametrize("dataset", ["movielens", "multimnist"])
def test_every_gate_trains_and_is_evaluated(tiny_data, dataset):
    sizes = {"max_train": 200, "max_val": 60, "epochs": 2, "batch": 64}
    for gate in mm.GATES:
        row = mm.run_trial(dataset, 0, gate, 0, sizes=sizes)
        assert row["gate"] == gate and row["epochs"] == 2 and 1 <= row["best_epoch"] <= 2
        assert math.isfinite(row["val_loss"])
        metric = row[mm.METRIC[dataset]]
        assert 0.0 <= metric <= 1.0
        if gate in ("topk", "hash", "topk+", "hash+"):
            assert row["frac_le_k"] == 1.0  # exactly k-sparse by construction
        if gate == "softmax":
            assert row["frac_le_k"] == 0.0  # every one of the 16 experts
    again = mm.run_trial(dataset, 0, "comet+", 0, sizes=sizes)  # the last gate, rerun
    assert again["val_loss"] == row["val_loss"]  # deterministic given (seed, trial)


def test_local_search_gates_share_one_permutation():
    gates = mm._make_gates("topk+", {"search_epochs": 1}, 8, 16, 2, None, 5, 0)
    assert gates[0].logits is gates[1].logits
    gates = mm._make_gates("comet+", {"gamma": 1.0, "entropy": 0.1, "search_epochs": 1},
                           8, 16, 2, None, 5, 0)
    assert gates[0].n_permutations == 1
    with pytest.raises(ValueError, match="unknown gate"):
        mm._make_gates("switch", {}, 8, 16, 2, None, 5, 0)
