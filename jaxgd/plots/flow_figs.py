"""Flows beside gd (:mod:`jaxgd.flows`), in matplotlib: the gd path with its flows on the contours
of a two-parameter problem (:func:`contour`), the same on a landscape's plane (:func:`plane`, the
flows projected by :func:`jaxgd.project`), and the distances to gd with the sharpness against 2/η
(:func:`gaps`). gd's steps are drawn as dots (discrete), the flows as lines, each flow with small
ticks at gd's step times ``t = k·η``, in the look of :data:`FLOWS` (the pages' too). Nothing here computes a
loss: the projections come in.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxgd.plots.common import LOG_LABEL, Path, _points, log_excess
from jaxgd.plots.mpl_figs import _blank, _mpl_figure

# kind -> (label, colour, plotly dash): the flows' look on every page and PNG (jaxgd report, jaxgd landscape and
# the figures here) — thin lines in three dashes, in colours no optimizer has (gd is red), light enough for the
# dark valleys of the viridis contours, where the paths end
FLOWS = {"gradient": ("gradient flow", "#ffffff", "dash"),
         "modified": ("modified flow (Barrett & Dherin 2021)", "#ff8cf0", "dot"),
         "central": ("central flow (Cohen et al. 2024)", "#9cf7ff", "dashdot")}
# their key (a plotly legend) under a contour: dark, as the valleys where their light dashes run
FLOW_KEY = dict(orientation="h", x=0, yanchor="top", bgcolor="#2b2f36", font=dict(color="#ffffff"),
                title=dict(text="beside gd, click to draw:"))
MPL_KEY = dict(facecolor="#2b2f36", labelcolor="#ffffff", framealpha=0.9, fontsize=8)  # the same in matplotlib
FLOW_COLORS = {"gd": "#d62728", **{v[0].split(" (")[0]: v[1] for v in FLOWS.values()}}
_MPL_DASH = {"dash": "--", "dot": ":", "dashdot": "-."}
FLOW_STYLES = {v[0].split(" (")[0]: _MPL_DASH[v[2]] for v in FLOWS.values()}
_MORE = ("#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def color(name: str, i: int = 0) -> str:
    """A path's colour: gd red, each flow its own (:data:`FLOWS`; a label may add " (who, year)")."""
    return FLOW_COLORS.get(name.split(" (")[0], _MORE[i % len(_MORE)])


def draw_flows(ax, flows: dict) -> None:
    """Each flow ``kind -> (x, y)`` (a kind of :data:`FLOWS`) on ``ax`` as a labelled line in its look."""
    for kind, (x, y) in flows.items():
        ax.plot(np.asarray(x), np.asarray(y), _MPL_DASH[FLOWS[kind][2]], color=FLOWS[kind][1], linewidth=1.5,
                label=FLOWS[kind][0])


def _ticks(n: int, most: int = 40) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def _draw(ax, label, x, y, i, gd: bool):
    c = color(label, i)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x)[ok], np.asarray(y)[ok]
    if gd:
        ax.plot(x, y, "-", color=c, linewidth=0.6, alpha=0.6)
        ax.plot(x, y, "o", color=c, markersize=2.5, label=label)
    else:
        ax.plot(x, y, FLOW_STYLES.get(label.split(" (")[0], "-"), color=c, linewidth=1.8, label=label)
        k = _ticks(len(x))
        ax.plot(x[k], y[k], "|", color=c, markersize=5)
    if len(x):
        ax.plot(x[0], y[0], "o", mfc="none", color=c, markersize=9)


def contour(w, b, S, gd: Path, flows: Sequence[Path] = (), minimum=None, names=("W", "b"), ax=None,
            title="gd and its flows"):
    """Contours of log10(loss − min) (``S[i, j] = loss(w[i], b[j])``) with the gd path (dots) and
    each flow (a line; ticks every few step times). ``gd``, ``flows``: :class:`jaxgd.plots.Path`
    (e.g. ``Path.from_trajectory("gradient flow", t)``)."""
    fig, ax = _mpl_figure(ax, (7.5, 6.5))
    cs = ax.contourf(np.asarray(w), np.asarray(b), log_excess(S).T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    for i, p in enumerate([gd, *flows]):
        f = p.finite()
        _draw(ax, p.label, f.w, f.b, i, i == 0)
    pts = _points(minimum)
    if len(pts):
        ax.plot(pts[:, 0], pts[:, 1], "*", markersize=15, color="white", markeredgecolor="black", label="minimum")
    ax.set(xlabel=names[0], ylabel=names[1], title=title, xlim=(np.min(w), np.max(w)), ylim=(np.min(b), np.max(b)))
    ax.legend(loc="best", **MPL_KEY)
    return fig


def plane(landscape, flows: dict, gd: str | None = None, ax=None, title=None):
    """A landscape's plane (:class:`jaxgd.Landscape`: its grid, surface and runs' projections) with
    flows projected on it: ``flows`` a dict name -> :class:`jaxgd.planes.Projection` (from
    ``jaxgd.project(landscape.plane, trajectory.params, problem)``). ``gd``: which of the
    landscape's runs is drawn as gd (default: every run)."""
    fig, ax = _mpl_figure(ax, (7.5, 6.5))
    cs = ax.contourf(landscape.a, landscape.b, log_excess(landscape.surface).T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    runs = landscape.projections if gd is None else {gd: landscape.projections[gd]}
    for i, (name, p) in enumerate(runs.items()):
        _draw(ax, name, np.asarray(p.a), np.asarray(p.b), i, True)
    for i, (name, p) in enumerate(flows.items()):
        _draw(ax, name, np.asarray(p.a), np.asarray(p.b), i + 1, False)
    ax.set(xlabel="a (along d1)", ylabel="b (along d2)", title=title or f"{landscape.name}: gd and its flows "
           f"on the {landscape.plane_kind} plane", xlim=(landscape.a[0], landscape.a[-1]),
           ylim=(landscape.b[0], landscape.b[-1]))
    ax.legend(loc="upper left", **MPL_KEY)
    return fig


def gaps(distances: dict, lr: float, sharpness: dict | None = None, crossing: int | None = None, title=None):
    """Left: each flow's distance to gd per step (``distances`` name -> ``(T+1,)``, log scale).
    Right (with ``sharpness``, name -> ``(T+1,)`` or ``(T,)``, NaN where not measured): each path's
    sharpness against 2/η. ``crossing``: the step where gd's sharpness reaches 2/η (a dotted line)."""
    fig = _blank((12, 4.5) if sharpness else (6.5, 4.5))
    axes = fig.subplots(1, 2 if sharpness else 1)
    axes = np.atleast_1d(axes)
    for i, (name, d) in enumerate(distances.items()):
        d = np.asarray(d, np.float64)
        axes[0].plot(np.arange(len(d)), np.where(d > 0, d, np.nan), color=color(name, i + 1), label=f"gd – {name}")
    axes[0].set(yscale="log", xlabel="gd step k (time k·η)", ylabel="‖θ_gd(k) − θ_flow(kη)‖",
                title="distance to gd")
    if sharpness:
        for i, (name, s) in enumerate(sharpness.items()):
            s = np.asarray(s, np.float64)
            k = np.flatnonzero(np.isfinite(s))
            axes[1].plot(k, s[k], "-" if name != "gd" else ".-", color=color(name, i), markersize=3, label=name)
        axes[1].axhline(2 / lr, color="grey", linestyle="--", label=f"2/η = {2 / lr:.3g}")
        axes[1].set(xlabel="gd step k", ylabel="λmax(∇²L)", title="sharpness")
    for a in axes:
        if crossing is not None:
            a.axvline(crossing, color="grey", linestyle=":", linewidth=1)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
