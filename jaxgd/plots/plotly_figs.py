"""Interactive figures (plotly), for notebooks and sweep.html; each returns a ``go.Figure``."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Sequence

import numpy as np

from jaxgd.plots.common import (DIAGNOSTICS, LOG_LABEL, Path, _diagnostic_panels, _points, _sweep_series,
                                    _sweep_top, camera_eye, decade_ticks, frame_steps, line_text, log_excess, path_name,
                                    style_for)

if TYPE_CHECKING:  # plotly is imported lazily, when a figure is made
    import plotly.graph_objects as go


def _go():
    import plotly.graph_objects as go

    return go


def data(x, y, y_noisy=None, true_line=(2.0, 3.0), line_label="true line") -> "go.Figure":
    """The data: the points fitted, a line ``y = w·x + b`` (the true one), and a noisy sample."""
    go = _go()
    x = np.asarray(x)
    fig = go.Figure()
    if y_noisy is not None:
        fig.add_trace(go.Scatter(x=x, y=np.asarray(y_noisy), mode="markers", name="noisy sample (σ = 1)",
                                 marker=dict(color="#7f7f7f", size=7, opacity=0.7)))
    fig.add_trace(go.Scatter(x=x, y=np.asarray(y), mode="markers", name="data fitted",
                             marker=dict(color="#1f77b4", size=6)))
    w, b = true_line
    fig.add_trace(go.Scatter(x=[x.min(), x.max()], y=[w * x.min() + b, w * x.max() + b], mode="lines",
                             name=f"{line_label} {line_text(w, b)}", line=dict(color="#d62728")))
    fig.update_layout(title="The data", xaxis_title="x", yaxis_title="y", height=420, margin=dict(t=50))
    return fig


def _figure(spec: dict) -> "go.Figure":
    """A ``go.Figure`` from a dict built here, skipping plotly's per-property validation
    (several times faster for figures with animation frames; the dicts are plotly's schema)."""
    return _go().Figure(spec, _validate=False)


def _path_trace_3d(p: Path, upto: int | None = None, lift: float = 0.0) -> dict:
    """A path in 3-D, drawn ``lift`` above its loss so the surface does not swallow it;
    the hover text gives the true loss."""
    f = p.finite()
    n = len(f.w) if upto is None else min(upto + 1, len(f.w))
    return dict(type="scatter3d", x=f.w[:n], y=f.b[:n], z=f.loss[:n] + lift, customdata=f.loss[:n],
                mode="lines+markers", name=path_name(p), legendgroup=p.label,
                line=dict(color=p.color, width=5, dash=p.dash), marker=_markers(p, n, len(f.w), 2.5, 8, "cross"),
                hovertemplate="%{fullData.name}<br>W=%{x:.4f}<br>b=%{y:.4f}<br>loss=%{customdata:.4g}<extra></extra>")


def _path_trace_2d(p: Path, upto: int | None = None) -> dict:
    f = p.finite()
    n = len(f.w) if upto is None else min(upto + 1, len(f.w))
    return dict(type="scatter", x=f.w[:n], y=f.b[:n], mode="lines+markers", name=path_name(p), legendgroup=p.label,
                line=dict(color=p.color, width=2, dash=p.dash), marker=_markers(p, n, len(f.w), 4, 14))


def _markers(p: Path, n: int, drawn: int, size: float, big: float, end: str = "x") -> dict:
    """Dots; a diverged path's last drawn point (where it left) is a large ``end`` once shown: ✕ in 2-D,
    "cross" (+) in 3-D, where plotly draws markers as text and its "x" is ❌, missing from common fonts (empty boxes)."""
    if p.diverged_at < 0 or n < drawn or n == 0:
        return dict(size=size, color=p.color)
    return dict(size=[size] * (n - 1) + [big], color=p.color, symbol=["circle"] * (n - 1) + [end])


def surface(w, b, S, paths: Sequence[Path] = (), names=("W", "b"), slider: bool = True,
            max_frames: int = 60) -> "go.Figure":
    """3-D loss surface with one trace per path (legend entries toggle them).

    Traces: the surface first, then the paths in order. Paths are drawn 0.5 % of the surface's
    height above their loss, so the surface does not hide them (hover shows the true loss).
    With ``slider``, a step slider and a play button move every path along together; frames
    update only the path traces.
    """
    S = np.asarray(S)
    finite_S = S[np.isfinite(S)]
    lift = 0.005 * float(np.ptp(finite_S)) if finite_S.size else 0.0
    trace = partial(_path_trace_3d, lift=lift)
    surface = dict(type="surface", x=np.asarray(w), y=np.asarray(b), z=S.T, colorscale="Viridis", opacity=0.8,
                   name="loss surface", showscale=False,
                   lighting=dict(ambient=0.9, diffuse=0.4, specular=0.05, fresnel=0.1),
                   hovertemplate=f"{names[0]}=%{{x:.3f}}<br>{names[1]}=%{{y:.3f}}<br>loss=%{{z:.4g}}<extra></extra>")
    layout = dict(
        title=dict(text="Loss surface and paths"),
        scene=dict(xaxis=dict(title=dict(text=names[0])), yaxis=dict(title=dict(text=names[1])),
                   zaxis=dict(title=dict(text="loss")),
                   camera=dict(eye=camera_eye(S))),  # from the lowest corner
        height=720, margin=dict(l=0, r=0, t=50, b=0), legend=dict(itemsizing="constant"),
    )
    spec = dict(data=[surface, *(trace(p) for p in paths)], layout=layout)
    if slider and paths:
        spec = _with_slider(spec, paths, trace, first_trace=1, max_frames=max_frames)
    return _figure(spec)


def contour(w, b, S, paths: Sequence[Path] = (), minimum=None, names=("W", "b"), slider: bool = True,
            max_frames: int = 60) -> "go.Figure":
    """Contours of ``log10(loss − min)`` (:func:`log_excess`) with the paths on top and the minima
    marked (stars).

    Traces: the contour, the minimum (if given: one pair or a sequence of pairs), then the paths.
    """
    S = np.asarray(S, dtype=np.float64)
    z = log_excess(S).T
    data = [dict(type="contour", x=np.asarray(w), y=np.asarray(b), z=z, colorscale="Viridis", ncontours=30,
                 colorbar=dict(title=dict(text=LOG_LABEL)), name=LOG_LABEL, customdata=S.T,
                 hovertemplate=f"{names[0]}=%{{x:.3f}}<br>{names[1]}=%{{y:.3f}}<br>loss=%{{customdata:.4g}}"
                               "<extra></extra>")]
    pts = _points(minimum)
    if len(pts):
        data.append(dict(type="scatter", x=pts[:, 0], y=pts[:, 1], mode="markers",
                         name="minimum" if len(pts) == 1 else "minima",
                         marker=dict(symbol="star", size=16, color="white", line=dict(color="black", width=1))))
    first = len(data)
    data += [_path_trace_2d(p) for p in paths]
    layout = dict(title=dict(text="Contours of the loss and paths"), height=640, margin=dict(t=50),
                  xaxis=dict(title=dict(text=names[0]), range=[float(np.min(w)), float(np.max(w))]),
                  yaxis=dict(title=dict(text=names[1]), range=[float(np.min(b)), float(np.max(b))],
                             scaleanchor="x", scaleratio=1))
    spec = dict(data=data, layout=layout)
    if slider and paths:
        spec = _with_slider(spec, paths, _path_trace_2d, first_trace=first, max_frames=max_frames)
    return _figure(spec)


def _with_slider(spec: dict, paths: Sequence[Path], make_trace, first_trace: int, max_frames: int) -> dict:
    """``spec`` with a play button and a step slider whose frames redraw the path traces
    (``first_trace`` onwards) up to step k, each by ``make_trace(path, k)``."""
    steps = frame_steps(paths, max_frames)
    idx = list(range(first_trace, first_trace + len(paths)))
    frames = [dict(name=str(k), traces=idx, data=[make_trace(p, k) for p in paths]) for k in steps]
    anim = dict(mode="immediate", frame=dict(duration=80, redraw=True), transition=dict(duration=0))
    layout = dict(
        updatemenus=[dict(type="buttons", showactive=False, x=0.0, y=0.0, xanchor="left", yanchor="top",
                          pad=dict(t=40, r=10), buttons=[
                              dict(label="▶ play", method="animate", args=[None, dict(anim, fromcurrent=True)]),
                              dict(label="❚❚ pause", method="animate", args=[[None], anim]),
                          ])],
        sliders=[dict(active=len(steps) - 1, x=0.12, len=0.88, y=0.0, yanchor="top", pad=dict(t=30),
                      currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(k), method="animate", args=[[str(k)], anim]) for k in steps])],
    )
    return dict(spec, frames=frames, layout={**spec.get("layout", {}), **layout})


def add_step_slider(fig, paths: Sequence[Path], make_trace=None, first_trace: int = 1, max_frames: int = 60):
    """Add frames that show each path up to step k (a path shorter than k shows whole).

    Only the path traces (``first_trace`` onwards; ``make_trace(path, k)`` builds each, 3-D by
    default) are in the frames, so the rest of the figure stays put. Returns ``fig``.
    """
    spec = _with_slider({}, paths, make_trace or _path_trace_3d, first_trace, max_frames)
    fig.frames = spec["frames"]
    fig.update_layout(**spec["layout"])
    return fig


def loss_curves(paths: Sequence[Path]) -> "go.Figure":
    """Full-data loss per step (left) and the loss of each step's batch (right), log scale."""
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("full-data loss at each point", "batch loss of each step"))
    for p in paths:
        f = p.finite()
        line = dict(color=p.color, dash=p.dash, width=2)
        fig.add_trace(go.Scatter(x=np.arange(len(f.loss)), y=f.loss, mode="lines", name=p.label,
                                 legendgroup=p.label, line=line), row=1, col=1)
        if f.batch_loss is not None:
            fig.add_trace(go.Scatter(x=np.arange(len(f.batch_loss)), y=f.batch_loss, mode="lines", name=p.label,
                                     legendgroup=p.label, showlegend=False, line=line), row=1, col=2)
    fig.update_yaxes(type="log", title_text="loss")
    fig.update_xaxes(title_text="step")
    fig.update_layout(title="Loss per step", height=460, margin=dict(t=70))
    return fig


def sweep_spec(lrs, final_loss: dict, diverged_at: dict, stability_limit=None, colors=None, optimal_lr=None,
               title: str = "Final loss against learning rate (✕: diverged; losses below 1e-30 drawn at 1e-30)") -> dict:
    """:func:`sweep` as plotly's dict (``data``, ``layout``), as the report's page draws it."""
    data, shapes, notes = [], [], []

    def vline(x, color, text, y, **line):
        shapes.append(dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, line=dict(color=color, **line)))
        # on a log axis an annotation's x is log10 of the value (a shape's is the value itself)
        notes.append(dict(x=float(np.log10(x)), xref="x", y=y, yref="paper", text=text, showarrow=False, xanchor="right",
                          yanchor="middle", bgcolor="rgba(255,255,255,0.8)", font=dict(color=color, size=12)))

    top = _sweep_top(final_loss, diverged_at)
    for i, (name, loss) in enumerate(final_loss.items()):
        color = (colors or {}).get(name) or style_for(name, "full", i)[0]
        x, y, xd = _sweep_series(lrs, loss, diverged_at[name])
        data.append(dict(type="scatter", mode="lines+markers", name=name, x=x, y=y, line=dict(color=color),
                         marker=dict(size=4), hovertemplate=f"{name}<br>lr = %{{x:.4g}}<br>final loss = %{{y:.4g}}<extra></extra>"))
        if len(xd):
            data.append(dict(type="scatter", mode="markers", name=f"{name} diverged", x=xd, y=np.full(len(xd), top),
                             marker=dict(symbol="x", size=7, color=color), showlegend=False,
                             hovertemplate=f"{name} diverged at lr = %{{x:.4g}}<extra></extra>"))
            vline(float(xd.min()), color, f"{name} diverges from {float(xd.min()):.3g}", 0.35 - 0.07 * i, dash="dash", width=1)
    if stability_limit is not None:
        vline(stability_limit, "black", f"2/λmax = {stability_limit:.4g}", 0.04, width=2)
    if optimal_lr is not None:
        vline(optimal_lr, "black", f"2/(λmin+λmax) = {optimal_lr:.4g}", 0.96, width=1.5, dash="dot")
    log = dict(type="log", exponentformat="power", showexponent="all")
    ys = [top, *(np.asarray(t["y"], dtype=np.float64) for t in data)]
    return dict(data=data, layout=dict(title=dict(text=title), xaxis=dict(log, title=dict(text="learning rate"),
                                                                          **decade_ticks(lrs)),
                                       yaxis=dict(log, title=dict(text="final full-data loss"),
                                                  **decade_ticks(np.concatenate([np.ravel(y) for y in ys]))), shapes=shapes,
                                       annotations=notes, legend=dict(orientation="h", y=-0.2)))


def sweep(lrs, final_loss: dict, diverged_at: dict, stability_limit=None, colors=None, optimal_lr=None) -> "go.Figure":
    """Final loss against learning rate (log-log), one line per optimizer.

    Diverged runs are marked ✕ along the top, final losses below :data:`SWEEP_FLOOR` drawn at it; a
    dashed line marks each optimizer's divergence boundary (its smallest diverging lr), a black
    line the theory's ``2/λmax`` and a dotted one its ``optimal_lr = 2/(λmin + λmax)``, if given,
    each labelled.
    """
    return _figure(sweep_spec(lrs, final_loss, diverged_at, stability_limit, colors, optimal_lr))


def diagnostics(series) -> "go.Figure":
    """Per-step diagnostics of each run, log scale, in four panels (see :data:`DIAGNOSTICS`).

    ``series``: a sequence of dicts with ``label``, ``color``, ``dash`` and the ``(T,)`` arrays
    ``grad_norm``, ``update_norm``, ``first``, ``second`` (None where a rule keeps no moment).
    """
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=DIAGNOSTICS)
    for s in series:
        line = dict(color=s["color"], dash=s["dash"], width=1.5)
        for k, v in _diagnostic_panels(s):
            fig.add_trace(go.Scatter(x=np.arange(1, len(v) + 1), y=v, mode="lines", name=s["label"],
                                     legendgroup=s["label"], showlegend=k == 0, line=line),
                          row=k // 2 + 1, col=k % 2 + 1)
    fig.update_yaxes(type="log")
    fig.update_xaxes(title_text="step")
    fig.update_layout(title="Per-step diagnostics", height=640, margin=dict(t=70))
    return fig
