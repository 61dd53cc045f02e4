"""Publish the asv dashboard of the recorded benchmark history into the docs.

``benchmarks/results/`` holds the runs of the reference machine (committed;
see docs/dev/benchmarking.rst for how a maintainer adds one). ``asv publish``
turns them into a static site; its page loads jQuery, flot, bootstrap and
three small plugins from the internet, so this module rewrites those
addresses to the copies vendored in ``benchmarks/dashboard_vendor/`` (MIT
licensed, see LICENSES.txt there) and the site works offline.

Run by the Sphinx build (``docs/conf.py``), which puts the site at
``dashboard/`` of the HTML output; or by hand::

    python docs/scripts/dashboard.py OUTDIR
"""
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
VENDOR = BENCHMARKS / "dashboard_vendor"

#: the internet addresses asv's page loads, by the vendored file that replaces them
VENDORED = {
    r"jquery-3\.3\.1\.min\.js": "jquery-3.3.1.min.js",
    r"flot/0\.8\.3/jquery\.flot\.min\.js": "jquery.flot-0.8.3.min.js",
    r"flot/0\.8\.3/jquery\.flot\.time\.min\.js": "jquery.flot-0.8.3.time.min.js",
    r"flot/0\.8\.3/jquery\.flot\.selection\.min\.js": "jquery.flot-0.8.3.selection.min.js",
    r"flot/0\.8\.3/jquery\.flot\.categories\.min\.js": "jquery.flot-0.8.3.categories.min.js",
    r"jquery\.flot\.orderBars\.js": "jquery.flot.orderBars.js",
    r"stupidtable\.min\.js": "stupidtable.js",
    r"md5\.min\.js": "md5.js",
    r"bootstrap\.min\.js": "bootstrap-3.1.0.min.js",
    r"bootstrap\.min\.css": "bootstrap-3.1.0.min.css",
}
_TAG = re.compile(r"<(?:script|link)\b[^>]*>")


def _localize(html):
    """``html`` with every script and stylesheet loaded from the internet
    pointing at the vendored copy instead (integrity and crossorigin
    attributes dropped with it). Raises RuntimeError for an address with no
    vendored copy."""
    def swap(m):
        tag = m.group(0)
        url = re.search(r'(?:src|href)="(https?://[^"]+)"', tag)
        if url is None:
            return tag
        for pattern, local in VENDORED.items():
            if re.search(pattern, url[1]):
                tag = tag.replace(url[1], f"vendor/{local}")
                return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)
        raise RuntimeError(f"the dashboard loads {url[1]} and no copy of it is vendored")
    return _TAG.sub(swap, html)


class _RecordedHistory:
    """The repository as the recorded runs describe it: commits ordered by
    the commit dates stored in the result files, all on ``main``, no tags.
    ``asv publish`` asks git for these facts, which a shallow checkout (as CI
    may make) does not have; the result files do."""

    def __init__(self, dates):
        self.dates = dates                      # commit hash -> date (ms)

    def pull(self):
        pass

    def get_tags(self):
        return {}

    def get_revisions(self, commits):
        ordered = sorted(self.dates, key=self.dates.get)
        return {h: i for i, h in enumerate(ordered) if h in commits}

    def get_date_from_name(self, name):
        return self.dates[name]

    def get_branch_commits(self, branch):
        return sorted(self.dates, key=self.dates.get, reverse=True)

    def get_branch_name(self, branch):
        return branch

    def get_range_spec(self, commit_a, commit_b):
        return (commit_a, commit_b)

    def get_hashes_from_range(self, range_spec):
        """Commits after ``a`` up to ``b`` (newest first), as git's ``a..b``."""
        newest_first = self.get_branch_commits("main")
        if not isinstance(range_spec, tuple):
            return newest_first
        a, b = (self.dates.get(h) for h in range_spec)
        return [h for h in newest_first
                if (a is None or self.dates[h] > a) and (b is None or self.dates[h] <= b)]


def _recorded_dates(results_dir):
    """Commit hash -> commit date of every recorded run."""
    dates = {}
    for path in results_dir.glob("*/*.json"):
        if path.name == "machine.json":
            continue
        run = json.loads(path.read_text())
        dates[run["commit_hash"]] = run["date"]
    return dates


def publish(out_dir):
    """Write the dashboard of ``benchmarks/results`` to ``out_dir``; return
    the number of recorded commits.

    Raises RuntimeError when there are no results.
    """
    from asv import util
    from asv.commands import publish as asv_publish
    from asv.config import Config

    results_dir = BENCHMARKS / "results"
    dates = _recorded_dates(results_dir)
    if not dates:
        raise RuntimeError(f"no asv results under {results_dir}")
    out_dir = Path(out_dir)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "html"
        os.chdir(BENCHMARKS)   # asv resolves the config's folders from here
        get_repo = asv_publish.get_repo
        try:
            conf = Config.load(BENCHMARKS / "asv.conf.json")
            conf.html_dir = str(html)
            asv_publish.get_repo = lambda conf: _RecordedHistory(dates)
            asv_publish.Publish.run(conf=conf, pull=False)
        except util.UserError as exc:
            raise RuntimeError(f"asv publish failed: {exc}") from exc
        finally:
            asv_publish.get_repo = get_repo
            os.chdir(cwd)
        for page in html.glob("*.html"):
            page.write_text(_localize(page.read_text()))
        shutil.copytree(VENDOR, html / "vendor", dirs_exist_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(html, out_dir)
    return len(dates)


if __name__ == "__main__":
    print(f"{publish(sys.argv[1])} commits published to {sys.argv[1]}")
