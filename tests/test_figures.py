"""Figures people look at (issue 22's Ugly list): the 3-D marks drawn in fonts that have them, log axes
labelled at decades, the loss axis's headroom, the 3-D camera over the low corner, the PNG's paths in
their own colours, the GIF's key readable."""

import numpy as np
import pytest

from jaxgd import plots
from jaxgd.app.page import loss_range
from jaxgd.plots import mpl_figs, plotly_figs
from jaxgd.plots.common import camera_eye, decade_ticks

W = np.linspace(-8, 8, 41)
B = np.linspace(-8, 8, 33)


def _mse_surface(slope, intercept):
    """MSE of y = W·x + b against y = slope·x + intercept on x ∈ [-5, 5], ``S[i, j]`` at (W[i], B[j])."""
    x = np.linspace(-5, 5, 30)
    y = slope * x + intercept
    return ((W[:, None, None] * x + B[None, :, None] - y) ** 2).mean(-1)


def test_3d_marks_are_symbols_every_font_has():
    # plotly draws 3-D markers as text, "x" as ❌ (U+274C), which DejaVu and Liberation lack: empty boxes
    S = _mse_surface(2.0, 3.0)
    gone = plots.Path("gd", np.array([0.0, 4.0, 9.0]), np.zeros(3), np.array([1.0, 50.0, 900.0]), diverged_at=2)
    fig = plots.plotly_surface(W, B, S, [gone], slider=False)
    symbols = np.ravel([t.marker.symbol for t in fig.data if t.type == "scatter3d"])
    assert "x" not in symbols and "cross" in symbols  # the diverged path still ends in a mark
    assert plots.plotly_contour(W, B, S, [gone], slider=False).data[-1].marker.symbol[-1] == "x"  # 2-D keeps its ✕


@pytest.mark.parametrize("values, dtick", [((1e-3, 10.0), 1), ((1e-30, 1e5), 5), ((0.5, 3.0), None), ((1e-3, 1e-3), None)])
def test_log_axes_are_labelled_at_decades(values, dtick):
    assert decade_ticks(values).get("dtick") == dtick
    assert decade_ticks((1e-30, 1e5), labels=5)["dtick"] == 7  # 35 decades in at most 5 labels


def test_sweep_axes_show_decades_only():
    lrs = np.geomspace(1e-3, 10, 30)
    loss = {"gd": np.geomspace(100, 1e-8, 30)}
    spec = plotly_figs.sweep_spec(lrs, loss, {"gd": np.where(lrs > 1, 5, -1)})
    assert spec["layout"]["xaxis"]["dtick"] == 1  # 4 decades of lr: no "2 5" between them
    assert spec["layout"]["yaxis"]["dtick"] == 2  # 1e-8 … 1e3 (the ✕ row a decade over 100): 11 decades, 8 labels at most


def _run(loss, diverged_at=-1):
    loss = np.asarray(loss, dtype=np.float64)
    return dict(loss=loss, t=np.arange(len(loss)), diverged_at=diverged_at)


def test_the_loss_axis_fits_its_curves():
    down = _run(400 * 0.5 ** np.arange(40))
    lo, hi = loss_range([down, _run(50 * 0.9 ** np.arange(40))])
    assert 400 < 10 ** hi <= 4000  # converging curves: at most a decade over the start (it was 100×)
    assert lo == pytest.approx(hi - 12)
    # a diverging run stays on the axis until it diverges: the divergence rule allows 10⁶ × its start
    up = _run([400, 4e4, 4e6, 4e8, np.inf], diverged_at=4)
    lo, hi = loss_range([down, up])
    assert 4e8 < 10 ** hi <= 4e9
    assert loss_range([_run([np.nan, np.inf])]) == [pytest.approx(np.log10(3) - 12), pytest.approx(np.log10(3))]


@pytest.mark.parametrize("slope, intercept", [(2.0, 3.0), (-3.0, 1.0), (-1.0, -6.0), (1.5, -4.0)])
def test_the_3d_camera_looks_from_the_lowest_corner(slope, intercept):
    S = _mse_surface(slope, intercept)
    corners = {(sx, sy): S[(len(W) - 1) * (sx > 0), (len(B) - 1) * (sy > 0)] for sx in (-1, 1) for sy in (-1, 1)}
    low = min(corners, key=corners.get)
    eye = camera_eye(S)
    assert (np.sign(eye["x"]), np.sign(eye["y"])) == low and eye["z"] > 0
    assert plots.plotly_surface(W, B, S, slider=False).layout.scene.camera.eye.x == eye["x"]
    if slope > 0 and intercept > 0:
        assert eye == dict(x=1.6, y=1.5, z=1.0)  # the notebook's view as before


def _pixels(fig, color):
    from matplotlib.colors import to_rgb

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    return int((np.abs(rgb - np.array(to_rgb(color)) * 255).max(-1) <= 8).sum())


def test_png_surface_draws_paths_in_their_own_colour():
    # a path along the bottom of the bowl, under the half-transparent surface: seen through it, tinted
    S = _mse_surface(2.0, 3.0)
    w = np.linspace(-6, 6, 60)
    loss = ((w[:, None] * np.linspace(-5, 5, 30) + 3 - (2 * np.linspace(-5, 5, 30) + 3)) ** 2).mean(-1)
    p = plots.Path("gd", w, np.full(60, 3.0), loss, color="#ff00ff")
    fig = mpl_figs.surface(W, B, S, [p])
    fig.set_dpi(60)
    alone = mpl_figs.surface(W, B, np.full_like(S, np.nan), [p])  # the same path with no surface over it
    alone.set_dpi(60)
    assert _pixels(fig, "#ff00ff") >= 0.8 * _pixels(alone, "#ff00ff") > 50


def test_gif_key_is_readable_and_off_the_paths():
    S = _mse_surface(2.0, 3.0)
    ps = [plots.Path(f"run {k}", np.linspace(-4, 2, 5), np.linspace(-7, 3, 5), np.ones(5), color=c)
          for k, c in enumerate(["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"])]
    fig, _, _ = mpl_figs._animation_setup(W, B, S, ps, None, ("W", "b"), 5)
    dpi = 80  # mpl_figs.frames' default, the GIF's
    (legend,) = fig.legends or [fig.axes[0].get_legend()]
    assert min(t.get_fontsize() for t in legend.get_texts()) * dpi / 72 >= 10  # px; it was 6 pt, under 7 px
    box, axes = legend.get_window_extent(), fig.axes[0].get_window_extent()
    assert box.y1 <= axes.y0  # under the map, not over the paths


def test_the_interpolation_axis_is_log_at_decades_or_linear():
    """The landscape page's 1-D interpolation labelled "2 5" between decades on a log axis spanning one
    decade (the screenshot review): log at whole decades from 1.5 decades, linear below."""
    from jaxgd.plots.landscape_figs import interpolation

    t = np.linspace(-0.25, 1.25, 7)
    short = interpolation({"gd": np.linspace(0.2, 2.0, 7)}, t).layout.yaxis
    assert short.type == "linear"
    long = interpolation({"gd": np.geomspace(1e-4, 2.0, 7)}, t).layout.yaxis
    assert long.type == "log" and long.dtick == 1
    assert interpolation({"gd": np.linspace(-1.0, 2.0, 7)}, t).layout.yaxis.type == "linear"  # a loss at or under 0
