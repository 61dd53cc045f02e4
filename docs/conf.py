"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build``.

The API reference is written here, at every build, from
``sparsecore._public_api.PUBLIC_MODULES``: one page per public module listing
the names in its ``__all__`` (autosummary then writes a page per object into
``docs/api/generated/``). Add a module to that list, never a page by hand.
The build is offline: no intersphinx inventories are fetched.
"""
import inspect
from pathlib import Path

from sphinx.util import logging

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
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "data", "plots", "scripts"]
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
numpydoc_show_class_members = False   # the class template lists members itself
numpydoc_xref_param_type = False
html_theme = "pydata_sphinx_theme"
html_theme_options = {
    "navigation_with_keys": False,
    # every section one click from the navbar (no "More" menu)
    "header_links_before_dropdown": 6,
}
html_title = f"sparsecore {release}"
html_static_path = []

# Figures: ``.. plot:: name.py`` runs docs/plots/name.py at every build and
# draws the measured data of docs/data/ (never a pasted image).
plot_basedir = "plots"
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.dpi": 100, "font.size": 9}

HERE = Path(__file__).resolve().parent
API_DIR = HERE / "api"

# The examples gallery: every ``examples/<section>/plot_*.py`` runs at every
# build (a few seconds each, on shipped or generated data) and its page shows
# its code, printed output and figure; the generated pages go to
# ``docs/auto_examples`` (not in git). A failing example fails the build.
from sphinx_gallery.sorting import ExplicitOrder  # noqa: E402

sphinx_gallery_conf = {
    "examples_dirs": "../examples",     # relative to this folder
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "subsection_order": ExplicitOrder([f"../examples/{d}" for d in
                                       ("products", "structured", "solvers", "pytorch")]),
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_signature": False,
    "backreferences_dir": None,
    "min_reported_time": 1,
    # the timing pages would load jQuery and DataTables from the internet
    "write_computation_times": False,
}


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

GENERATED_DIR = HERE / "_generated"
DATA_DIR = HERE / "data"


def write_record_snippets():
    """For every record ``data/<name>.json`` (written by
    ``docs/scripts/record.py``), write into ``_generated/``:

    - ``<name>.out.txt``: the tables the bench command printed, without the
      suites' target bookkeeping (``_data.clean_output``);
    - ``<name>.meta.txt``: a reStructuredText paragraph saying when, on what
      machine, under what load (busy or idle) and at which thread counts it
      was measured, and the command;
    - ``<name>.rst``: that paragraph and the printed tables folded in a
      collapsed ``<details>`` block, with the record as a download. A page
      shows a record with ``.. include:: /_generated/<name>.rst``.

    The tables shown are always those of the data drawn."""
    import json
    import sys

    sys.path.insert(0, str(HERE / "plots"))
    from _data import clean_output, is_busy

    GENERATED_DIR.mkdir(exist_ok=True)
    for path in sorted(DATA_DIR.glob("*.json")):
        rec = json.loads(path.read_text())
        m = rec["machine"]
        before, after = m["load_average_before"][0], m["load_average_after"][0]
        threads = rec["threads"]
        given = f" --threads {threads[0]}" if rec.get("threads_note") else ""
        several = isinstance(threads, list) and max(threads) > 1
        threads = ", ".join(map(str, threads)) if isinstance(threads, list) else str(threads)
        state = "busy" if is_busy(rec) else "idle"
        meta = (f"Measured {rec['date']} on a {state} machine: {m['cpu']}, {m['n_cpus']} CPUs "
                f"shared with other jobs (1-minute load average {before:.1f} before, "
                f"{after:.1f} after), "
                f"sparsecore threads: {threads}, OMP_NUM_THREADS={rec['omp_num_threads']}, "
                f"{rec['wall_s']:.0f} s. Command:\n\n"
                f".. code-block:: bash\n\n   python docs/scripts/record.py {path.stem}{given} -- "
                f"{rec['command']}\n")
        if several and is_busy(rec):
            meta += ("\nThe machine was busy: its multi-thread figures show how the code "
                     "holds up beside other work, not how it scales on idle cores.\n")
        if rec.get("threads_note"):
            meta += f"\n(Threads: {rec['threads_note']}.)\n"
        out = clean_output(rec["stdout"])
        snippet = (meta + "\n.. raw:: html\n\n   <details><summary>Printed output of the "
                   "command (click to open)</summary>\n\n"
                   f".. literalinclude:: /_generated/{path.stem}.out.txt\n   :language: text\n\n"
                   ".. raw:: html\n\n   </details>\n\n"
                   f"The whole record (timings of every round): :download:`{path.name} "
                   f"</data/{path.name}>`.\n")
        _write_if_changed(GENERATED_DIR / f"{path.stem}.meta.txt", meta)
        _write_if_changed(GENERATED_DIR / f"{path.stem}.out.txt", out)
        _write_if_changed(GENERATED_DIR / f"{path.stem}.rst", snippet)


write_record_snippets()


def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """scikit-learn adds ``set_{fit,score,...}_request`` to every estimator
    class; their docstrings point into sklearn's own glossary."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _publish_dashboard(app, exception):
    """The asv dashboard of the recorded benchmark history, at ``dashboard/``
    of the HTML output (docs/scripts/dashboard.py)."""
    if exception is not None or app.builder.format != "html":
        return
    import sys

    sys.path.insert(0, str(HERE / "scripts"))
    from dashboard import publish

    n = publish(Path(app.outdir) / "dashboard")
    logging.getLogger(__name__).info(f"benchmark dashboard: {n} recorded commits")


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
    app.connect("build-finished", _publish_dashboard)
