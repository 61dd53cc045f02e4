"""Run the ``>>>`` examples of the documentation pages (docs/**/*.rst) as
doctests, so a page whose example no longer runs or prints something else
fails the suite (the API docstrings' examples are tests/docs/test_docstrings'
and tests/docs/test_doctests.py's). Skipped where the docs folder is not beside
the tests (an installed package without its source tree)."""
import doctest
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.rst")
               if "_build" not in p.parts and ">>>" in p.read_text()) if DOCS.is_dir() else []


def test_pages_with_examples_are_found():
    if not DOCS.is_dir():
        pytest.skip(f"no docs folder at {DOCS}")
    assert any(p.name == "semiring.rst" for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with np.printoptions(legacy=False):
        result = doctest.testfile(str(page), module_relative=False, report=True,
                                  optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} failing example(s) in {page.name}; see the output"
