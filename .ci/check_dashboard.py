"""Open the published benchmark dashboard in headless Chromium and check that
the graphs of SpGEMM, SpMM, Monarch and greedy BCD draw data points.

usage: python .ci/check_dashboard.py docs/_build/dashboard

The dashboard is served over HTTP from a copy whose index.html carries one
extra script: once flot has drawn ``#main-graph`` it writes the number of
finite points of the drawn series into the page, which Chromium's
``--dump-dom`` then shows. A benchmark passes when the page is asv's (not its
error page, which it opens when a script fails to load) and its graph has at
least one point.
"""
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

GRAPHS = {
    "SpGEMM": "bench_spgemm.SpGEMMSpeedup.track_speedup_over_scipy_sorted",
    "SpMM": "bench_spmm.SpMMSpeedup.track_speedup_over_dense",
    "Monarch": "bench_monarch.MonarchProductSpeedup.track_speedup_over_dense",
    "greedy BCD": "bench_bcd.LassoSpeedup.track_speedup_vs_sklearn",
}
PROBE = """
<script>
setInterval(function () {
  var plot = $("#main-graph").data("plot");
  if (!plot) return;
  var n = 0;
  plot.getData().forEach(function (s) {
    s.data.forEach(function (d) { if (d && d[1] !== null && isFinite(d[1])) n++; });
  });
  var el = document.getElementById("sc-probe");
  if (!el) { el = document.createElement("div"); el.id = "sc-probe"; document.body.appendChild(el); }
  el.textContent = "points=" + n;
}, 250);
</script>
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_dashboard: no Chromium found (Debian: apt-get install chromium)")


def main(site):
    site = Path(site)
    if not (site / "index.html").exists():
        sys.exit(f"check_dashboard: {site}/index.html does not exist")
    html = (site / "index.html").read_text()
    remote = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?://[^"]+)"', html)
    if remote:
        sys.exit(f"check_dashboard: the dashboard loads from the internet: {remote}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "site"
        shutil.copytree(site, copy)
        (copy / "index.html").write_text(html.replace("</body>", PROBE + "</body>"))
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(copy))
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        failed = []
        try:
            for label, name in GRAPHS.items():
                url = f"http://127.0.0.1:{port}/index.html#{name}"
                proc = subprocess.run(
                    [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--virtual-time-budget=20000",
                     f"--user-data-dir={tmp}/profile", "--dump-dom", url],
                    capture_output=True, text=True, timeout=180, check=False)
                dom = proc.stdout
                m = re.search(r'id="sc-probe">points=(\d+)<', dom)
                points = int(m[1]) if m else 0
                ok = "airspeed velocity" in dom and points > 0
                print(f"{label:11s} {name}: {'ok' if ok else 'FAILED'}, {points} points drawn")
                if not ok:
                    failed.append(label)
                    if not dom:
                        print(proc.stderr[-2000:])
        finally:
            server.shutdown()
    if failed:
        sys.exit(f"check_dashboard: no data drawn for {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/dashboard")
