import json
import subprocess
import sys

import pytest


def run_cli(*args):
    # -P: never let the source tree shadow the installed package
    out = subprocess.run(
        [sys.executable, "-P", "-m", "sparsecore", *args],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_info_reports_build_threads_and_adapters():
    out = run_cli("info")
    for word in ("compiler", "OpenMP", "SIMD", "threads", "adapters"):
        assert word in out


def test_demo_runs_on_shipped_data():
    out = run_cli("demo")
    assert "SpGEMM" in out and "demo finished" in out


def test_bench_spgemm_prints_ratios(tmp_path):
    path = tmp_path / "bench.json"
    out = run_cli("bench", "spgemm", "--cases", "olm1000", "dwt_992", "--rounds", "1",
                  "--threads", "1", "--json", str(path))
    assert "scipy+sort 1t" in out and "sparsecore 1t" in out
    data = json.loads(path.read_text())
    assert [r["case"] for r in data["results"]] == ["olm1000", "dwt_992"]


def test_unknown_bench_suite_fails_cleanly():
    out = subprocess.run([sys.executable, "-P", "-m", "sparsecore", "bench", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown suite" in out.stderr
