"""The measured data behind the docs' figures: every record in docs/data/ says
how it was produced, every ``.. plot::`` names a script that exists, every
included table has its record, and each plot script's records exist.

The figures themselves are drawn (and any error fails) by the docs build,
``sphinx-build -W -b html docs docs/_build``."""
import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = pytest.mark.skipif(not (DOCS / "data").is_dir(), reason="no docs/ folder")

RECORDS = sorted((DOCS / "data").glob("*.json")) if (DOCS / "data").is_dir() else []
PAGES = sorted(DOCS.rglob("*.rst")) if DOCS.is_dir() else []


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_record_says_how_it_was_measured(path):
    rec = json.loads(path.read_text())
    assert rec["command"].startswith("python -P -m sparsecore bench ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", rec["date"])
    for key in ("cpu", "n_cpus", "load_average_before", "load_average_after"):
        assert key in rec["machine"], key
    assert rec["threads"], "thread counts missing"
    assert rec["stdout"].strip() and rec["result"]
    assert path.stat().st_size < 200_000, "keep the committed records small"


def _directives(page, name):
    return re.findall(rf"^\.\. {name}:: (\S+)", page.read_text(), flags=re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_references_exist(page):
    for script in _directives(page, "plot"):
        assert (DOCS / "plots" / script).is_file(), f"{page.name}: plot script {script}"
    for name in ("include", "literalinclude"):
        for target in _directives(page, name):
            # _generated/<record>.{meta.txt,out.txt,rst} are written by docs/conf.py
            m = re.search(r"_generated/(.+?)\.(?:meta\.txt|out\.txt|rst)$", target)
            if m:
                assert (DOCS / "data" / f"{m.group(1)}.json").is_file(), \
                    f"{page.name}: no record for {target}"
            else:   # a path starting with / is relative to the docs folder
                path = DOCS / target[1:] if target.startswith("/") else page.parent / target
                assert path.is_file(), f"{page.name}: {target}"


@pytest.mark.parametrize("script", sorted((DOCS / "plots").glob("[!_]*.py"))
                         if (DOCS / "plots").is_dir() else [], ids=lambda p: p.stem)
def test_plot_script_records_exist(script):
    text = script.read_text()
    for name in re.findall(r'load\("([^"]+)"\)', text):
        assert (DOCS / "data" / f"{name}.json").is_file(), f"{script.name}: {name}"
    for name in re.findall(r'read\("([^"]+\.csv)"\)', text):
        assert (DOCS / "data" / name).is_file(), f"{script.name}: {name}"
