"""The figures of a :class:`jaxgd.survey.Landscape` (``jaxgd.landscape``, ``jaxgd
landscape``): a plane through a model's parameter space with every run's projected path, the 1-D
interpolation, the sharpness curves against each run's stability limit (2/lr for gd), the
projection's gaps and (PCA plane) the explained variance against a random walk's. Plotly for the
page, matplotlib for the PNGs; nothing here computes a loss.

Each figure takes a ``Landscape``, or its pieces directly: a :class:`jaxgd.planes.Projection` or
a dict name -> Projection (with the grid ``a``, ``b``, ``surface`` where drawn), trajectories or
sharpness arrays (with ``lr`` or ``limits``).
"""

from __future__ import annotations

import numpy as np

from jaxgd.plots.common import LOG_LABEL, decade_ticks, log_excess, style_for
from jaxgd.plots.flow_figs import FLOW_KEY, FLOWS, MPL_KEY, draw_flows
from jaxgd.plots.mpl_figs import _mpl_figure
from jaxgd.plots.plotly_figs import _go
from jaxgd.engine import Trajectory
from jaxgd.planes import Projection, evenly

MAX_DRAWN = 400  # path points drawn per run (every point is in landscape.npz)


def _color(opt: str, i: int) -> str:
    return style_for(opt, "full", i)[0]


def _drawn(n: int) -> np.ndarray:
    return evenly(n, MAX_DRAWN)


def _paths(x) -> dict:
    """name -> Projection of NumPy arrays, from a Landscape, one Projection or a dict of them."""
    x = getattr(x, "projections", x)
    x = {"path": x} if isinstance(x, Projection) else x
    return {str(k): Projection(*map(np.asarray, p)) for k, p in x.items()}


AB = "a = %{x:.4g}, b = %{y:.4g}"  # the plane's coordinates in every hover of the contour and the 3-D plane


def axis_titles(x) -> tuple[str, str]:
    """The plane's axis titles: distances along the unit directions d1, d2 (PCA, Hessian plane), or
    multiples of d1, d2 (a random plane's, as large as the parameters); "a (along d1)" without a kind."""
    how = {"pca": "distance along unit d", "hessian": "distance along unit d", "random": "multiples of d"}.get(
        getattr(x, "plane_kind", None))
    return tuple(f"{v}: {how}{i}" if how else f"{v} (along d{i})" for i, v in ((1, "a"), (2, "b")))


def _grid(x, a, b, surface):
    """The grid ``(a, b, surface)``: the Landscape's, else the arrays given (each may be None)."""
    if hasattr(x, "surface"):
        return x.a, x.b, x.surface
    return (None if v is None else np.asarray(v) for v in (a, b, surface))


def contour(x, a=None, b=None, surface=None, flows=None):
    """Contours of log10(loss − min) on the plane (when there is a surface), with each path's
    projection; the markers' shade is the point's distance from the plane (dark: far), so a path
    that leaves the plane shows. ``x``: a Landscape, or a Projection / dict name -> Projection
    with ``a`` ``(A,)``, ``b`` ``(B,)`` and ``surface`` ``(A, B)`` optional. ``flows``: kind ->
    Projection of gd's flows (:mod:`jaxgd.flows`), lines in their look (:data:`jaxgd.plots.flow_figs.FLOWS`),
    off at first, in a key of their own under the plot."""
    go = _go()
    paths = _paths(x)
    a, b, S = _grid(x, a, b, surface)
    fig = go.Figure()
    if S is not None:
        fig.add_trace(go.Contour(x=a, y=b, z=log_excess(S).T, colorscale="Viridis", ncontours=30,
                                 customdata=S.T, name=LOG_LABEL,
                                 colorbar=dict(title=dict(text=LOG_LABEL, side="right"), x=1.0, len=0.9),
                                 hovertemplate=AB + "<br>loss %{customdata:.4g}<extra></extra>"))
    dmax = max([float(np.nanmax(p.distance)) for p in paths.values() if np.isfinite(p.distance).any()] + [1e-12])
    for i, (opt, p) in enumerate(paths.items()):
        k = _drawn(len(p.a))
        c = _color(opt, i)
        custom = np.stack([k, p.loss[k], p.projected_loss[k], p.distance[k]], axis=1)
        fig.add_trace(go.Scatter(
            x=p.a[k], y=p.b[k], mode="lines+markers", name=opt, legendgroup=opt, line=dict(color=c, width=2),
            customdata=custom,
            marker=dict(size=7, color=p.distance[k], coloraxis="coloraxis", line=dict(color=c, width=1.5)),
            hovertemplate=(f"{opt}<br>step %{{customdata[0]:d}}<br>{AB}<br>loss %{{customdata[1]:.4g}}"
                           "<br>loss at the projection %{customdata[2]:.4g}<br>distance from the plane "
                           "%{customdata[3]:.3g}<extra></extra>")))
        fig.add_trace(go.Scatter(x=[p.a[0]], y=[p.b[0]], mode="markers", legendgroup=opt, showlegend=False,
                                 marker=dict(symbol="circle-open", size=14, color=c, line=dict(width=3)),
                                 hovertemplate=f"{opt}: start<br>{AB}<extra></extra>"))
        fig.add_trace(go.Scatter(x=[p.a[-1]], y=[p.b[-1]], mode="markers", legendgroup=opt, showlegend=False,
                                 marker=dict(symbol="x", size=12, color=c, line=dict(width=1, color="white")),
                                 hovertemplate=f"{opt}: end<br>{AB}<extra></extra>"))
    for kind, p in (flows or {}).items():
        label, c, dash = FLOWS[kind]
        k = _drawn(len(p.a))
        fig.add_trace(go.Scatter(x=p.a[k], y=p.b[k], mode="lines", name=label, legend="legend2", visible="legendonly",
                                 line=dict(color=c, dash=dash, width=1.5), customdata=np.stack([k, p.distance[k]], axis=1),
                                 hovertemplate=f"{label}<br>time k·lr, k = %{{customdata[0]:d}}<br>{AB}<br>"
                                               "distance from the plane %{customdata[1]:.3g}<extra></extra>"))
    if flows:
        fig.update_layout(legend2=dict(FLOW_KEY, y=-0.36))
    titles = axis_titles(x)
    fig.update_layout(
        title=dict(text="Loss on the plane (○ start, ✕ end)", y=0.98),
        xaxis=dict(title=titles[0], range=None if a is None else [a[0], a[-1]]),
        yaxis=dict(title=titles[1], range=None if b is None else [b[0], b[-1]]),
        coloraxis=dict(colorscale="Greys", cmin=0, cmax=dmax,
                       colorbar=dict(title=dict(text="marker shade: distance from the plane", side="top"),
                                     orientation="h", x=0.5, xanchor="center", y=-0.22, yanchor="top", len=0.7,
                                     thickness=12)),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0), height=700, margin=dict(t=80, r=30, b=40))
    return fig


def surface(x, a=None, b=None, surface=None):
    """The loss surface of the plane in 3-D with each path drawn at its projection's loss (``x`` as
    :func:`contour`'s; the surface is needed)."""
    go = _go()
    a, b, S = _grid(x, a, b, surface)
    fig = go.Figure(go.Surface(x=a, y=b, z=S.T, colorscale="Viridis", opacity=0.85,
                               colorbar=dict(title=dict(text="loss", side="right")), name="loss on the plane",
                               hovertemplate=AB + "<br>loss %{z:.4g}<extra></extra>"))
    for i, (opt, p) in enumerate(_paths(x).items()):
        k = _drawn(len(p.a))
        fig.add_trace(go.Scatter3d(x=p.a[k], y=p.b[k], z=p.projected_loss[k], mode="lines+markers", name=opt,
                                   line=dict(color=_color(opt, i), width=5), marker=dict(size=2.5, color=_color(opt, i)),
                                   customdata=np.stack([k, p.loss[k], p.distance[k]], axis=1),
                                   hovertemplate=(f"{opt}<br>step %{{customdata[0]:d}}<br>{AB}<br>loss at the "
                                                  "projection %{z:.4g}<br>true loss %{customdata[1]:.4g}<br>distance "
                                                  "%{customdata[2]:.3g}<extra></extra>")))
    fig.update_layout(title="The plane in 3-D (paths at their projection's loss)", height=640,
                      scene=dict(xaxis_title="a (along d1)", yaxis_title="b (along d2)", zaxis_title="loss",
                                 xaxis_zeroline=False,
                                 yaxis_zeroline=False, zaxis_zeroline=False),  # dark lines on white
                      legend=dict(orientation="h", y=-0.05), margin=dict(l=0, r=0, t=50, b=0))
    return fig


def _segments(x, t):
    if hasattr(x, "interpolation"):
        return x.t, x.interpolation
    return np.asarray(t), {str(k): np.asarray(v) for k, v in x.items()}


def interpolation(x, t=None):
    """The loss along the straight line from the start (t = 0) to each run's end (t = 1): ``x`` a
    Landscape, or a dict name -> ``(K,)`` losses at ``t`` ``(K,)``."""
    go = _go()
    t, curves = _segments(x, t)
    fig = go.Figure()
    for i, (opt, v) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=t, y=v, mode="lines", name=opt, line=dict(color=_color(opt, i), width=2)))
    for x0, label in ((0.0, "start"), (1.0, "end")):
        fig.add_vline(x=x0, line=dict(color="#888", dash="dot"), annotation_text=label, annotation_position="top")
    positive = all(np.all(v[np.isfinite(v)] > 0) for v in curves.values())
    # log at whole decades where the losses span 1.5 of them or more, else linear (no "2 5" labels between decades)
    ticks = decade_ticks(np.concatenate([np.ravel(v) for v in curves.values()])) if positive else {}
    fig.update_layout(title="1-D interpolation: loss((1 − t)·start + t·end)", height=420,
                      xaxis_title="t", yaxis=dict(title="loss", **(dict(type="log", **ticks) if ticks else dict(type="linear", nticks=6))),
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50))
    return fig


def _sharpness(x, lr=None, limits=None) -> tuple[dict, dict]:
    """``(curves, limits)``: name -> ``(T,)`` sharpness (NaN where not measured; None: none), and
    name -> the stability limit or None — a Landscape's, else ``2/lr`` (``lr`` a number or a dict
    by name), then ``limits`` (a dict by name) over them."""
    if hasattr(x, "trajectories"):
        curves, known = {k: t.sharpness for k, t in x.trajectories.items()}, dict(x.limits)
    else:
        x = {"run": x} if isinstance(x, Trajectory) or np.ndim(x) == 1 else x
        curves = {str(k): getattr(v, "sharpness", v) for k, v in x.items()}
        lrs = lr if isinstance(lr, dict) else dict.fromkeys(curves, lr)
        known = {k: None if lrs.get(k) is None else 2 / float(lrs[k]) for k in curves}
    curves = {k: None if v is None else np.asarray(v, dtype=float) for k, v in curves.items()}
    return curves, known | dict(limits or {})


def _sharpness_of(x) -> tuple[dict, str | None]:
    """``(labels, note)``: the legend labels of a Landscape's runs measured with
    ``sharpness_of="preconditioned"`` (λ₁(P⁻¹H)), and the line that says so under the title (None
    when every run's is the Hessian's)."""
    settings = getattr(x, "settings", None) or {}
    pre = [k for k, v in settings.items() if v and v.get("sharpness_of") == "preconditioned"]
    note = f"{', '.join(pre)}: λ₁(P⁻¹H), P the update's diagonal preconditioner (step 0 off the scale)" if pre else None
    return {k: f"{k}: λ₁(P⁻¹H)" for k in pre}, note


def _scaled(curves: dict, labels: dict) -> dict:
    """The curves that set the y range: a preconditioned curve without its step-0 value (P from the
    first gradient alone is tiny, λ₁(P⁻¹H) there orders of magnitude above the rest)."""
    return {k: v[1:] if k in labels and v is not None else v for k, v in curves.items()}


def _sharpness_top(curves: dict, limits: dict) -> float:
    """The y range's top: every measured value, and the limits that are not far above them."""
    seen = [float(np.nanmax(s)) for s in curves.values() if s is not None and np.isfinite(s).any()] or [1.0]
    near = [v for v in limits.values() if v is not None and v < 3 * max(seen)]
    return 1.1 * max(seen + near)


def sharpness(x, lr=None, limits=None):
    """Sharpness (top Hessian eigenvalue) against step, with each run's stability limit on a
    quadratic as a dashed line (gd: 2/lr, the edge of stability of Cohen et al. 2021; heavy ball:
    2(1+β)/(lr(1−β))); limits far above the measured values are named in the legend but hidden.

    ``x``: a Landscape (its limits), or a Trajectory / dict name -> Trajectory or ``(T,)`` sharpness
    array (NaN where not measured) with ``lr`` (a number, or a dict by name: limit ``2/lr``) and/or
    ``limits`` (a dict name -> limit or None). A Landscape's runs measured with
    ``sharpness_of="preconditioned"`` are labelled λ₁(P⁻¹H) (their limits are on it) and the title says so."""
    go = _go()
    fig = go.Figure()
    curves, limits = _sharpness(x, lr, limits)
    labels, note = _sharpness_of(x)
    top = _sharpness_top(_scaled(curves, labels), limits)
    for i, (opt, s) in enumerate(curves.items()):
        if s is None:
            continue
        steps = np.flatnonzero(np.isfinite(s))
        c = _color(opt, i)
        fig.add_trace(go.Scatter(x=steps, y=s[steps], mode="lines+markers", name=labels.get(opt, opt), legendgroup=opt,
                                 line=dict(color=c, width=2), marker=dict(size=4)))
        lim = limits.get(opt)
        if lim is not None:
            off = lim > top
            fig.add_trace(go.Scatter(x=[0, len(s)], y=[lim, lim], mode="lines", legendgroup=opt,
                                     name=f"{opt} stable below {lim:.4g}" + (" (off the scale)" if off else ""),
                                     line=dict(color=c, dash="dash", width=1.5), visible="legendonly" if off else True))
    title = "Sharpness along the path (top eigenvalue of the Hessian)"
    fig.update_layout(title=title if note is None else f"{title}<br><sup>{note}</sup>", height=420,
                      xaxis_title="step", yaxis=dict(title="sharpness", range=[0, top]),
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50))
    return fig


def gaps(x):
    """How far each path is from the plane: |true − projected loss| and the distance, per step
    (``x``: a Landscape, a Projection or a dict name -> Projection)."""
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("|loss − loss at the projection|", "distance from the plane"))
    for i, (opt, p) in enumerate(_paths(x).items()):
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


def variance(x):
    """PCA plane: the variance the two directions explain, beside a random walk's (``x``: a
    Landscape or a :class:`jaxgd.planes.PCAPlane`)."""
    go = _go()
    explained, walk = np.asarray(x.explained), np.asarray(x.random_walk_explained)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=["PC1", "PC2"], y=100 * explained, name="the optimizers' paths",
                         marker_color="#1f77b4", text=[f"{100 * v:.1f} %" for v in explained],
                         textposition="outside"))
    fig.add_trace(go.Bar(x=["PC1", "PC2"], y=100 * walk,
                         name="a random walk of the same length and dimension", marker_color="#bbbbbb",
                         text=[f"{100 * v:.1f} %" for v in walk], textposition="outside"))
    fig.update_layout(title="Explained variance of the plane's directions", barmode="group", height=400,
                      yaxis=dict(title="% of the variance", range=[0, 110]), legend=dict(orientation="h", y=-0.2),
                      margin=dict(t=50))
    return fig


def figures(ls) -> dict:
    """A Landscape's plotly figures, by the id of their place on the page."""
    figs = {"contour": contour(ls, flows=getattr(ls, "flows", None)), "surface3d": surface(ls), "interpolation": interpolation(ls)}
    if any(t.sharpness is not None for t in ls.trajectories.values()):
        figs["sharpness"] = sharpness(ls)
    figs["gaps"] = gaps(ls)
    if ls.explained is not None:
        figs["variance"] = variance(ls)
    return figs


def mpl_figures(ls) -> dict:
    """The PNGs: contour (with the projected paths), sharpness, interpolation."""
    figs = {}
    fig, ax = _mpl_figure(None, (8, 7))
    cs = ax.contourf(ls.a, ls.b, log_excess(ls.surface).T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    for i, (opt, p) in enumerate(ls.projections.items()):
        k = _drawn(len(p.a))
        ax.plot(p.a[k], p.b[k], "-", color=_color(opt, i), label=opt)
        ax.scatter(p.a[k], p.b[k], c=p.distance[k], cmap="Greys", s=12, edgecolors=_color(opt, i), linewidths=0.6,
                   zorder=3)
        ax.plot(p.a[0], p.b[0], "o", mfc="none", mec=_color(opt, i), ms=11, mew=2)
        ax.plot(p.a[-1], p.b[-1], "x", color=_color(opt, i), ms=10, mew=2)
    flows = getattr(ls, "flows", {})
    draw_flows(ax, {k: (p.a, p.b) for k, p in flows.items()})
    xlabel, ylabel = axis_titles(ls)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"Loss on the {ls.plane_kind} plane")
    ax.legend(**(MPL_KEY if flows else dict(fontsize=8)))
    figs["contour"] = fig
    if any(t.sharpness is not None for t in ls.trajectories.values()):
        fig, ax = _mpl_figure(None, (8, 4.5))
        curves, limits = _sharpness(ls)
        labels, note = _sharpness_of(ls)
        top = _sharpness_top(_scaled(curves, labels), limits)
        for i, (opt, sh) in enumerate(curves.items()):
            if sh is not None:
                s = np.flatnonzero(np.isfinite(sh))
                ax.plot(s, sh[s], "-o", ms=2.5, color=_color(opt, i), label=labels.get(opt, opt))
                lim = limits[opt]
                if lim is not None and lim <= top:
                    ax.axhline(lim, color=_color(opt, i), linestyle="--", linewidth=1, label=f"{opt} stable below {lim:.4g}")
        ax.set_ylim(0, top)
        ax.set(xlabel="step", ylabel="sharpness", title="Sharpness along the path" + ("" if note is None else f"\n{note}"))
        ax.legend(fontsize=8)
        figs["sharpness"] = fig
    fig, ax = _mpl_figure(None, (8, 4.5))
    for i, (opt, v) in enumerate(ls.interpolation.items()):
        ax.plot(ls.t, v, color=_color(opt, i), label=opt)
    for x in (0.0, 1.0):
        ax.axvline(x, color="#888", linestyle=":")
    ax.set(xlabel="t", ylabel="loss", title="loss((1 − t)·start + t·end)")
    if all(np.all(v[np.isfinite(v)] > 0) for v in ls.interpolation.values()):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    figs["interpolation"] = fig
    return figs
