"""The docs' figures show their data: every plot script of docs/plots and
every example of the gallery (examples/**/plot_*.py) runs with matplotlib's
Agg backend, and in each figure every axes has plotted data, at least one
plotted point of every line, bar series and scatter lies inside the visible
limits (both axes at once), and a log axis has valid limits (above 0).

A figure whose limits were set so that its data fall outside (a log scale
switched on after linear limits, a fixed ``ylim`` below the bars) or an
empty panel fails here, which ``sphinx-build -W`` cannot see."""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLOTS = ROOT / "docs" / "plots"
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in PLOTS.glob("*.py") if not p.name.startswith("_")) if PLOTS.is_dir() else []
GALLERY = sorted(EXAMPLES.rglob("plot_*.py")) if EXAMPLES.is_dir() else []

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402


def _series(ax):
    """``(name, points)`` for every data series of ``ax``: the (x, y) data
    points of each line drawn in data coordinates, the value end of each bar
    of a bar series, and the points of each scatter or filled collection.
    Reference lines drawn in axes coordinates (``axhline``, ``axvline``) are
    not data."""
    out = []
    for line in ax.get_lines():
        if line.get_transform() is not ax.transData or not line.get_visible():
            continue
        x = np.ma.filled(np.ma.asarray(line.get_xdata(), dtype=float), np.nan)
        y = np.ma.filled(np.ma.asarray(line.get_ydata(), dtype=float), np.nan)
        x, y = np.broadcast_arrays(np.ravel(x), np.ravel(y))
        out.append((f"line {line.get_label()!r}", np.column_stack([x, y])))
    for container in ax.containers:
        if not isinstance(container, BarContainer):
            continue
        pts = []
        for bar in container.patches:
            x, y, w, h = bar.get_x(), bar.get_y(), bar.get_width(), bar.get_height()
            pts.append((x + w, y + h / 2) if container.orientation == "horizontal"
                       else (x + w / 2, y + h))
        out.append((f"bars {container.get_label()!r}", np.asarray(pts, dtype=float)))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        pts = np.asarray(coll.get_offsets(), dtype=float)
        if coll.get_offset_transform() is not ax.transData or pts.size == 0 or not pts.any():
            paths = [p.vertices for p in coll.get_paths() if len(p.vertices)]
            if coll.get_transform() is not ax.transData or not paths:
                continue
            pts = np.concatenate(paths)
        out.append((f"collection {coll.get_label()!r}", pts.reshape(-1, 2)))
    for image in ax.images:
        left, right, bottom, top = image.get_extent()
        out.append(("image", np.array([[left, bottom], [right, top],
                                       [(left + right) / 2, (bottom + top) / 2]])))
    return out


def figure_problems(fig, name="figure"):
    """Why ``fig`` does not show its data (an empty list when it does)."""
    problems = []
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    if not axes:
        return [f"{name}: no axes"]
    for i, ax in enumerate(axes):
        where = f"{name}, axes {i} ({ax.get_title()!r})"
        lims = {"x": sorted(ax.get_xlim()), "y": sorted(ax.get_ylim())}
        for axis in ("x", "y"):
            scale = ax.get_xscale() if axis == "x" else ax.get_yscale()
            if scale == "log" and lims[axis][0] <= 0:
                problems.append(f"{where}: log {axis} axis starts at {lims[axis][0]}")
        series = [(label, pts[np.isfinite(pts).all(axis=1)]) for label, pts in _series(ax)]
        series = [(label, pts) for label, pts in series if len(pts)]
        if not series:
            if ax.get_label() != "<colorbar>":
                problems.append(f"{where}: no plotted data")
            continue
        (x0, x1), (y0, y1) = lims["x"], lims["y"]
        for label, pts in series:
            inside = ((pts[:, 0] >= x0) & (pts[:, 0] <= x1)
                      & (pts[:, 1] >= y0) & (pts[:, 1] <= y1))
            if not inside.any():
                problems.append(f"{where}: no point of {label} inside the limits "
                                f"x {x0:.3g}..{x1:.3g}, y {y0:.3g}..{y1:.3g}")
    return problems


def _run(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.chdir(script.parent)
    plt.close("all")
    try:
        runpy.run_path(str(script), run_name="__main__")
        figures = [plt.figure(n) for n in plt.get_fignums()]
        assert figures, f"{script.name} drew no figure"
        problems = [p for fig in figures for p in figure_problems(fig, script.name)]
    finally:
        plt.close("all")
        sys.modules.pop("_data", None)
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not SCRIPTS, reason="docs/plots is not beside the tests")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_plot_shows_its_data(script, monkeypatch):
    _run(script, monkeypatch)


@pytest.mark.skipif(not GALLERY, reason="examples/ is not beside the tests")
@pytest.mark.parametrize("script", GALLERY, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_gallery_example_shows_its_data(script, monkeypatch):
    if script.parent.name == "pytorch":
        pytest.importorskip("torch")
    source = script.read_text()
    assert source.startswith('"""') and "\n===" in source.split('"""')[1], (
        f"{script.name}: a gallery example starts with a docstring holding its title")
    _run(script, monkeypatch)


# The check itself, on figures that are wrong on purpose.

def _bars(ax, heights=(24.0, 11.0, 15.0)):
    return ax.bar(np.arange(len(heights)), heights)


def test_check_passes_a_good_figure():
    fig, (a, b) = plt.subplots(1, 2)
    _bars(a)
    a.set_yscale("log")
    b.plot([1, 10, 100], [3, 2, 1], "o-")
    b.axhline(1, color="k")
    b.set(xscale="log")
    assert figure_problems(fig) == []
    plt.close(fig)


def test_check_fails_limits_set_before_a_log_scale():
    # the old MoE figure: linear limits (bottom 0) set before the log scale
    fig, ax = plt.subplots()
    _bars(ax)
    ax.set_ylim(top=0.5)
    ax.set_yscale("log")
    assert any("log y axis" in p or "no point" in p for p in figure_problems(fig))
    plt.close(fig)


def test_check_fails_bars_beyond_the_limits():
    fig, ax = plt.subplots()
    _bars(ax)
    ax.set_ylim(0, 5)            # every bar fills the axes, no top in view
    assert any("no point of bars" in p for p in figure_problems(fig))
    plt.close(fig)


def test_check_fails_a_series_out_of_view():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3], label="seen")
    ax.plot([1, 2, 3], [50, 60, 70], label="hidden")
    ax.set_ylim(0, 4)
    problems = figure_problems(fig)
    assert len(problems) == 1 and "'hidden'" in problems[0], problems
    plt.close(fig)


def test_check_fails_points_apart_on_each_axis():
    # x values in view and y values in view, but never the same point
    fig, ax = plt.subplots()
    ax.scatter([1, 100], [100, 1])
    ax.set(xlim=(0, 10), ylim=(0, 10))
    assert any("no point" in p for p in figure_problems(fig))
    plt.close(fig)


def test_check_fails_an_empty_panel_and_only_reference_lines():
    fig, (a, b) = plt.subplots(1, 2)
    _bars(a)
    b.axhline(1)                 # a reference line is not data
    b.set_title("empty")
    assert any("'empty'" in p and "no plotted data" in p for p in figure_problems(fig))
    plt.close(fig)


def test_check_fails_a_script_without_figure(tmp_path, monkeypatch):
    script = tmp_path / "plot_nothing.py"
    script.write_text("x = 1\n")
    with pytest.raises(AssertionError, match="drew no figure"):
        _run(script, monkeypatch)
    script.write_text("import matplotlib.pyplot as plt\n"
                      "fig, ax = plt.subplots()\nax.plot([1, 2], [5, 6])\nax.set_ylim(0, 1)\n")
    with pytest.raises(AssertionError, match="no point of line"):
        _run(script, monkeypatch)
