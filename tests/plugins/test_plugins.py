"""The adapter registry: fake entry points, broken and duplicate plugins."""
import subprocess
import sys
import types
from importlib.metadata import EntryPoint

import pytest

from sparsecore import plugins
from sparsecore.plugins import Adapter
from sparsecore.plugins._registry import adapters_from_entry_points


class GoodAdapter(Adapter):
    kind = "layer"
    description = "a test adapter whose dependency is installed"
    module = "json"
    requires = ("json",)
    install = "pip install nothing"


class MissingDepAdapter(Adapter):
    kind = "trainer"
    description = "needs a module nobody has"
    module = "sparsecore_test_missing_module"
    requires = ("sparsecore_test_missing_module",)
    install = 'pip install "sparsecore[missing]"'


NOT_AN_ADAPTER = object()

# make this module importable by entry points as "fake_plugins"
_mod = types.ModuleType("fake_plugins")
_mod.GoodAdapter = GoodAdapter
_mod.MissingDepAdapter = MissingDepAdapter
_mod.NOT_AN_ADAPTER = NOT_AN_ADAPTER
sys.modules["fake_plugins"] = _mod

GROUP = plugins.ENTRY_POINT_GROUP


def ep(name, value):
    return EntryPoint(name, value, GROUP)


@pytest.fixture
def fake_registry(monkeypatch):
    """Replace the installed entry points by a list the test controls."""
    state = {"eps": []}

    def fake_entry_points(group):
        assert group == GROUP
        return state["eps"]

    monkeypatch.setattr(plugins._registry, "entry_points", fake_entry_points)
    plugins.refresh_adapters()
    yield state
    plugins.refresh_adapters()


def test_good_and_missing_adapters_are_listed(fake_registry):
    fake_registry["eps"] = [
        ep("good", "fake_plugins:GoodAdapter"),
        ep("missing", "fake_plugins:MissingDepAdapter"),
    ]
    rows = plugins.list_adapters()
    assert list(rows) == ["good", "missing"]
    assert rows["good"].available and rows["good"].kind == "layer"
    assert not rows["missing"].available
    assert rows["missing"].missing == ("sparsecore_test_missing_module",)
    assert rows["missing"].install == 'pip install "sparsecore[missing]"'


def test_load_returns_module_or_names_the_extra(fake_registry):
    fake_registry["eps"] = [
        ep("good", "fake_plugins:GoodAdapter"),
        ep("missing", "fake_plugins:MissingDepAdapter"),
    ]
    import json

    assert plugins.load_adapter("good") is json
    with pytest.raises(ImportError, match=r'pip install "sparsecore\[missing\]"'):
        plugins.load_adapter("missing")


def test_unknown_adapter_lists_the_registered_ones(fake_registry):
    fake_registry["eps"] = [ep("good", "fake_plugins:GoodAdapter")]
    with pytest.raises(ValueError, match="registered adapters: good"):
        plugins.get_adapter("nope")


def test_broken_plugins_warn_and_do_not_hide_the_others(fake_registry):
    fake_registry["eps"] = [
        ep("broken", "fake_plugins_that_do_not_exist:Thing"),
        ep("wrongtype", "fake_plugins:NOT_AN_ADAPTER"),
        ep("good", "fake_plugins:GoodAdapter"),
    ]
    with pytest.warns(RuntimeWarning) as record:
        rows = plugins.list_adapters()
    assert list(rows) == ["good"]
    messages = " ".join(str(w.message) for w in record)
    assert "'broken' failed to load" in messages
    assert "'wrongtype' failed to load" in messages and "not a sparsecore.plugins.Adapter" in messages


def test_duplicate_names_keep_the_first(fake_registry):
    fake_registry["eps"] = [
        ep("dup", "fake_plugins:GoodAdapter"),
        ep("dup", "fake_plugins:MissingDepAdapter"),
    ]
    with pytest.warns(RuntimeWarning, match="registered more than once"):
        rows = plugins.list_adapters()
    assert rows["dup"].kind == "layer"


def test_registry_is_cached_until_refreshed(fake_registry):
    fake_registry["eps"] = [ep("good", "fake_plugins:GoodAdapter")]
    assert list(plugins.list_adapters()) == ["good"]
    fake_registry["eps"] = []
    assert list(plugins.list_adapters()) == ["good"]
    plugins.refresh_adapters()
    assert list(plugins.list_adapters()) == []


def test_adapter_instances_are_accepted(fake_registry):
    _mod.INSTANCE = GoodAdapter()
    fake_registry["eps"] = [ep("inst", "fake_plugins:INSTANCE")]
    assert plugins.get_adapter("inst").name == "inst"


def test_import_sparsecore_imports_no_optional_dependency():
    code = (
        "import sys, sparsecore, sparsecore.plugins, sparsecore.ops, sparsecore.datasets;"
        "sparsecore.plugins.list_adapters();"
        "heavy = {'torch', 'dask', 'distributed', 'sklearn', 'graphblas', 'numba', 'matplotlib'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
