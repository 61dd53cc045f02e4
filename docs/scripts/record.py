"""Run one ``sparsecore bench`` command and keep its results for the docs.

Usage (from the repository root, under the shared CPU lock on a busy box)::

    python docs/scripts/record.py NAME [--threads N] -- python -P -m sparsecore bench SUITE [options]

The command is run with ``--json`` added; ``docs/data/NAME.json`` then holds
the command, the date, the machine (CPU model, CPU count, load average), the
thread counts, the wall time, the printed tables and the suite's raw results.
The figures and tables of the docs are drawn from these files at build time.
"""
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def machine():
    from sparsecore._bench._harness import cpu_name

    return {"cpu": cpu_name(), "n_cpus": os.cpu_count(), "system": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}


def _rounded(value, digits=5):
    """Floats to ``digits`` significant digits, to keep the files small."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def main(argv):
    given_threads = None
    if len(argv) > 3 and argv[1] == "--threads":
        given_threads = [int(argv[2])]
        argv = [argv[0]] + argv[3:]
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    name, command = argv[0], argv[2:]
    env = machine()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        t0 = time.perf_counter()
        proc = subprocess.run(command + ["--json", str(out)], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            return proc.returncode
        result = json.loads(out.read_text())
    env["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    record = {
        "command": " ".join(command),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": env,
        "threads": result.get("threads", given_threads),
        **({"threads_note": "given to record.py (--threads): the suite runs on that many "
                            "threads and does not report it"}
           if "threads" not in result and given_threads else {}),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "wall_s": round(wall, 1),
        "stdout": proc.stdout,
        "result": _rounded(result),
    }
    DATA.mkdir(exist_ok=True)
    # the provenance indented, the (long) results on one line
    head = json.dumps({k: v for k, v in record.items() if k != "result"}, indent=1)
    text = head[:-2] + ',\n "result": ' + json.dumps(record["result"], separators=(",", ":"))
    (DATA / f"{name}.json").write_text(text + "\n}\n")
    print(f"wrote {DATA / (name + '.json')} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
