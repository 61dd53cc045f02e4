"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build``.

The API reference is written here, at every build, from
``sparsecore._public_api.PUBLIC_MODULES``: one page per public module listing
the names in its ``__all__`` (autosummary then writes a page per object into
``docs/api/generated/``). Add a module to that list, never a page by hand.
The build is offline: no intersphinx inventories are fetched.
"""
import inspect
from pathlib import Path

import sparsecore
from sparsecore._public_api import PUBLIC_MODULES, public_objects

project = "sparsecore"
author = "The sparsecore developers"
copyright = "the sparsecore developers"
version = release = sparsecore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "user_guide/data"]
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
numpydoc_show_class_members = False   # the class template lists members itself
numpydoc_xref_param_type = False
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
html_title = f"sparsecore {release}"
html_static_path = []

HERE = Path(__file__).resolve().parent
API_DIR = HERE / "api"


def _kind(obj):
    if inspect.isclass(obj):
        return "Classes"
    if callable(obj):
        return "Functions"
    return "Constants"


def _module_page(module_name):
    own, aliases = public_objects(module_name)
    lines = [module_name, "=" * len(module_name), "",
             f".. automodule:: {module_name}", "   :no-members:", "",
             f".. currentmodule:: {module_name}", ""]
    for kind in ("Classes", "Functions"):
        names = [name for name, obj in own if _kind(obj) == kind]
        if not names:
            continue
        # classes use docs/_templates/autosummary/class.rst (members listed)
        lines += [kind, "-" * len(kind), "", ".. autosummary::", "   :toctree: generated/",
                  "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names] + [""]
    constants = [(name, obj) for name, obj in own if _kind(obj) == "Constants"]
    if constants:
        lines += ["Constants", "---------", ""]
        for name, obj in constants:   # py:data, not autodata: no docstring of the type
            lines += [f".. py:data:: {name}", f"   :value: {obj!r}", ""]
    if aliases:
        lines += ["Also importable from here", "-------------------------", ""]
        lines += [f"- ``{module_name}.{name}``: :py:obj:`{target}`" for name, target in aliases]
        lines += [""]
    return "\n".join(lines)


def _write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages():
    """Write ``api/index.rst`` and one page per module of PUBLIC_MODULES."""
    API_DIR.mkdir(exist_ok=True)
    pages = []
    for module_name, _ in PUBLIC_MODULES:
        _write_if_changed(API_DIR / f"{module_name}.rst", _module_page(module_name))
        pages.append(module_name)
    index = ["API reference", "=============", "",
             "Generated from the docstrings of every public module.", "",
             ".. toctree::", "   :maxdepth: 1", ""] + [f"   {p}" for p in pages] + [""]
    _write_if_changed(API_DIR / "index.rst", "\n".join(index))


write_api_pages()


def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """scikit-learn adds ``set_{fit,score,...}_request`` to every estimator
    class; their docstrings point into sklearn's own glossary."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
