"""Run the ``Examples`` sections of the public API as doctests.

Every docstring reached from ``sparsecore._public_api.PUBLIC_MODULES`` (the
functions and classes in each ``__all__``, their public methods and
properties, and the modules' own docstrings) is collected with
:mod:`doctest`, so an example that no longer runs, or prints something else,
fails here. Outputs are compared with ``NORMALIZE_WHITESPACE`` and
``ELLIPSIS``; numpy prints in its default (numpy 2) style.
"""
import doctest
import importlib
import importlib.util
import inspect

import numpy as np
import pytest

from sparsecore._public_api import PUBLIC_MODULES, public_objects

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _documented():
    """(qualified name, object) of every docstring a reader sees in the API reference."""
    seen = set()
    for module_name, requirement in PUBLIC_MODULES:
        if requirement is not None and importlib.util.find_spec(requirement) is None:
            continue   # CI installs every extra; a local run without it skips them
        module = importlib.import_module(module_name)
        yield module_name, module
        own, _ = public_objects(module_name)
        for name, obj in own:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if inspect.isfunction(value) or isinstance(value, property):
                        yield f"{module_name}.{name}.{attr}", value


def _examples():
    finder = doctest.DocTestFinder(recurse=False)
    tests = []
    for name, obj in _documented():
        target = obj.fget if isinstance(obj, property) else obj
        try:
            found = finder.find(target, name, globs={})
        except ValueError:   # no source file (compiled objects): nothing to find
            continue
        tests.extend(t for t in found if t.examples)
    return sorted(tests, key=lambda t: t.name)


EXAMPLES = _examples()


def test_there_are_examples():
    # the public API documents its main entry points by example; if the finder
    # comes back (almost) empty, the collection above is broken
    assert len(EXAMPLES) >= 35, [t.name for t in EXAMPLES]


@pytest.mark.parametrize("test", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_docstring_example(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)           # examples that write files write here
    test.globs = {"np": np}
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    with np.printoptions(legacy=False):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
