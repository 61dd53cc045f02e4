"""Imports only go down the layers of the package (deferred imports included).

The order, lowest first (a module may import from its own layer or below):

0. the compiled core and the build record (``_ext``, ``_build_info``)
1. the base: ``_validation``, ``_threads``, ``_jit``, ``_config``, ``_deprecation``, ``plugins``
   (the adapter registry, aware of no adapter)
2. ``formats`` (each format owns its products: it calls the kernels)
3. ``ops``, ``_accelerate`` and its pytest plugin (validation and dispatch over the
   kernels and formats; the scipy drop-in)
4. ``datasets``
5. ``optimize``
6. ``linear_model``, ``semi_supervised``
7. the adapters: ``torch``, ``moe``, ``recsys``, ``continual``, ``dask``
8. ``_bench``, ``_demo``, ``_cli``, ``__main__``, ``_public_api``
9. the package's ``__init__`` (the public namespace)

No exceptions are listed: a new upward import fails this test.
"""
import ast
from pathlib import Path

import pytest

import sparsecore

PACKAGE = Path(sparsecore.__file__).resolve().parent

RANK = {
    "_ext": 0, "_build_info": 0,
    "_validation": 1, "_threads": 1, "_jit": 1, "_config": 1, "_deprecation": 1,
    "plugins": 1,
    "formats": 2,
    "ops": 3, "_accelerate": 3, "_accelerate_pytest": 3,
    "datasets": 4,
    "optimize": 5,
    "linear_model": 6, "semi_supervised": 6,
    "torch": 7, "moe": 7, "recsys": 7, "continual": 7, "dask": 7,
    "_bench": 8, "_demo": 8, "_cli": 8, "__main__": 8, "_public_api": 8,
    "": 9,
}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module):
    """The layer a ``sparsecore...`` module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imported_modules(path):
    """(line, module) for every import of a sparsecore module in the file,
    at any depth, with ``from sparsecore import name`` resolved to the
    submodule when ``name`` is one."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                top = sub.split(".")
                candidate = PACKAGE.parent.joinpath(*top)
                if (candidate.is_dir() or candidate.with_suffix(".py").is_file()
                        or (target == "sparsecore" and alias.name in RANK)):
                    yield node.lineno, sub
                else:
                    yield node.lineno, target
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def _violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "tests" in path.relative_to(PACKAGE).parts:
            continue
        module = _module_name(path)
        own = _part(module)
        assert own in RANK, f"{module}: add its layer to RANK in this test"
        for line, target in _imported_modules(path):
            if target != "sparsecore" and not target.startswith("sparsecore."):
                continue
            other = _part(target)
            assert other in RANK, f"{target} (imported by {module}): add its layer to RANK"
            if RANK[other] > RANK[own]:
                found.append(f"{module}:{line} imports {target} "
                             f"(layer {RANK[other]} above {RANK[own]})")
    return found


def test_imports_only_go_down():
    assert _violations() == []


def test_every_subpackage_has_a_layer():
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert names <= set(RANK), sorted(names - set(RANK))


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "sparsecore"
    (fake / "formats").mkdir(parents=True)
    (fake / "ops").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "ops" / "__init__.py").write_text("")
    (fake / "formats" / "__init__.py").write_text(
        "def f():\n    from sparsecore.ops import spmm\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    found = _violations()
    assert len(found) == 1 and "sparsecore.formats:2 imports sparsecore.ops" in found[0]


@pytest.mark.parametrize("module", ["sparsecore", "sparsecore.ops", "sparsecore.formats"])
def test_import_does_not_load_adapters(module):
    import subprocess
    import sys

    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('torch', 'dask', 'numba', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
