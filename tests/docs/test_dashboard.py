"""The benchmark dashboard publisher (docs/scripts/dashboard.py): asv's page
must load nothing from the internet once published."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dashboard():
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "docs" / "scripts" / "dashboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REMOTE = re.compile(r'<(?:script|link)\b[^>]*(?:src|href)="https?://')


def test_asv_page_is_localized_to_vendored_files():
    asv = pytest.importorskip("asv")
    page = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    assert REMOTE.search(page), "asv's page no longer loads from the internet: drop the vendoring"
    mod = _dashboard()
    out = mod._localize(page)
    assert not REMOTE.search(out)
    for local in re.findall(r'(?:src|href)="vendor/([^"]+)"', out):
        assert (mod.VENDOR / local).is_file(), local
    # a plain link (not a script or stylesheet) is left alone
    assert 'href="https://github.com/airspeed-velocity/asv/"' in out


def test_unknown_remote_script_is_refused():
    mod = _dashboard()
    with pytest.raises(RuntimeError, match="no copy of it is vendored"):
        mod._localize('<script src="https://example.org/other.js"></script>')


def test_reference_results_are_committed():
    results = ROOT / "benchmarks" / "results"
    if not results.is_dir():
        pytest.skip("no benchmarks/results folder (not a source checkout)")
    runs = [p for p in (results / "sparsecore-ref").glob("*.json") if p.name != "machine.json"]
    assert runs and (results / "benchmarks.json").is_file()
