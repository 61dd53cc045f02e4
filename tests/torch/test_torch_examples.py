"""The digits training example of sparsecore.torch, in reduced form (fewer
epochs than ``python -m sparsecore._bench.torch_digits``)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sparsecore.torch import BlockSparseLinear, NMSparseLinear  # noqa: E402
from sparsecore._bench.torch_digits import digits_mlp, load_digits_split, train_digits  # noqa: E402


@pytest.fixture(scope="module")
def results():
    data = load_digits_split(0)
    return {kind: train_digits(kind, epochs=12, data=data) for kind in ("dense", "nm", "block")}


def test_sparse_models_learn_the_digits(results):
    dense = results["dense"]["accuracy"]
    assert dense >= 0.93
    # reduced training (12 epochs, one seed): a looser margin than the full
    # example's 1 point goal (30 epochs: dense 0.979, 2:4 0.979, block 0.971
    # over seeds 0-2; here dense 0.976, 2:4 0.976, block 0.964)
    for kind in ("nm", "block"):
        assert results[kind]["accuracy"] >= dense - 0.03, (kind, results[kind]["accuracy"], dense)


def test_sparse_models_keep_their_structure(results):
    nm = results["nm"]["model"]
    for layer in (nm[0], nm[2]):
        assert isinstance(layer, NMSparseLinear)
        counts = layer.mask.reshape(layer.out_features, -1, 4).sum(-1)
        assert bool((counts == 2).all())
        assert not layer.weight[~layer.mask].any()
    block = results["block"]["model"]
    for layer in (block[0], block[2]):
        assert isinstance(layer, BlockSparseLinear)
        assert layer.density == pytest.approx(0.1, abs=0.01)
    assert results["block"]["sparsifier"].history  # masks moved during training


def test_digits_mlp_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        digits_mlp("csr")
