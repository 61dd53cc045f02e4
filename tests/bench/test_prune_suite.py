"""The prune suite's pieces that need no pretrained model: the case plan
from ``--cases`` and the MLP blocks it (and the torch family) time, whose
pruned form must compute what its dense weights say. Nothing here asserts a
time."""
import copy

import pytest

torch = pytest.importorskip("torch")

from sparsecore._bench import prune as suite  # noqa: E402
from sparsecore._bench._registry import family  # noqa: E402


def test_case_plan():
    assert suite._plan(None) == (list(suite.METHODS), list(suite.PATTERNS),
                                 set(suite.METHODS), True)
    methods, patterns, recover, mlp = suite._plan(["wanda", "4:8"])
    assert methods == ["wanda"] and patterns == ["4:8"] and not recover and not mlp
    methods, patterns, recover, mlp = suite._plan(["2:4"])
    assert methods == list(suite.METHODS) and patterns == ["2:4"]
    assert suite._plan(["mlp"]) == ([], [], set(), True)
    methods, patterns, recover, _ = suite._plan(["sparsegpt+recover"])
    assert methods == ["sparsegpt"] and recover == {"sparsegpt"}
    assert set(suite.case_names()) >= {"mlp", "2:4", "16x16", "dsnot+recover"}


@pytest.mark.parametrize("name", ["pruned_ffn_t1", "pruned_swiglu_t512",
                                  "unstructured_swiglu_t8"])
def test_pruned_mlp_cases_compute_their_weights(name):
    case = family("torch").make_case(name)
    layer, x = case.inputs["layer"], case.inputs["x"]
    acts = {n: m.activation for n, m in layer.named_children()
            if getattr(m, "activation", None)}
    assert acts == ({"up": "gelu"} if "ffn" in name else {"gate": "silu"})
    # the block with dense copies of the pruned weights (to_dense keeps the
    # fused activation)
    ref = copy.deepcopy(layer)
    for n, m in layer.named_children():
        if hasattr(m, "to_dense"):
            setattr(ref, n, m.to_dense())
    with torch.no_grad():
        y, want = layer(x), ref(x)
    scale = max(1.0, float(want.abs().max()))
    assert float((y - want).abs().max()) <= 2e-6 * scale
    assert y.shape == (x.shape[0], x.shape[1])
