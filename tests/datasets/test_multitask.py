"""The multi-task data of the MoE papers: make_multimnist and the
COMET-style options of make_movielens_multitask (exact comparisons: the
builders copy and add float32 pixels, so the sums are exact)."""
import numpy as np
import pytest

from sparsecore.datasets import MovieLensRatings, make_movielens_multitask, make_multimnist


def fake_digits(n_per_class=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class)
    X = (rng.random((len(y), 784)) < 0.2).astype(np.float32) * rng.random((len(y), 784),
                                                                           dtype=np.float32)
    return X, y


def test_multimnist_overlays_two_images_of_the_same_part():
    X, y = fake_digits()
    X0 = X.copy()
    d = make_multimnist(X, y, seed=3)
    assert np.array_equal(X, X0)  # input not modified
    imgs, labels = d["images"], d["labels"]
    assert imgs.shape == (240, 36, 36) and imgs.dtype == np.float32
    assert labels.shape == (240, 2) and labels.dtype == np.int64
    parts = [d["train"], d["val"], d["test"]]
    assert sorted(np.concatenate(parts).tolist()) == list(range(240))
    # 20 % of each class to test, 1/6 of the rest to validation; 2 partners per base
    assert [len(p) for p in parts] == [2 * 80, 2 * 20, 2 * 20]
    digits = X.reshape(-1, 28, 28)
    src = d["sources"]
    assert np.array_equal(labels, y[src])
    for part in parts:
        for i in part:
            a, b = src[i]
            ref = np.zeros((36, 36), np.float32)
            ref[:28, :28] += digits[a]
            ref[8:, 8:] += digits[b]
            assert np.array_equal(imgs[i], ref) and a != b
        # every base image used twice, with partners from the same part
        assert np.array_equal(np.bincount(src[part, 0], minlength=len(X)),
                              np.bincount(src[part, 1], minlength=len(X)))
        assert set(np.bincount(src[part, 0])[np.unique(src[part, 0])]) == {2}
        assert set(src[part, 1]) <= set(src[part, 0])


def test_multimnist_parts_are_stratified_and_disjoint():
    X, y = fake_digits(30)
    d = make_multimnist(X, y, seed=0, partners=1)
    for part in ("train", "val", "test"):
        counts = np.bincount(d["labels"][d[part], 0], minlength=10)
        assert counts.min() == counts.max()
    assert not set(d["train"]) & set(d["test"])


def test_multimnist_arguments():
    X, y = fake_digits(8)
    with pytest.raises(ValueError, match="X must have shape"):
        make_multimnist(X[:, :100], y)
    with pytest.raises(ValueError, match="y must have shape"):
        make_multimnist(X, y[:-1])
    with pytest.raises(TypeError, match="integer labels"):
        make_multimnist(X, y.astype(float))
    with pytest.raises(ValueError, match="test_size"):
        make_multimnist(X, y, test_size=1.0)
    with pytest.raises(ValueError, match="partners"):
        make_multimnist(X, y, partners=0)
    with pytest.raises(ValueError, match="at least 2 images"):
        make_multimnist(X[:10], np.arange(10))
    d = make_multimnist(X.reshape(-1, 28, 28), y, partners=3)
    assert len(d["images"]) == 3 * len(X)


def fake_ratings(n_users=60, n_items=80, per_user=15, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False)
                            for _ in range(n_users)]).astype(np.int32)
    return MovieLensRatings(users=users, items=items,
                            ratings=rng.integers(1, 6, len(users)).astype(np.float32),
                            timestamps=np.zeros(len(users), np.int64), n_users=n_users,
                            n_items=n_items, variant="fake")


def test_movielens_comet_split_one_negative_per_rating():
    r = fake_ratings()
    d = make_movielens_multitask(r, negatives=1, seed=2, split=(0.7875, 0.1125, 0.1),
                                 stratify=True)
    n = len(r)
    assert len(d["users"]) == 2 * n and d["watched"].sum() == n
    seen = set(zip(r.users.tolist(), r.items.tolist()))
    neg = d["watched"] == 0
    assert not seen & set(zip(d["users"][neg].tolist(), d["items"][neg].tolist()))
    assert (d["rating"][neg] == 0).all() and (d["rating"][~neg] >= 1).all()
    parts = [d["train"], d["val"], d["test"]]
    assert sorted(np.concatenate(parts).tolist()) == list(range(2 * n))
    for part, frac in zip(parts, (0.7875, 0.1125, 0.1)):
        assert d["watched"][part].mean() == 0.5  # stratified: the same share everywhere
        assert abs(len(part) - frac * 2 * n) <= 2


def test_movielens_default_split_unchanged_and_errors():
    r = fake_ratings()
    d = make_movielens_multitask(r, seed=0)
    assert len(d["users"]) == 5 * len(r)
    assert len(d["train"]) == int(0.8 * 5 * len(r))
    with pytest.raises(ValueError, match="split"):
        make_movielens_multitask(r, split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="negatives"):
        make_movielens_multitask(r, negatives=-1)
