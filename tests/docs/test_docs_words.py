"""The docs speak to a reader of the site: no references to the project's
issue tracker or working notes, no goal bookkeeping, and no absolute paths of
the machine that built them (in pages, plot scripts and the recorded data
the pages include)."""
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues? ?#?\d+", re.I),
    "'the note'": re.compile(r"\bthe note\b", re.I),
    "goal bookkeeping": re.compile(r"\bstretch\b|\bgoal table\b|\bgoal\b.{0,20}\b(?:not )?met\b", re.I),
    "an absolute path": re.compile(r"(?<![\w.$~])/(?:work|root|home|Users)/"),
}


def _files():
    if not DOCS.is_dir():
        return []
    skip = {"_build", "_generated", "api", "generated"}
    return sorted(p for p in DOCS.rglob("*")
                  if p.suffix in {".rst", ".py", ".json", ".txt"} and p.is_file()
                  and not skip & set(p.relative_to(DOCS).parts))


@pytest.mark.skipif(not _files(), reason="the docs folder is not beside the tests")
@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_internal_words(path):
    text = path.read_text(errors="replace")
    # recorded bench output (data/*.json) keeps its printed text, except paths
    checks = {"an absolute path": FORBIDDEN["an absolute path"]} if path.suffix == ".json" else FORBIDDEN
    found = [f"{what}: {m.group(0)!r}" for what, rx in checks.items() for m in rx.finditer(text)]
    assert not found, f"{path.relative_to(DOCS)}: " + "; ".join(found[:5])


def test_the_check_sees_a_forbidden_word():
    samples = ["as issue 8 asked", "see the note", "stretch met", "from /work/wt/shared"]
    for s in samples:
        assert any(rx.search(s) for rx in FORBIDDEN.values()), s
    assert not any(rx.search("$SPARSECORE_MATRIX_DIR/x.mtx and ../shared/data")
                   for rx in FORBIDDEN.values())
