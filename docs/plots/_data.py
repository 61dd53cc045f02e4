"""Shared helpers of the plot scripts: read a record of ``docs/data/`` and
the paired ratios the bench suites print (median over rounds of
time(a) / time(b), the rounds measured side by side)."""
import json
import statistics
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"

__all__ = ["load", "ratio", "caption"]


def load(name):
    """The record ``docs/data/<name>.json`` (command, date, machine, result)."""
    return json.loads((DATA / f"{name}.json").read_text())


def ratio(times, a, b):
    """Median over rounds of time(a) / time(b): > 1 means b is faster."""
    if a not in times or b not in times:
        return float("nan")
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def caption(record):
    """One line saying where the data came from."""
    m = record["machine"]
    return (f"{record['date']}, {m['cpu']}, {m['n_cpus']} CPUs "
            f"(load average {m['load_average_before'][0]:.1f} before the run)")
