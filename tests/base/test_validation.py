"""The shared scalar checks: scikit-learn's semantics (TypeError for a wrong
type, ValueError out of range), and the deprecated import paths."""
import importlib
import math

import numpy as np
import pytest

from sparsecore._validation import check_choice, check_scalar


@pytest.mark.parametrize("value, kind, expected", [
    (3, int, 3), (np.int64(3), int, 3), (2, float, 2.0), (np.float32(0.5), float, 0.5),
])
def test_check_scalar_accepts_and_converts(value, kind, expected):
    out = check_scalar(value, "x", kind, min_val=0)
    assert out == expected and type(out) is kind


@pytest.mark.parametrize("value, kind", [
    (True, int), (np.True_, int), (2.0, int), ("3", int), (None, float), (False, float),
    (1 + 0j, float),
])
def test_check_scalar_wrong_type_is_a_type_error(value, kind):
    with pytest.raises(TypeError, match="x must be"):
        check_scalar(value, "x", kind)


@pytest.mark.parametrize("kwargs, value, message", [
    (dict(min_val=1), 0, r"x must be >= 1, got 0"),
    (dict(min_val=0, include_boundaries="right"), 0.0, r"x must be > 0, got 0.0"),
    (dict(max_val=1, include_boundaries="left"), 1.0, r"x must be < 1, got 1.0"),
    (dict(min_val=0, max_val=1, include_boundaries="left"), 1.0, r"x must be in \[0, 1\), got 1.0"),
    (dict(), math.nan, "x must be finite"),
    (dict(min_val=0), math.inf, "x must be >= 0, got inf"),
])
def test_check_scalar_out_of_range_is_a_value_error(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        check_scalar(value, "x", float, **kwargs)


def test_check_scalar_infinity_when_allowed():
    assert check_scalar(math.inf, "x", float, min_val=0, finite=False) == math.inf
    with pytest.raises(ValueError):
        check_scalar(math.nan, "x", float, finite=False)


def test_check_choice():
    assert check_choice("svd", "method", ("svd", "power")) == "svd"
    assert check_choice(np.str_("power"), "method", ("svd", "power")) == "power"
    for bad in ["SVD", None, True, np.zeros(2), ["svd"]]:
        with pytest.raises(ValueError, match="method must be one of 'svd', 'power'"):
            check_choice(bad, "method", ("svd", "power"))
    with pytest.raises(ValueError):
        check_choice(True, "k", (1, 2))   # a bool never stands for 1


@pytest.mark.parametrize("old, name, new", [
    ("sparsecore.plugins", "list_gates", "sparsecore.moe"),
    ("sparsecore.plugins", "GateAdapter", "sparsecore.moe"),
    ("sparsecore.moe.experiments", "make_routing_regression", "sparsecore.datasets"),
    ("sparsecore.recsys.experiments", "make_block_interactions", "sparsecore.datasets"),
    ("sparsecore.recsys.experiments", "TUNED_L2", "sparsecore._bench.recsys_experiments"),
    ("sparsecore.torch.examples", "train_digits", "sparsecore._bench.torch_digits"),
])
def test_moved_names_warn_and_still_work(old, name, new):
    pytest.importorskip("torch")
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_moved_name_renamed():
    pytest.importorskip("torch")
    from sparsecore.datasets import make_movielens_multitask

    with pytest.warns(DeprecationWarning, match="make_movielens_multitask"):
        from sparsecore.moe.experiments import make_movielens_two_task
    assert make_movielens_two_task is make_movielens_multitask
