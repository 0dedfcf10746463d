"""Static figures (matplotlib, without pyplot): PNGs and GIF frames; each returns a ``Figure``
or draws into the ``ax`` given."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxgd.plots.common import (_MPL_DASH, DIAGNOSTICS, LOG_LABEL, Path, _diagnostic_panels, _points, _sweep_series,
                                    _sweep_top, frame_steps, line_text, log_excess, path_name, style_for)


def _blank(figsize):
    """A matplotlib Figure (constrained layout) on its own Agg canvas: no pyplot, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _mpl_figure(ax=None, figsize=(7, 6), **subplot):
    if ax is not None:
        return ax.figure, ax
    fig = _blank(figsize)
    return fig, fig.add_subplot(**subplot)


def data(x, y, y_noisy=None, true_line=(2.0, 3.0), line_label="true line", ax=None):
    """The data figure in matplotlib."""
    fig, ax = _mpl_figure(ax, (7, 4.5))
    x = np.asarray(x)
    if y_noisy is not None:
        ax.scatter(x, np.asarray(y_noisy), s=18, color="#7f7f7f", alpha=0.7, label="noisy sample (σ = 1)")
    ax.scatter(x, np.asarray(y), s=14, color="#1f77b4", label="data fitted")
    w, b = true_line
    ax.plot([x.min(), x.max()], [w * x.min() + b, w * x.max() + b], color="#d62728",
            label=f"{line_label} {line_text(w, b)}")
    ax.set(xlabel="x", ylabel="y", title="The data")
    ax.legend()
    return fig


def contour(w, b, S, paths: Sequence[Path] = (), minimum=None, names=("W", "b"), ax=None, upto=None):
    """Contours of log10(loss − min) with the paths (up to step ``upto`` if given) and the minima."""
    fig, ax = _mpl_figure(ax, (8, 7))
    z = log_excess(S)
    cs = ax.contourf(np.asarray(w), np.asarray(b), z.T, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=LOG_LABEL)
    for p in paths:
        f = p.finite()
        n = len(f.w) if upto is None else min(upto + 1, len(f.w))
        ax.plot(f.w[:n], f.b[:n], _MPL_DASH.get(p.dash, "-"), color=p.color, marker="o", markersize=2.5,
                linewidth=1.6, label=path_name(p))
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


def loss_curves(paths: Sequence[Path]):
    """Full-data loss and batch loss per step, log scale, side by side."""
    fig = _blank((12, 4.5))
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


def surface(w, b, S, paths: Sequence[Path] = (), names=("W", "b")):
    """A 3-D view; the paths are drawn after the surface, on top of it, in their own colours (matplotlib has no
    depth buffer: sorted by depth, the half-transparent surface tinted every path behind it)."""
    fig, ax = _mpl_figure(None, (8, 7), projection="3d", computed_zorder=False)
    W, B = np.meshgrid(np.asarray(w), np.asarray(b), indexing="ij")  # W[i, j] = w[i], matching S[i, j]
    ax.plot_surface(W, B, np.asarray(S), cmap="viridis", alpha=0.6, linewidth=0, zorder=1)
    for p in paths:
        f = p.finite()
        ax.plot(f.w, f.b, f.loss, _MPL_DASH.get(p.dash, "-"), color=p.color, marker="o", markersize=2, label=path_name(p),
                zorder=3)
        if p.diverged_at >= 0 and len(f.w):
            ax.plot([f.w[-1]], [f.b[-1]], [f.loss[-1]], "x", color=p.color, markersize=12, markeredgewidth=2.5, zorder=3)
    ax.set(xlabel=names[0], ylabel=names[1], zlabel="loss", title="Loss surface and paths")
    ax.view_init(elev=30, azim=45)  # from the low (W, b) corner, the high one behind
    if paths:
        ax.legend(fontsize=7, loc="upper left", ncols=2)
    return fig


GIF_LEGEND_PT = 10


def _animation_setup(w, b, S, paths, minimum, names, max_frames):
    """The figure of the animation: a log-loss image with contour lines, empty path lines, and their key under
    the axes in :data:`GIF_LEGEND_PT` point type (11 px at the GIF's 80 dpi; it was 6 pt, 7 px, over the paths)."""
    fig, ax = _mpl_figure(None, (7, 7))
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
    fig.legend(handles=lines, fontsize=GIF_LEGEND_PT, loc="outside lower center", ncols=2, frameon=False)
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


def animation(w, b, S, paths: Sequence[Path], minimum=None, names=("W", "b"), max_frames: int = 40):
    """A blitted ``FuncAnimation`` of every path moving along together over the log-loss map."""
    from matplotlib.animation import FuncAnimation

    fig, update, steps = _animation_setup(w, b, S, paths, minimum, names, max_frames)
    return FuncAnimation(fig, update, frames=steps, init_func=lambda: update(0), blit=True)


def frames(w, b, S, paths: Sequence[Path], minimum=None, names=("W", "b"), max_frames: int = 40,
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


def sweep(lrs, final_loss: dict, diverged_at: dict, stability_limit=None, ax=None, optimal_lr=None):
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


def diagnostics(series):
    """The matplotlib version of :func:`plotly_diagnostics`."""
    fig = _blank((12, 7))
    axes = fig.subplots(2, 2).ravel()
    for s in series:
        for k, v in _diagnostic_panels(s):
            axes[k].plot(np.arange(1, len(v) + 1), v, _MPL_DASH.get(s["dash"], "-"), color=s["color"], label=s["label"])
    for ax, title in zip(axes, DIAGNOSTICS):
        ax.set(yscale="log", xlabel="step", title=title)
    axes[0].legend(fontsize=6, ncols=2)
    return fig
