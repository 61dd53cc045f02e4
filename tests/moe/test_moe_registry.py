"""Gates as adapter entry points: sparsecore's own, and fake third-party ones."""
import subprocess
import sys
import types
from importlib.metadata import EntryPoint

import pytest

from sparsecore import plugins
from sparsecore.moe import GateAdapter, create_gate, get_gate_adapter, list_gates

torch = pytest.importorskip("torch")

from sparsecore.moe import COMETGate, Gate, TopKGate  # noqa: E402


class ConstantGate(Gate):
    """A third-party gate: always the first k experts, equally weighted."""

    def __init__(self, n_experts, k=1):
        super().__init__(n_experts, k)

    def expert_parts(self, x):
        w = torch.zeros(x.shape[0], self.n_experts)
        w[:, : self.k] = 1.0 / self.k
        return w[:, None], {}, True


class ConstantGateAdapter(GateAdapter):
    gate_name = "constant"
    gate = "fake_gate_plugins:ConstantGate"
    description = "a third-party gate"
    requires = ("torch",)
    install = "pip install fake-gates"


class MissingDepGateAdapter(GateAdapter):
    gate_name = "needs_missing"
    gate = "fake_gate_plugins:ConstantGate"
    requires = ("torch", "sparsecore_test_missing_module")
    install = 'pip install "fake-gates[extra]"'


class NotAGateAdapter(GateAdapter):
    gate_name = "notagate"
    gate = "fake_gate_plugins:NotAGate"


class DuplicateNameAdapter(GateAdapter):
    gate_name = "constant"
    gate = "sparsecore.moe._gates:TopKGate"


_mod = types.ModuleType("fake_gate_plugins")
_mod.ConstantGate = ConstantGate
_mod.ConstantGateAdapter = ConstantGateAdapter
_mod.MissingDepGateAdapter = MissingDepGateAdapter
_mod.NotAGateAdapter = NotAGateAdapter
_mod.NotAGate = torch.nn.Linear
_mod.DuplicateNameAdapter = DuplicateNameAdapter
sys.modules["fake_gate_plugins"] = _mod


def ep(name, value):
    return EntryPoint(name, value, plugins.ENTRY_POINT_GROUP)


@pytest.fixture
def fake_registry(monkeypatch):
    state = {"eps": []}
    monkeypatch.setattr(plugins._registry, "entry_points", lambda group: state["eps"])
    plugins.refresh_adapters()
    yield state
    plugins.refresh_adapters()


def test_sparsecore_registers_its_gates_like_a_third_party():
    plugins.refresh_adapters()
    adapters = plugins.list_adapters()
    assert adapters["moe"].kind == "gate" and adapters["moe"].available
    assert adapters["moe"].install == 'pip install "sparsecore[moe]"'
    gates = list_gates()
    assert {"topk", "hash", "dselect_k", "comet"} <= set(gates)
    assert all(g.kind == "gate" for g in gates.values())
    gate = create_gate("comet", 5, n_experts=8, k=3)
    assert isinstance(gate, COMETGate) and gate.k == 3
    assert get_gate_adapter("topk").load_gate() is TopKGate


def test_third_party_gate_is_discovered_and_created(fake_registry):
    fake_registry["eps"] = [ep("fake.constant", "fake_gate_plugins:ConstantGateAdapter")]
    gates = list_gates()
    assert list(gates) == ["constant"]
    gate = create_gate("constant", 4, k=2)
    out = gate(torch.zeros(3, 1))
    assert torch.equal(out.nnz, torch.tensor([2, 2, 2]))
    assert plugins.list_adapters()["fake.constant"].kind == "gate"


def test_gate_with_missing_dependency_names_the_extra(fake_registry):
    fake_registry["eps"] = [ep("fake.missing", "fake_gate_plugins:MissingDepGateAdapter")]
    adapter = list_gates()["needs_missing"]
    assert not adapter.available()
    with pytest.raises(ImportError, match=r'pip install "fake-gates\[extra\]"'):
        create_gate("needs_missing", 4)


def test_entry_point_that_is_not_a_gate(fake_registry):
    fake_registry["eps"] = [ep("fake.notagate", "fake_gate_plugins:NotAGateAdapter")]
    with pytest.raises(TypeError, match="not a sparsecore.moe.Gate subclass"):
        create_gate("notagate", 4)


def test_duplicate_gate_names_warn_and_keep_the_first(fake_registry):
    fake_registry["eps"] = [
        ep("a.constant", "fake_gate_plugins:ConstantGateAdapter"),
        ep("b.constant", "fake_gate_plugins:DuplicateNameAdapter"),
    ]
    with pytest.warns(RuntimeWarning, match="'constant' is registered more than once"):
        gates = list_gates()
    assert gates["constant"].name == "a.constant"


def test_broken_gate_plugin_does_not_hide_the_others(fake_registry):
    fake_registry["eps"] = [
        ep("broken", "fake_gate_plugins_missing_module:Adapter"),
        ep("fake.constant", "fake_gate_plugins:ConstantGateAdapter"),
    ]
    with pytest.warns(RuntimeWarning, match="'broken' failed to load"):
        gates = list_gates()
    assert list(gates) == ["constant"]


def test_unknown_gate_and_bad_names(fake_registry):
    fake_registry["eps"] = [ep("fake.constant", "fake_gate_plugins:ConstantGateAdapter")]
    with pytest.raises(ValueError, match="registered gates: constant"):
        create_gate("nope", 4)
    with pytest.raises(TypeError, match="str or a Gate subclass"):
        create_gate(3, 4)
    with pytest.raises(TypeError, match="Gate subclass"):
        create_gate(torch.nn.Linear, 4, 4)
    # a class bypasses registration
    assert isinstance(create_gate(ConstantGate, 4), ConstantGate)


def test_listing_gates_imports_no_torch():
    code = (
        "import sys, sparsecore;"
        "from sparsecore.moe import list_gates;"
        "names = sorted(list_gates());"
        "print(names, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['comet', 'dselect_k', 'expert_choice', 'hash', 'topk'] False"


def test_moe_without_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a)\n"
        "import sparsecore.moe\n"  # the registry imports without torch
        "print(sorted(sparsecore.moe.list_gates()))\n"
        "try:\n"
        "    sparsecore.moe.TopKGate\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert "['comet', 'dselect_k', 'expert_choice', 'hash', 'topk']" in out.stdout
    assert 'pip install "sparsecore[moe]"' in out.stdout
