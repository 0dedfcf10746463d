"""The figures of ``jaxgd landscape`` (:mod:`jaxgd.app.landscape`): a plane through a real model's
parameter space with every optimizer's projected path, the 1-D interpolation, the sharpness curves
against 2/lr, the projection's gaps and (PCA plane) the explained variance against a random walk's.
Plotly for the page, matplotlib for the PNGs; nothing here computes a loss.
"""

from __future__ import annotations

import numpy as np

from jaxgd.app.plots.common import LOG_LABEL, log_excess, style_for
from jaxgd.app.plots.mpl_figs import _mpl_figure
from jaxgd.app.plots.plotly_figs import _go
from jaxgd.app.shell import thin
from jaxgd.curvature import sharpness_limit

MAX_DRAWN = 400  # path points drawn per optimizer (every point is in landscape.npz)

def _color(opt: str, i: int) -> str:
    return style_for(opt, "full", i)[0]


def _drawn(n: int) -> np.ndarray:
    return thin(n, MAX_DRAWN)


def contour(data):
    """Contours of log10(loss − min) on the plane, with each path's projection; the markers'
    shade is the point's distance from the plane (dark: far), so a path that leaves the plane shows."""
    go = _go()
    fig = go.Figure()
    fig.add_trace(go.Contour(x=data.a, y=data.b, z=log_excess(data.surface).T, colorscale="Viridis", ncontours=30,
                             customdata=data.surface.T, name=LOG_LABEL,
                             colorbar=dict(title=dict(text=LOG_LABEL, side="right"), x=1.0, len=0.9),
                             hovertemplate="a=%{x:.3g}<br>b=%{y:.3g}<br>loss=%{customdata:.4g}<extra></extra>"))
    dmax = max([float(np.nanmax(p.distance)) for p in data.projections.values() if np.isfinite(p.distance).any()]
               + [1e-12])
    for i, (opt, p) in enumerate(data.projections.items()):
        k = _drawn(len(p.a))
        c = _color(opt, i)
        custom = np.stack([k, p.loss[k], p.projected_loss[k], p.distance[k]], axis=1)
        fig.add_trace(go.Scatter(
            x=p.a[k], y=p.b[k], mode="lines+markers", name=opt, legendgroup=opt, line=dict(color=c, width=2),
            customdata=custom,
            marker=dict(size=7, color=p.distance[k], coloraxis="coloraxis", line=dict(color=c, width=1.5)),
            hovertemplate=(f"{opt}<br>step %{{customdata[0]:d}}<br>loss %{{customdata[1]:.4g}}"
                           "<br>loss at the projection %{customdata[2]:.4g}<br>distance from the plane "
                           "%{customdata[3]:.3g}<extra></extra>")))
        fig.add_trace(go.Scatter(x=[p.a[0]], y=[p.b[0]], mode="markers", legendgroup=opt, showlegend=False,
                                 marker=dict(symbol="circle-open", size=14, color=c, line=dict(width=3)),
                                 hovertemplate=f"{opt}: start<extra></extra>"))
        fig.add_trace(go.Scatter(x=[p.a[-1]], y=[p.b[-1]], mode="markers", legendgroup=opt, showlegend=False,
                                 marker=dict(symbol="x", size=12, color=c, line=dict(width=1, color="white")),
                                 hovertemplate=f"{opt}: end<extra></extra>"))
    fig.update_layout(
        title=dict(text="Loss on the plane (○ start, ✕ end)", y=0.98),
        xaxis=dict(title="a (along d1)", range=[data.a[0], data.a[-1]]),
        yaxis=dict(title="b (along d2)", range=[data.b[0], data.b[-1]]),
        coloraxis=dict(colorscale="Greys", cmin=0, cmax=dmax,
                       colorbar=dict(title=dict(text="marker shade: distance from the plane", side="top"),
                                     orientation="h", x=0.5, xanchor="center", y=-0.22, yanchor="top", len=0.7,
                                     thickness=12)),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0), height=700, margin=dict(t=80, r=30, b=40))
    return fig


def surface(data):
    """The loss surface of the plane in 3-D with each path drawn at its projection's loss."""
    go = _go()
    fig = go.Figure(go.Surface(x=data.a, y=data.b, z=data.surface.T, colorscale="Viridis", opacity=0.85,
                               colorbar=dict(title=dict(text="loss", side="right")), name="loss on the plane",
                               hovertemplate="a=%{x:.3g}<br>b=%{y:.3g}<br>loss=%{z:.4g}<extra></extra>"))
    for i, (opt, p) in enumerate(data.projections.items()):
        k = _drawn(len(p.a))
        fig.add_trace(go.Scatter3d(x=p.a[k], y=p.b[k], z=p.projected_loss[k], mode="lines+markers", name=opt,
                                   line=dict(color=_color(opt, i), width=5), marker=dict(size=2.5, color=_color(opt, i)),
                                   customdata=np.stack([k, p.loss[k], p.distance[k]], axis=1),
                                   hovertemplate=(f"{opt}<br>step %{{customdata[0]:d}}<br>loss at the projection "
                                                  "%{z:.4g}<br>true loss %{customdata[1]:.4g}<br>distance "
                                                  "%{customdata[2]:.3g}<extra></extra>")))
    fig.update_layout(title="The plane in 3-D (paths at their projection's loss)", height=640,
                      scene=dict(xaxis_title="a", yaxis_title="b", zaxis_title="loss", xaxis_zeroline=False,
                                 yaxis_zeroline=False, zaxis_zeroline=False),  # dark lines on white
                      legend=dict(orientation="h", y=-0.05), margin=dict(l=0, r=0, t=50, b=0))
    return fig


def interpolation(data):
    """The loss along the straight line from the start (t = 0) to each optimizer's end (t = 1)."""
    go = _go()
    fig = go.Figure()
    for i, (opt, v) in enumerate(data.interpolation.items()):
        fig.add_trace(go.Scatter(x=data.t, y=v, mode="lines", name=opt, line=dict(color=_color(opt, i), width=2)))
    for x, label in ((0.0, "start"), (1.0, "end")):
        fig.add_vline(x=x, line=dict(color="#888", dash="dot"), annotation_text=label, annotation_position="top")
    positive = all(np.all(v[np.isfinite(v)] > 0) for v in data.interpolation.values())
    fig.update_layout(title="1-D interpolation: loss((1 − t)·start + t·end)", height=420,
                      xaxis_title="t", yaxis=dict(title="loss", type="log" if positive else "linear", nticks=6),
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50))
    return fig


def _limits(data) -> dict:
    """Per optimizer, the sharpness above which it is unstable on a quadratic (None: no simple bound)."""
    return {opt: sharpness_limit(opt, lr) for opt, lr in zip(data.plan.config.optimizers, data.plan.config.lr)}


def _sharpness_top(data, limits) -> float:
    """The y range's top: every measured value, and the limits that are not far above them."""
    seen = [float(np.nanmax(t.sharpness)) for t in data.trajectories.values()
            if t.sharpness is not None and np.isfinite(t.sharpness).any()] or [1.0]
    near = [v for v in limits.values() if v is not None and v < 3 * max(seen)]
    return 1.1 * max(seen + near)


def sharpness(data):
    """Sharpness (top Hessian eigenvalue) against step, with each optimizer's stability limit on a
    quadratic where it has one (gd: 2/lr; heavy ball: 2(1+β)/(lr(1−β))); limits far above the
    measured values are named in the legend but not drawn."""
    go = _go()
    fig = go.Figure()
    limits = _limits(data)
    top = _sharpness_top(data, limits)
    for i, (opt, t) in enumerate(data.trajectories.items()):
        if t.sharpness is None:
            continue
        steps = np.flatnonzero(np.isfinite(t.sharpness))
        c = _color(opt, i)
        fig.add_trace(go.Scatter(x=steps, y=t.sharpness[steps], mode="lines+markers", name=opt, legendgroup=opt,
                                 line=dict(color=c, width=2), marker=dict(size=4)))
        lim = limits[opt]
        if lim is not None:
            off = lim > top
            fig.add_trace(go.Scatter(x=[0, len(t.sharpness)], y=[lim, lim], mode="lines", legendgroup=opt,
                                     name=f"{opt} stable below {lim:.4g}" + (" (off the scale)" if off else ""),
                                     line=dict(color=c, dash="dash", width=1.5), visible="legendonly" if off else True))
    fig.update_layout(title="Sharpness along the path (top eigenvalue of the Hessian)", height=420,
                      xaxis_title="step", yaxis=dict(title="sharpness", range=[0, top]),
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50))
    return fig


def gaps(data):
    """How far each path is from the plane: |true − projected loss| and the distance, per step."""
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("|loss − loss at the projection|", "distance from the plane"))
    for i, (opt, p) in enumerate(data.projections.items()):
        k = _drawn(len(p.a))
        line = dict(color=_color(opt, i), width=2)
        fig.add_trace(go.Scatter(x=k, y=np.abs(p.loss - p.projected_loss)[k], mode="lines", name=opt,
                                 legendgroup=opt, line=line), row=1, col=1)
        fig.add_trace(go.Scatter(x=k, y=p.distance[k], mode="lines", name=opt, legendgroup=opt, showlegend=False,
                                 line=line), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title="What the projection hides", height=420, legend=dict(orientation="h", y=-0.25),
                      margin=dict(t=70))
    return fig


def variance(data):
    """PCA plane: the variance the two directions explain, beside a random walk's."""
    go = _go()
    fig = go.Figure()
    fig.add_trace(go.Bar(x=["PC1", "PC2"], y=100 * np.asarray(data.explained), name="the optimizers' paths",
                         marker_color="#1f77b4", text=[f"{100 * v:.1f} %" for v in data.explained],
                         textposition="outside"))
    fig.add_trace(go.Bar(x=["PC1", "PC2"], y=100 * np.asarray(data.random_walk_explained),
                         name="a random walk of the same length and dimension", marker_color="#bbbbbb",
                         text=[f"{100 * v:.1f} %" for v in data.random_walk_explained], textposition="outside"))
    fig.update_layout(title="Explained variance of the plane's directions", barmode="group", height=400,
                      yaxis=dict(title="% of the variance", range=[0, 110]), legend=dict(orientation="h", y=-0.2),
                      margin=dict(t=50))
    return fig


def figures(data) -> dict:
    figs = {"contour": contour(data), "surface3d": surface(data), "interpolation": interpolation(data)}
    if any(t.sharpness is not None for t in data.trajectories.values()):
        figs["sharpness"] = sharpness(data)
    figs["gaps"] = gaps(data)
    if data.explained is not None:
        figs["variance"] = variance(data)
    return figs


def mpl_figures(data) -> dict:
    """The PNGs: contour (with the projected paths), sharpness, interpolation."""
    figs = {}
    fig, ax = _mpl_figure(None, (8, 7))
    cs = ax.contourf(data.a, data.b, log_excess(data.surface).T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    for i, (opt, p) in enumerate(data.projections.items()):
        k = _drawn(len(p.a))
        ax.plot(p.a[k], p.b[k], "-", color=_color(opt, i), label=opt)
        ax.scatter(p.a[k], p.b[k], c=p.distance[k], cmap="Greys", s=12, edgecolors=_color(opt, i), linewidths=0.6,
                   zorder=3)
        ax.plot(p.a[0], p.b[0], "o", mfc="none", mec=_color(opt, i), ms=11, mew=2)
        ax.plot(p.a[-1], p.b[-1], "x", color=_color(opt, i), ms=10, mew=2)
    ax.set(xlabel="a (along d1)", ylabel="b (along d2)", title=f"Loss on the {data.plan.config.plane} plane")
    ax.legend(fontsize=8)
    figs["contour"] = fig
    if any(t.sharpness is not None for t in data.trajectories.values()):
        fig, ax = _mpl_figure(None, (8, 4.5))
        limits = _limits(data)
        top = _sharpness_top(data, limits)
        for i, (opt, t) in enumerate(data.trajectories.items()):
            if t.sharpness is not None:
                s = np.flatnonzero(np.isfinite(t.sharpness))
                ax.plot(s, t.sharpness[s], "-o", ms=2.5, color=_color(opt, i), label=opt)
                lim = limits[opt]
                if lim is not None and lim <= top:
                    ax.axhline(lim, color=_color(opt, i), linestyle="--", linewidth=1, label=f"{opt} stable below {lim:.4g}")
        ax.set_ylim(0, top)
        ax.set(xlabel="step", ylabel="sharpness", title="Sharpness along the path")
        ax.legend(fontsize=8)
        figs["sharpness"] = fig
    fig, ax = _mpl_figure(None, (8, 4.5))
    for i, (opt, v) in enumerate(data.interpolation.items()):
        ax.plot(data.t, v, color=_color(opt, i), label=opt)
    for x in (0.0, 1.0):
        ax.axvline(x, color="#888", linestyle=":")
    ax.set(xlabel="t", ylabel="loss", title="loss((1 − t)·start + t·end)")
    if all(np.all(v[np.isfinite(v)] > 0) for v in data.interpolation.values()):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    figs["interpolation"] = fig
    return figs
