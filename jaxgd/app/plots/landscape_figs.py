"""The figures and the page of ``jaxgd landscape`` (:mod:`jaxgd.app.landscape`): a plane through a
real model's parameter space with every optimizer's projected path, the 1-D interpolation, the
sharpness curves against 2/lr, the projection's gaps and (PCA plane) the explained variance
against a random walk's. Plotly for the page, matplotlib for the PNGs; nothing here computes a loss.
"""

from __future__ import annotations

import html

import numpy as np

from jaxgd.app.plots import LOG_LABEL, log_excess, style_for

PLANE_TEXT = {
    "pca": ("the top two principal directions of the optimizers' paths (PCA, centred; Li et al. 2018, "
            "“Visualizing the Loss Landscape of Neural Nets”, §7)"),
    "random": ("two Gaussian directions, each neuron's row rescaled to the norm of the same row of the "
               "parameters, biases zero (filter normalisation, Li et al. 2018)"),
    "hessian": "the top two eigenvectors of the Hessian at the end of the first optimizer's run (Lanczos on "
               "Hessian-vector products)",
}


def _color(opt: str, i: int) -> str:
    return style_for(opt, "full", i)[0]


def _drawn(n: int, most: int = 400) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def _go():
    import plotly.graph_objects as go

    return go


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
                      scene=dict(xaxis_title="a", yaxis_title="b", zaxis_title="loss"),
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
                      xaxis_title="t", yaxis=dict(title="loss", type="log" if positive else "linear"),
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=50))
    return fig


def _limits(data) -> dict:
    """Per optimizer, the sharpness above which it is unstable on a quadratic (None: no simple bound)."""
    from jaxgd.curvature import sharpness_limit

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


def _num(v, spec=".4g") -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def _largest_gap(data, opt: str, row: dict) -> str:
    """The page's sentence on the largest gap between a path's true loss and its projection's."""
    k = row["max_loss_gap_step"]
    if k is None:
        return "No finite point to compare."
    p = data.projections[opt]
    return (f"Largest gap: {html.escape(opt)} at step {k}, where the true loss is {_num(p.loss[k])} and the loss at "
            f"its projection {_num(p.projected_loss[k])} (a gap of {_num(row['max_loss_gap'])}); that point is "
            f"{_num(p.distance[k], '.3g')} from the plane.")


def page(data) -> str:
    """The self-contained page (plotly.js inlined; nothing fetched)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    from jaxgd.app import landscape

    cfg, meta = data.plan.config, data.meta
    figs = figures(data)
    div = {k: pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=k, config={"displaylogo": False,
                                                                                         "responsive": True})
           for k, f in figs.items()}
    summ = landscape.summary(data)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            opt, _num(r["lr"]), r["steps"], _num(r["final_loss"]), "no" if r["diverged_at"] is None else
            f"at step {r['diverged_at']}", _num(r["max_loss_gap"]), _num(r["max_distance"]),
            _num(r["final_sharpness"]), _num(r["stability_limit"]))) + "</tr>" for opt, r in summ.items())
    worst = max(summ.items(), key=lambda kv: -1 if kv[1]["max_loss_gap"] is None else kv[1]["max_loss_gap"])
    ds = data.plan.dataset
    what = (f"{html.escape(cfg.model)} ({' → '.join(map(str, meta['sizes']))}, {meta['num_params']:,} parameters, "
            f"{cfg.activation}) on {html.escape(ds.name)}: {meta['num_examples']} examples, {ds.task} "
            f"({'softmax cross-entropy' if ds.task == 'classification' else 'squared error'}).")
    batch = "full batch" if cfg.batch_size is None else f"batches of {cfg.batch_size}"
    pca = "" if data.explained is None else (
        f"<p>The two directions explain {100 * data.explained[0]:.1f} % and {100 * data.explained[1]:.1f} % of the "
        f"paths' variance; a random walk of the same length and dimension gives {100 * data.random_walk_explained[0]:.1f} %"
        f" and {100 * data.random_walk_explained[1]:.1f} % (Antognini &amp; Sohl-Dickstein 2018): where the two are "
        "alike, the plane shows no more structure than noise.</p>")
    sections = [
        ("contour", "Loss on the plane",
         "Each path is drawn where its points project onto the plane; the shade of a marker is that point's distance "
         "from the plane (white: on it, black: the farthest). A dark marker's true loss can be far from the contour "
         "under it: hover a point for both."),
        ("surface3d", "The plane in 3-D", "The same plane as a surface; paths sit at the loss of their projection."),
        ("interpolation", "Along a straight line",
         "The loss on the segment from the common start (t = 0) to each optimizer's end (t = 1), and a quarter beyond "
         "each side (Goodfellow et al. 2015). A bump between 0 and 1 is a barrier the optimizer went around."),
        ("sharpness", "Sharpness",
         f"The top eigenvalue of the Hessian of the full-data loss, measured every {cfg.sharpness_every} steps inside "
         "the training scan. A dashed line is the largest sharpness at which that optimizer is stable on a "
         "quadratic: 2/lr for gd, 2(1+β)/(lr(1−β)) for heavy-ball momentum in jaxgd's EMA form (a limit far above "
         "the curves is only named in the legend); Adam has no such fixed limit. Cohen et al. (2021) found that "
         "full-batch gd drives the sharpness up to 2/lr and then hovers there (the edge of stability)."),
        ("gaps", "What the projection hides",
         _largest_gap(data, worst[0], worst[1])),
        ("variance", "Is the plane meaningful?", ""),
    ]
    body = "\n".join(f'<section><h2>{t}</h2><p class="note">{html.escape(n) if k != "gaps" else n}</p>'
                     f'{pca if k == "variance" else ""}{div[k]}</section>' for k, t, n in sections if k in div)
    v = meta["versions"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>jaxgd landscape</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; display: block; overflow-x: auto; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; }} th {{ background: #f3f3f3; }}
td:nth-child(n+2) {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ color: #555; font-size: 0.95em; }} section {{ margin-bottom: 2em; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>jaxgd landscape</h1>
<p>{what} Each optimizer trained for {cfg.epochs} epochs ({batch}) from the same start, at lr {", ".join(f"{o} {v:g}" for o, v in zip(cfg.optimizers, cfg.lr))}. The plane
passes through the end of {html.escape(cfg.optimizers[0])}'s run along {html.escape(PLANE_TEXT[cfg.plane])}.</p>
<p class="note">{cfg.dtype} on {meta['device']}; jaxgd {v['jaxgd']}, jax {v['jax']}, optax {v['optax']}.</p>
<table id="runs"><tr><th>optimizer</th><th>lr</th><th>steps</th><th>final loss</th><th>diverged</th>
<th>largest |loss − projected loss|</th><th>largest distance from the plane</th><th>final sharpness</th>
<th>stable below (quadratic)</th></tr>
{rows}
</table>
{body}
</body></html>
"""


def mpl_figures(data) -> dict:
    """The PNGs: contour (with the projected paths), sharpness, interpolation."""
    from jaxgd.app.plots.mpl_figs import _mpl_figure

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
