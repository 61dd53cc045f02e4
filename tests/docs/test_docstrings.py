"""numpydoc validation of the public API (every module of
``sparsecore._public_api.PUBLIC_MODULES``).

Checks, chosen to catch what misleads a reader rather than style:

- everywhere (public functions, classes, their public methods and
  properties): a docstring exists (GL08; one inherited from a base class
  counts, as it does in the rendered docs), no documented parameter is
  missing from the signature (PR02), no space before a parameter's colon
  (PR10), no unknown section (GL06), sections in the standard order (GL07);
- on the functions and classes named in ``__all__`` and on their public
  methods (not properties): every parameter is documented (PR01; a record
  class -- dataclass, named tuple -- may document its fields under
  "Attributes", and private fields are exempt), and a callable that returns
  a value has a Returns section (RT01). A method without a docstring of its
  own is checked where it is documented, on its base class.
"""
import importlib
import importlib.util
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

from sparsecore._public_api import PUBLIC_MODULES, public_objects  # noqa: E402

EVERYWHERE = {"GL06", "GL07", "GL08", "PR02", "PR10"}
COMPLETE = EVERYWHERE | {"PR01", "RT01"}


def _members(cls):
    """Public methods and properties defined in ``cls`` itself."""
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            yield attr, value


def _targets():
    for module_name, requirement in PUBLIC_MODULES:
        if requirement is not None and importlib.util.find_spec(requirement) is None:
            continue   # CI installs every extra; a local run without it skips
        own, _ = public_objects(module_name)
        for name, obj in own:
            full = f"{module_name}.{name}"
            if inspect.isclass(obj):
                yield full, obj, "class"
                for attr, value in _members(obj):
                    kind = "property" if isinstance(value, property) else "method"
                    yield f"{full}.{attr}", value, kind
            elif callable(obj):
                yield full, obj, "function"


TARGETS = sorted((name, kind) for name, _, kind in _targets())
OBJECTS = {name: obj for name, obj, _ in _targets()}


def _attribute_names(result):
    doc = result.get("docstring") or ""
    from numpydoc.docscrape import NumpyDocString

    names = set()
    for param in NumpyDocString(doc)["Attributes"]:
        names.update(part.strip() for part in param.name.split(","))
    return names


def _problems(name, kind):
    obj = OBJECTS[name]
    result = numpydoc_validate.validate(name)
    errors = result["errors"]
    if kind in ("method", "property") and any(code == "GL08" for code, _ in errors):
        if inspect.getdoc(obj):
            return []   # documented on a base class, as autodoc shows it
    checks = EVERYWHERE if kind == "property" else COMPLETE
    problems = []
    for code, message in errors:
        if code not in checks:
            continue
        if code == "PR01" and kind == "class":
            undocumented = {p for p in _missing_parameters(message) if not p.startswith("_")}
            if undocumented <= _attribute_names(result):
                continue   # a record class documents its fields as attributes
        problems.append(f"{code}: {message}")
    return problems


def _missing_parameters(message):
    start, end = message.find("{"), message.rfind("}")
    inner = message[start + 1:end]
    return [part.strip().strip("'\"") for part in inner.split(",") if part.strip()]


def test_public_api_is_listed():
    # Every listed module imports (or needs a missing optional dependency)
    # and exports something.
    for module_name, requirement in PUBLIC_MODULES:
        if requirement is not None and importlib.util.find_spec(requirement) is None:
            continue
        module = importlib.import_module(module_name)
        assert module.__all__, module_name


@pytest.mark.parametrize("name, kind", TARGETS, ids=[name for name, _ in TARGETS])
def test_docstring(name, kind):
    problems = _problems(name, kind)
    assert not problems, f"{name} ({kind}):\n  " + "\n  ".join(problems)
