"""Figures. Thin: each takes NumPy-convertible arrays and returns a figure.

Nothing here computes a loss. plotly functions return ``plotly.graph_objects.Figure``;
``mpl_*`` functions return a ``matplotlib.figure.Figure`` built without pyplot (no global
state, never ``show()``), or draw into the ``ax`` given.

Axes everywhere: x = the first parameter (W), y = the second (b), z = loss. A surface array
``S`` has ``S[i, j] = loss(w[i], b[j])`` (see :func:`jaxgd.loss_surface`); plotly's
``z[row]`` runs along y, so plotly gets ``S.T``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

if TYPE_CHECKING:  # plotly is imported lazily, when a figure is made
    import plotly.graph_objects as go

OPTIMIZER_COLORS = {
    "gd": "#d62728", "momentum": "#1f77b4", "nesterov": "#17becf",
    "rmsprop": "#2ca02c", "adam": "#ff7f0e",
}
MODE_DASH = {"full": "solid", "sgd": "dot", "minibatch": "dash"}
_MPL_DASH = {"solid": "-", "dot": ":", "dash": "--"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class Path(NamedTuple):
    """One optimizer's path: ``w``, ``b``, ``loss`` of shape ``(T+1,)``; ``batch_loss`` ``(T,)``."""

    label: str
    w: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    batch_loss: np.ndarray | None = None
    color: str | None = None
    dash: str = "solid"
    diverged_at: int = -1

    @classmethod
    def from_trajectory(cls, label, traj, color=None, dash="solid") -> "Path":
        return cls(label, np.asarray(traj.params.w), np.asarray(traj.params.b), np.asarray(traj.loss),
                   np.asarray(traj.batch_loss), color, dash, int(traj.diverged_at))

    def finite(self) -> "Path":
        """The part drawn: before the first non-finite point and before ``diverged_at``."""
        ok = np.isfinite(self.w) & np.isfinite(self.b) & np.isfinite(self.loss)
        if self.diverged_at >= 0:
            ok[self.diverged_at:] = False
        n = len(ok) if ok.all() else int(np.argmin(ok))
        bl = None if self.batch_loss is None else self.batch_loss[: max(n - 1, 0)]
        return self._replace(w=self.w[:n], b=self.b[:n], loss=self.loss[:n], batch_loss=bl)


def _points(minimum) -> np.ndarray:
    """``minimum`` as a ``(k, 2)`` array: None, one pair, or a sequence of pairs."""
    if minimum is None:
        return np.zeros((0, 2))
    return np.asarray(minimum, dtype=np.float64).reshape(-1, 2)


LOG_LABEL = "log10(loss − min)"


def log_excess(S) -> np.ndarray:
    """``log10(S − min S)``, floored at 10⁻⁶ of the range: the colour scale of the contour views.

    Subtracting the grid's minimum keeps a loss that reaches 0 on the grid (or goes negative, as
    the saddle's does) from stretching the scale to −300. Non-finite values stay non-finite.
    """
    S = np.asarray(S, dtype=np.float64)
    fin = S[np.isfinite(S)]
    if not fin.size:
        return S
    lo, hi = float(fin.min()), float(fin.max())
    floor = max((hi - lo) * 1e-6, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        return np.log10(np.maximum(S - lo, floor))


def style_for(optimizer: str, mode: str, index: int = 0) -> tuple[str, str]:
    """(color, dash) of a run: colour by optimizer, dash by sampling mode."""
    color = OPTIMIZER_COLORS.get(optimizer, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])
    return color, MODE_DASH.get(mode, "solid")


def _go():
    import plotly.graph_objects as go

    return go


# ----------------------------------------------------------------------------- plotly


def plotly_data(x, y, y_noisy=None, true_line=(2.0, 3.0), line_label="true line") -> "go.Figure":
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
                             name=f"{line_label} y = {w:.4g}x + {b:.4g}", line=dict(color="#d62728")))
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
                mode="lines+markers", name=_name(p), legendgroup=p.label,
                line=dict(color=p.color, width=5, dash=p.dash), marker=_markers(p, n, len(f.w), 2.5, 8),
                hovertemplate="%{fullData.name}<br>W=%{x:.4f}<br>b=%{y:.4f}<br>loss=%{customdata:.4g}<extra></extra>")


def _path_trace_2d(p: Path, upto: int | None = None) -> dict:
    f = p.finite()
    n = len(f.w) if upto is None else min(upto + 1, len(f.w))
    return dict(type="scatter", x=f.w[:n], y=f.b[:n], mode="lines+markers", name=_name(p), legendgroup=p.label,
                line=dict(color=p.color, width=2, dash=p.dash), marker=_markers(p, n, len(f.w), 4, 14))


def _name(p: Path) -> str:
    return p.label if p.diverged_at < 0 else f"{p.label} (diverged at step {p.diverged_at})"


def _markers(p: Path, n: int, drawn: int, size: float, big: float) -> dict:
    """Dots; a diverged path's last drawn point (where it left) is a large ✕ once shown."""
    if p.diverged_at < 0 or n < drawn or n == 0:
        return dict(size=size, color=p.color)
    return dict(size=[size] * (n - 1) + [big], color=p.color, symbol=["circle"] * (n - 1) + ["x"])


def plotly_surface(w, b, S, paths: Sequence[Path] = (), names=("W", "b"), slider: bool = True,
                   max_frames: int = 60) -> "go.Figure":
    """3-D loss surface with one trace per path; see :func:`surface_spec`."""
    return _figure(surface_spec(w, b, S, paths, names, slider, max_frames))


def surface_spec(w, b, S, paths: Sequence[Path] = (), names=("W", "b"), slider: bool = True,
                 max_frames: int = 60) -> dict:
    """The figure dict of :func:`plotly_surface`: 3-D loss surface with one trace per path (legend entries toggle them).

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
                   camera=dict(eye=dict(x=1.6, y=1.5, z=1.0))),  # from the low (W, b) corner
        height=720, margin=dict(l=0, r=0, t=50, b=0), legend=dict(itemsizing="constant"),
    )
    spec = dict(data=[surface, *(trace(p) for p in paths)], layout=layout)
    if slider and paths:
        spec = _with_slider(spec, paths, trace, first_trace=1, max_frames=max_frames)
    return spec


def plotly_contour(w, b, S, paths: Sequence[Path] = (), minimum=None, names=("W", "b"), slider: bool = True,
                   max_frames: int = 60) -> "go.Figure":
    """Contours of the log loss with the paths; see :func:`contour_spec`."""
    return _figure(contour_spec(w, b, S, paths, minimum, names, slider, max_frames))


def contour_spec(w, b, S, paths: Sequence[Path] = (), minimum=None, names=("W", "b"), slider: bool = True,
                 max_frames: int = 60) -> dict:
    """The figure dict of :func:`plotly_contour`: contours of ``log10(loss − min)`` (:func:`log_excess`)
    with the paths on top and the minima marked (stars).

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
    return spec


def frame_steps(paths: Sequence[Path], max_frames: int = 60) -> list[int]:
    """The steps the slider stops at: up to ``max_frames`` from 0 to the longest path's end."""
    longest = max(len(p.w) - 1 for p in paths)
    return sorted(set(np.linspace(0, longest, min(max_frames, longest + 1)).round().astype(int).tolist()))


def _slider(paths: Sequence[Path], make_trace, first_trace: int, max_frames: int):
    """(frames, layout additions) of a step slider over the path traces."""
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
    return frames, layout


def _with_slider(spec: dict, paths, make_trace, first_trace: int, max_frames: int) -> dict:
    frames, extra = _slider(paths, make_trace, first_trace, max_frames)
    return dict(spec, frames=frames, layout={**spec["layout"], **extra})


def add_step_slider(fig, paths: Sequence[Path], make_trace=None, first_trace: int = 1, max_frames: int = 60):
    """Add frames that show each path up to step k (a path shorter than k shows whole).

    Only the path traces (``first_trace`` onwards; ``make_trace(path, k)`` builds each, 3-D by
    default) are in the frames, so the rest of the figure stays put. Returns ``fig``.
    """
    frames, extra = _slider(paths, make_trace or _path_trace_3d, first_trace, max_frames)
    fig.frames = frames
    fig.update_layout(**extra)
    return fig


def plotly_loss_curves(paths: Sequence[Path]) -> "go.Figure":
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


# ----------------------------------------------------------------------------- matplotlib


def _mpl_figure(ax=None, figsize=(7, 6), projection=None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(projection=projection)


def mpl_data(x, y, y_noisy=None, true_line=(2.0, 3.0), line_label="true line", ax=None):
    """The data figure in matplotlib."""
    fig, ax = _mpl_figure(ax, (7, 4.5))
    x = np.asarray(x)
    if y_noisy is not None:
        ax.scatter(x, np.asarray(y_noisy), s=18, color="#7f7f7f", alpha=0.7, label="noisy sample (σ = 1)")
    ax.scatter(x, np.asarray(y), s=14, color="#1f77b4", label="data fitted")
    w, b = true_line
    ax.plot([x.min(), x.max()], [w * x.min() + b, w * x.max() + b], color="#d62728",
            label=f"{line_label} y = {w:.4g}x + {b:.4g}")
    ax.set(xlabel="x", ylabel="y", title="The data")
    ax.legend()
    return fig


def mpl_contour(w, b, S, paths: Sequence[Path] = (), minimum=None, names=("W", "b"), ax=None, upto=None):
    """Contours of log10(loss − min) with the paths (up to step ``upto`` if given) and the minima."""
    fig, ax = _mpl_figure(ax, (8, 7))
    z = log_excess(S)
    cs = ax.contourf(np.asarray(w), np.asarray(b), z.T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    for p in paths:
        f = p.finite()
        n = len(f.w) if upto is None else min(upto + 1, len(f.w))
        ax.plot(f.w[:n], f.b[:n], _MPL_DASH.get(p.dash, "-"), color=p.color, marker="o", markersize=2.5,
                linewidth=1.6, label=_name(p))
        if p.diverged_at >= 0 and n == len(f.w) and n:
            ax.plot(f.w[n - 1], f.b[n - 1], "x", color=p.color, markersize=12, markeredgewidth=2.5)
    pts = _points(minimum)
    if len(pts):
        ax.plot(pts[:, 0], pts[:, 1], marker="*", markersize=16, color="white", markeredgecolor="black",
                linestyle="none", label="minimum" if len(pts) == 1 else "minima")
    ax.set(xlabel=names[0], ylabel=names[1], title="Contours of the loss and paths",
           xlim=(np.min(w), np.max(w)), ylim=(np.min(b), np.max(b)), aspect="equal")
    if paths:
        ax.legend(fontsize=7, loc="upper left", ncols=2)
    return fig


def mpl_loss_curves(paths: Sequence[Path]):
    """Full-data loss and batch loss per step, log scale, side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    a1, a2 = fig.subplots(1, 2)
    for p in paths:
        f = p.finite()
        ls = _MPL_DASH.get(p.dash, "-")
        a1.plot(np.arange(len(f.loss)), f.loss, ls, color=p.color, label=p.label)
        if f.batch_loss is not None:
            a2.plot(np.arange(len(f.batch_loss)), f.batch_loss, ls, color=p.color, label=p.label)
    for a, t in ((a1, "full-data loss at each point"), (a2, "batch loss of each step")):
        a.set(yscale="log", xlabel="step", ylabel="loss", title=t)
    a1.legend(fontsize=7, ncols=2)
    return fig


def mpl_surface(w, b, S, paths: Sequence[Path] = (), names=("W", "b")):
    """A 3-D view (matplotlib has no depth buffer: paths may show through the surface)."""
    fig, ax = _mpl_figure(None, (8, 7), projection="3d")
    W, B = np.meshgrid(np.asarray(w), np.asarray(b), indexing="ij")  # W[i, j] = w[i], matching S[i, j]
    ax.plot_surface(W, B, np.asarray(S), cmap="viridis", alpha=0.6, linewidth=0)
    for p in paths:
        f = p.finite()
        ax.plot(f.w, f.b, f.loss, _MPL_DASH.get(p.dash, "-"), color=p.color, marker="o", markersize=2, label=_name(p))
        if p.diverged_at >= 0 and len(f.w):
            ax.plot([f.w[-1]], [f.b[-1]], [f.loss[-1]], "x", color=p.color, markersize=12, markeredgewidth=2.5)
    ax.set(xlabel=names[0], ylabel=names[1], zlabel="loss", title="Loss surface and paths")
    ax.view_init(elev=30, azim=45)  # from the low (W, b) corner, the high one behind
    if paths:
        ax.legend(fontsize=7, loc="upper left", ncols=2)
    return fig


def _animation_setup(w, b, S, paths, minimum, names, max_frames):
    """The figure of the animation: a log-loss image with contour lines, empty path lines."""
    fig, ax = _mpl_figure(None, (7, 6.2))
    w, b = np.asarray(w), np.asarray(b)
    z = log_excess(S).T
    im = ax.imshow(z, origin="lower", extent=(w[0], w[-1], b[0], b[-1]), cmap="viridis", aspect="equal",
                   interpolation="bilinear")
    ax.contour(w, b, z, levels=12, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(im, ax=ax, label=LOG_LABEL)
    pts = _points(minimum)
    if len(pts):
        ax.plot(pts[:, 0], pts[:, 1], marker="*", markersize=14, color="white", markeredgecolor="black",
                linestyle="none")
    lines = [ax.plot([], [], _MPL_DASH.get(p.dash, "-"), color=p.color, marker="o", markersize=2, linewidth=1.5,
                     label=p.label)[0] for p in paths]
    ax.set(xlabel=names[0], ylabel=names[1], xlim=(w.min(), w.max()), ylim=(b.min(), b.max()),
           title="Paths over the log loss")
    ax.legend(fontsize=6, loc="upper left", ncols=2)
    label = ax.text(0.98, 0.02, "", transform=ax.transAxes, ha="right", va="bottom", color="white", fontsize=11)
    fig.canvas.draw()  # lay out once, then freeze: the constrained layout would rerun every frame
    fig.set_layout_engine("none")
    finite = [p.finite() for p in paths]

    def update(k):
        for ln, f in zip(lines, finite):
            n = min(k + 1, len(f.w))
            ln.set_data(f.w[:n], f.b[:n])
        label.set_text(f"step {k}")
        return [*lines, label]

    return fig, update, frame_steps(paths, max_frames)


def mpl_animation(w, b, S, paths: Sequence[Path], minimum=None, names=("W", "b"), max_frames: int = 40):
    """A blitted ``FuncAnimation`` of every path moving along together over the log-loss map."""
    from matplotlib.animation import FuncAnimation

    fig, update, steps = _animation_setup(w, b, S, paths, minimum, names, max_frames)
    return FuncAnimation(fig, update, frames=steps, init_func=lambda: update(0), blit=True)


def mpl_frames(w, b, S, paths: Sequence[Path], minimum=None, names=("W", "b"), max_frames: int = 40,
               dpi: int = 80) -> list[np.ndarray]:
    """The animation's frames as RGB arrays ``(H, W, 3)``: the static background is drawn once
    and only the paths and the step label are redrawn on it (fast, unlike a full redraw)."""
    fig, update, steps = _animation_setup(w, b, S, paths, minimum, names, max_frames)
    fig.set_dpi(dpi)
    artists = update(0)
    for a in artists:
        a.set_visible(False)
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for k in steps:
        canvas.restore_region(background)
        for a in update(k):
            a.set_visible(True)
            a.axes.draw_artist(a)
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return frames


# ----------------------------------------------------------------------------- sweeps


SWEEP_FLOOR = 1e-30  # final losses below this (exact zeros included) are drawn at it


def _sweep_series(lrs, loss, diverged_at):
    """Points of runs that stayed sane, and the learning rates of the diverged ones."""
    lrs, loss = np.asarray(lrs), np.asarray(loss, dtype=np.float64)
    div = np.asarray(diverged_at) >= 0
    ok = ~div & np.isfinite(loss)
    return lrs[ok], np.maximum(loss[ok], SWEEP_FLOOR), lrs[div]


def _sweep_top(final_loss: dict, diverged_at: dict) -> float:
    """Where the ✕ of diverged runs go: a decade above the highest sane final loss."""
    sane = [np.asarray(v)[(np.asarray(diverged_at[k]) < 0) & np.isfinite(v)] for k, v in final_loss.items()]
    return 10 * max([float(v.max()) for v in sane if v.size] + [1.0])


def plotly_sweep(lrs, final_loss: dict, diverged_at: dict, stability_limit=None, colors=None,
                 optimal_lr=None) -> "go.Figure":
    """Final loss against learning rate (log-log), one line per optimizer.

    Diverged runs are marked ✕ along the top; a dashed line marks each optimizer's divergence
    boundary (its smallest diverging lr), a black line the theory's ``2/λmax`` and a dotted one
    its ``optimal_lr = 2/(λmin + λmax)``, if given.
    """
    go = _go()
    fig = go.Figure()
    top = _sweep_top(final_loss, diverged_at)
    for i, (name, loss) in enumerate(final_loss.items()):
        color = (colors or {}).get(name) or style_for(name, "full", i)[0]
        x, y, xd = _sweep_series(lrs, loss, diverged_at[name])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name,
                                 line=dict(color=color), marker=dict(size=4)))
        if len(xd):
            fig.add_trace(go.Scatter(x=xd, y=np.full(len(xd), top), mode="markers", name=f"{name} diverged",
                                     legendgroup=name, marker=dict(symbol="x", color=color, size=7)))
            fig.add_vline(x=float(xd.min()), line=dict(color=color, dash="dash", width=1))
    if stability_limit is not None:
        fig.add_vline(x=stability_limit, line=dict(color="black", width=2),
                      annotation_text=f"2/λmax = {stability_limit:.4g}", annotation_position="bottom left")
    if optimal_lr is not None:
        fig.add_vline(x=optimal_lr, line=dict(color="black", width=1.5, dash="dot"),
                      annotation_text=f"2/(λmin+λmax) = {optimal_lr:.4g}", annotation_position="top left")
    fig.update_xaxes(type="log", title_text="learning rate")
    fig.update_yaxes(type="log", title_text="final full-data loss")
    fig.update_layout(title="Final loss against learning rate (✕: diverged; losses below 1e-30 drawn at 1e-30)",
                      height=480, margin=dict(t=50))
    return fig


def mpl_sweep(lrs, final_loss: dict, diverged_at: dict, stability_limit=None, ax=None, optimal_lr=None):
    """The matplotlib version of :func:`plotly_sweep`."""
    fig, ax = _mpl_figure(ax, (8, 5))
    top = _sweep_top(final_loss, diverged_at)
    for i, (name, loss) in enumerate(final_loss.items()):
        color = style_for(name, "full", i)[0]
        x, y, xd = _sweep_series(lrs, loss, diverged_at[name])
        ax.plot(x, y, "-o", color=color, markersize=2.5, label=name)
        if len(xd):
            ax.plot(xd, np.full(len(xd), top), "x", color=color, markersize=5)
            ax.axvline(float(xd.min()), color=color, linestyle="--", linewidth=1)
    if stability_limit is not None:
        ax.axvline(stability_limit, color="black", linewidth=1.5, label=f"2/λmax = {stability_limit:.4g}")
    if optimal_lr is not None:
        ax.axvline(optimal_lr, color="black", linewidth=1.2, linestyle=":",
                   label=f"2/(λmin+λmax) = {optimal_lr:.4g}")
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final full-data loss",
           title="Final loss against learning rate (x: diverged; < 1e-30 drawn at 1e-30)")
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- per-step diagnostics

DIAGNOSTICS = ("gradient norm", "update norm", "first moment ‖m‖", "second moment ‖v‖")


def plotly_diagnostics(series) -> "go.Figure":
    """Per-step diagnostics of each run, log scale, in four panels (see :data:`DIAGNOSTICS`).

    ``series``: a sequence of dicts with ``label``, ``color``, ``dash`` and the ``(T,)`` arrays
    ``grad_norm``, ``update_norm``, ``first``, ``second`` (None where a rule keeps no moment).
    """
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=DIAGNOSTICS)
    keys = ("grad_norm", "update_norm", "first", "second")
    for s in series:
        line = dict(color=s["color"], dash=s["dash"], width=1.5)
        for k, key in enumerate(keys):
            v = s[key]
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float64)
            v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
            fig.add_trace(go.Scatter(x=np.arange(1, len(v) + 1), y=v, mode="lines", name=s["label"],
                                     legendgroup=s["label"], showlegend=k == 0, line=line),
                          row=k // 2 + 1, col=k % 2 + 1)
    fig.update_yaxes(type="log")
    fig.update_xaxes(title_text="step")
    fig.update_layout(title="Per-step diagnostics", height=640, margin=dict(t=70))
    return fig


def mpl_diagnostics(series):
    """The matplotlib version of :func:`plotly_diagnostics`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2).ravel()
    for s in series:
        for ax, key in zip(axes, ("grad_norm", "update_norm", "first", "second")):
            v = s[key]
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float64)
            v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
            ax.plot(np.arange(1, len(v) + 1), v, _MPL_DASH.get(s["dash"], "-"), color=s["color"], label=s["label"])
    for ax, title in zip(axes, DIAGNOSTICS):
        ax.set(yscale="log", xlabel="step", title=title)
    axes[0].legend(fontsize=6, ncols=2)
    return fig
