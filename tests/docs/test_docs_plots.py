"""The docs' figures show their data: every plot script runs (matplotlib,
no display) and each of its axes has plotted values inside its limits, with
valid limits for its scale (a log axis must not start at 0 or below)."""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

PLOTS = Path(__file__).resolve().parents[2] / "docs" / "plots"
SCRIPTS = sorted(p for p in PLOTS.glob("*.py") if not p.name.startswith("_")) if PLOTS.is_dir() else []

matplotlib = pytest.importorskip("matplotlib")


def _values(ax, axis):
    """The plotted values along ``axis`` ("x" or "y"): lines, bar ends, scatter points."""
    k = 0 if axis == "x" else 1
    vals = []
    for line in ax.get_lines():
        data = line.get_xdata() if axis == "x" else line.get_ydata()
        vals.extend(np.asarray(data, dtype=float).ravel())
    for patch in ax.patches:
        if hasattr(patch, "get_height"):
            vals.append(patch.get_x() + patch.get_width() / 2 if axis == "x"
                        else patch.get_y() + patch.get_height())
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.ndim == 2 and len(offsets):
            vals.extend(offsets[:, k])
    vals = np.asarray(vals, dtype=float)
    return vals[np.isfinite(vals)]


@pytest.mark.skipif(not SCRIPTS, reason="docs/plots is not beside the tests")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_plot_shows_its_data(script, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.syspath_prepend(str(PLOTS))
    monkeypatch.chdir(PLOTS)
    plt.close("all")
    runpy.run_path(str(script), run_name="__main__")
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures, f"{script.name} drew no figure"
    for fig in figures:
        for ax in fig.axes:
            if not ax.has_data():
                continue   # legends or colour bars drawn as axes
            for axis in ("x", "y"):
                lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
                scale = ax.get_xscale() if axis == "x" else ax.get_yscale()
                if scale == "log":
                    assert lo > 0, f"{script.name}: log {axis} axis starts at {lo}"
                vals = _values(ax, axis)
                if len(vals):
                    inside = (vals >= lo) & (vals <= hi)
                    assert inside.any(), (
                        f"{script.name}: no plotted {axis} value inside the limits ({lo}, {hi})")
    plt.close("all")
    sys.modules.pop("_data", None)
