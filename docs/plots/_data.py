"""Shared helpers of the plot scripts and of ``docs/conf.py``: read a record
of ``docs/data/``, the paired ratios the bench suites print (median over
rounds of time(a) / time(b), the rounds measured side by side), a label for
the load the machine was under, and the printed output as the pages show it."""
import json
import re
import statistics
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"

__all__ = ["load", "ratio", "caption", "is_busy", "load_label", "clean_output"]


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


def is_busy(record):
    """True when other work held at least half a core while the record was
    taken (1-minute load average, before or after the run, of 0.5 or more):
    its multi-thread figures then do not show how the code scales."""
    m = record["machine"]
    return max(m["load_average_before"][0], m["load_average_after"][0]) >= 0.5


def load_label(record):
    """"busy machine (load average 3.1 on 2 CPUs)" or "idle machine (...)"."""
    m = record["machine"]
    load = max(m["load_average_before"][0], m["load_average_after"][0])
    state = "busy" if is_busy(record) else "idle"
    return f"{state} machine (load average {load:.1f} on {m['n_cpus']} CPUs)"


_GOAL_BLOCK = re.compile(r"^(?:#+\s*goal summary|other goals)\b", re.I)
_GOAL_LINE = re.compile(r"^\s*goal\b", re.I)
_GOAL_NOTE = re.compile(r"\s*\((?:the )?goals?\b[^()]*\)", re.I)


def clean_output(text):
    """The printed output of a bench command as the pages show it: without
    the suites' target bookkeeping (the "goal summary" and "other goals"
    tables, "goal ..." lines and "(goal >= 10x)" notes), which belongs to
    the project's planning, not to the measurement."""
    out, skipping = [], False
    for line in text.splitlines():
        if _GOAL_BLOCK.match(line.strip()):
            skipping = True
            continue
        if skipping:
            if line.strip() and not line.startswith("#"):
                continue
            skipping = False
        line = re.sub(r"^(\s*)goals(\s*\()", r"\1summary\2", line, flags=re.I)
        line = re.sub(r"^(#+\s*)goals:\s*", r"\1", line, flags=re.I)
        if _GOAL_LINE.match(line):
            continue
        out.append(_GOAL_NOTE.sub("", line))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
