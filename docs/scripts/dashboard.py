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
import re
import shutil
import subprocess
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


def publish(out_dir, results_dir=None):
    """Write the dashboard of ``results_dir`` (default ``benchmarks/results``)
    to ``out_dir``; return the number of recorded commits.

    Raises RuntimeError when there are no results or asv fails.
    """
    results_dir = Path(results_dir or BENCHMARKS / "results")
    runs = [p for p in results_dir.glob("*/*.json") if p.name != "machine.json"]
    if not runs:
        raise RuntimeError(f"no asv results under {results_dir}")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "html"
        cmd = [sys.executable, "-m", "asv", "publish", "--no-pull",
               "--html-dir", str(html)]
        # asv reads asv.conf.json of the working directory; the results
        # folder is passed through the config's relative path
        proc = subprocess.run(cmd, cwd=BENCHMARKS, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"asv publish failed:\n{proc.stdout}\n{proc.stderr}")
        for page in html.glob("*.html"):
            page.write_text(_localize(page.read_text()))
        shutil.copytree(VENDOR, html / "vendor", dirs_exist_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(html, out_dir)
    return len({p.name.split("-")[0] for p in runs})


if __name__ == "__main__":
    print(f"{publish(sys.argv[1])} commits published to {sys.argv[1]}")
