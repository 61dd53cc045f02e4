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


def _source_tree_copy(tmp_path):
    """A copy of the package as a source checkout holds it: Python files,
    no _build_info (a build writes it) and no compiled modules."""
    import shutil

    from helpers import REPO

    src = REPO / "sparsecore"
    if not (src / "__init__.py").is_file():
        pytest.skip("needs the source checkout beside the tests")
    if "_sparsecore_editable_loader" in sys.modules:
        pytest.skip("an editable install imports the checkout from any directory")
    shutil.copytree(src, tmp_path / "sparsecore", ignore=shutil.ignore_patterns(
        "_build_info.py", "*.so", "*.pyd", "__pycache__"))
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    return env


@pytest.mark.parametrize("args", [["-m", "sparsecore"], ["-m", "sparsecore", "info"],
                                  ["-msparsecore", "info"]])
def test_python_m_from_the_source_tree_explains_in_one_line(tmp_path, args):
    env = _source_tree_copy(tmp_path)
    out = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "source tree" in lines[0] and "python -P" in lines[0]
    assert "Traceback" not in out.stderr and "ModuleNotFoundError" not in out.stderr


def test_import_from_the_source_tree_raises_a_clear_import_error(tmp_path):
    env = _source_tree_copy(tmp_path)
    code = ("try:\n    import sparsecore\nexcept ImportError as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError sparsecore: this is the source tree")


def test_demo_says_slower_instead_of_a_ratio_below_one():
    import inspect
    import re

    from sparsecore import _demo

    assert _demo.speed(1.0, 0.4) == "2.5x faster"
    assert _demo.speed(1.0, 1.25, digits=2) == "1.25x slower"
    assert _demo.speed(0.8, 1.0) == "1.2x slower"  # not "0.8x faster"
    assert _demo.speed(1.0, 1.0) == "1.0x faster"
    assert _demo.speed(3.0, 1.0, width=5) == "  3.0x faster"
    assert _demo.speed(1.0, 7.4, digits=0) == "7x slower"
    # every "Nx faster/slower" the demo prints comes from that one helper
    source = inspect.getsource(_demo).replace(inspect.getsource(_demo.speed), "")
    assert not re.search(r"x (faster|slower)", source)


def test_bench_busy_runs_beside_cpu_bound_processes():
    out = run_cli("bench", "spgemm", "--cases", "olm1000", "--rounds", "1", "--threads", "1",
                  "--busy", "1")
    assert "1 CPU-bound process(es) running beside" in out and "sparsecore 1t" in out
