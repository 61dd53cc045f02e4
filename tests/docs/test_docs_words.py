"""The docs speak to a reader of the site: no references to the project's
issue tracker or working notes, no goal bookkeeping, and no absolute paths of
the machine that built them (in pages, plot scripts, the gallery's examples,
the recorded data and the printed bench output the pages show)."""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
_ABSOLUTE_ROOTS = "work|root|home|Users|tmp|var|usr|opt|etc|mnt|srv|private|scratch"
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues? ?#?\d+", re.I),
    "'the note'": re.compile(r"\bthe note\b", re.I),
    "goal bookkeeping": re.compile(r"\bstretch\b|\bgoal table\b|\bgoal\b.{0,20}\b(?:not )?met\b",
                                   re.I),
    # a POSIX path from the file-system root (not a URL, not $VAR/..., ~/...,
    # ../...), or a Windows drive path
    "an absolute path": re.compile(rf"(?<![\w.$~])/(?:{_ABSOLUTE_ROOTS})/|\b[A-Za-z]:\\\w"),
}
_SKIP_DIRS = {"_build", "_generated", "api", "generated", "auto_examples"}


def _files():
    found = []
    for base in (DOCS, EXAMPLES):
        if base.is_dir():
            found += [p for p in base.rglob("*")
                      if p.suffix in {".rst", ".py", ".json", ".txt"} and p.is_file()
                      and not _SKIP_DIRS & set(p.relative_to(base).parts)
                      and p.name != "sg_execution_times.rst"]
    return sorted(found)


def _rel(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name


def _problems(text, checks=FORBIDDEN):
    return [f"{what}: {m.group(0)!r}" for what, rx in checks.items() for m in rx.finditer(text)]


def _clean_output():
    """docs/plots/_data.py's clean_output: the printed bench output as the
    pages show it."""
    sys.path.insert(0, str(DOCS / "plots"))
    try:
        from _data import clean_output
    finally:
        sys.path.remove(str(DOCS / "plots"))
        sys.modules.pop("_data", None)
    return clean_output


@pytest.mark.skipif(not _files(), reason="the docs folder is not beside the tests")
@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_internal_words(path):
    text = path.read_text(errors="replace")
    # recorded bench output (data/*.json) keeps its printed text, except paths;
    # what the pages show of it is checked by test_printed_output_as_shown
    checks = {"an absolute path": FORBIDDEN["an absolute path"]} if path.suffix == ".json" else FORBIDDEN
    found = _problems(text, checks)
    assert not found, f"{_rel(path)}: " + "; ".join(found[:5])


RECORDS = sorted((DOCS / "data").glob("*.json")) if DOCS.is_dir() else []


@pytest.mark.skipif(not RECORDS, reason="the docs folder is not beside the tests")
@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_printed_output_as_shown(path):
    shown = _clean_output()(json.loads(path.read_text())["stdout"])
    found = _problems(shown) + _problems(shown, {"goal": re.compile(r"\bgoals?\b", re.I)})
    assert not found, f"{path.name} as shown: " + "; ".join(found[:5])


def test_the_check_sees_a_forbidden_word():
    bad = ["as issue 8 asked", "see issues #12", "see the note", "stretch met",
           "goal >= 10x: NOT met", "from /work/wt/shared", "cd /tmp/build", "/home/me/x",
           "in /usr/lib/x", "C:\\Users\\me", "data at /root/.cache/x", "file:///tmp/x"]
    for s in bad:
        assert _problems(s), s
    good = ["$SPARSECORE_MATRIX_DIR/x.mtx and ../shared/data", "~/data/x.mtx",
            "https://example.org/home/page", "read from ``/proc/loadavg``",
            "3.1x faster than scipy", "a:b ratio", "docs/data/spmm.json"]
    for s in good:
        assert not _problems(s), s


def test_the_check_reads_the_files(tmp_path):
    """The parametrised test fails on a page or an example with a forbidden
    word, and on a record whose printed output shows goal bookkeeping."""
    page = tmp_path / "page.rst"
    page.write_text("Measured in /tmp/run as issue 3 asked.\n")
    with pytest.raises(AssertionError, match="absolute path.*issue number|issue number"):
        test_no_internal_words(page)
    example = tmp_path / "plot_x.py"
    example.write_text('"""Example"""\nX = load("/home/me/x.npy")  # see the note\n')
    with pytest.raises(AssertionError, match="the note"):
        test_no_internal_words(example)
    record = tmp_path / "r.json"
    record.write_text(json.dumps({"stdout": "x  2.0x\ngoal FLOPs <= 0.35x: 0.18x met\n"}))
    test_printed_output_as_shown(record)           # the goal line is left out: clean
    record.write_text(json.dumps({"stdout": "x  2.0x, the goals were met\n"}))
    with pytest.raises(AssertionError, match="goal"):
        test_printed_output_as_shown(record)


def test_clean_output_drops_the_bookkeeping():
    clean_output = _clean_output()
    printed = ("case   speedup\n"
               "a      2.0x (goal >= 1.5x)\n"
               "  goal acc >= DER++ - 8 (stretch - 3): -2.7 points met, stretch met\n"
               "\n"
               "### goal summary (1 thread)\n"
               "goal        measured  met\n"
               "a (goal 2x)  2.0x     yes\n"
               "\n"
               "other goals      measured\n"
               "x (goal 4x)      2.4x\n"
               "\n"
               "  goals (float32):\n"
               "    n=1024 vs dense 14.8x (goal >= 8x)\n")
    assert _problems(printed)                        # the raw text is caught ...
    shown = clean_output(printed)
    assert not _problems(shown), shown               # ... and what the pages show is clean
    assert "goal" not in shown.lower(), shown
    assert "a      2.0x" in shown and "summary (float32):" in shown and "14.8x" in shown
