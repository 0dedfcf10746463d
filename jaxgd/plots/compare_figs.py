"""The fair comparison's figures (plotly), from :mod:`jaxgd.compare_stats`'s plain arrays and dicts:
performance profiles, lr sensitivity with its IQR band, expected best against tuning budget, and the
ranking per lr search space. Each returns a ``go.Figure``; dicts are keyed by optimizer name, coloured
with :func:`jaxgd.plots.common.style_for`. A failure (``inf``/NaN) is drawn as a gap and a ✕ marker,
never as a number."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from jaxgd.plots.common import SWEEP_FLOOR, style_for

if TYPE_CHECKING:  # plotly is imported lazily, when a figure is made
    import plotly.graph_objects as go


def _go():
    import plotly.graph_objects as go

    return go


_LOG = dict(type="log", exponentformat="power", showexponent="all")


def _color(name: str, i: int) -> str:
    return style_for(name, "full", i)[0]


def _drawn(v) -> np.ndarray:
    """Scores as drawn on a log axis: failures NaN (a gap), values below :data:`SWEEP_FLOOR` at it."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.isfinite(v), np.maximum(v, SWEEP_FLOOR), np.nan)


def performance_profiles(taus, rho_by_opt: Mapping[str, np.ndarray], area: Mapping[str, float] | None = None,
                         interval: Mapping[str, tuple[float, float]] | None = None) -> "go.Figure":
    """Dolan–Moré profiles: the share of tasks each optimizer solves within τ × the fastest, a step
    function of τ. ``taus`` ``(T,)``; ``rho_by_opt``: name -> ``(T,)`` (a row of
    :func:`~jaxgd.compare_stats.performance_profile`); ``area`` (name -> the area up to τ_max) and
    ``interval`` (name -> its bootstrap ``(low, high)``) go into the legend."""
    go = _go()
    taus = np.asarray(taus, dtype=np.float64)
    fig = go.Figure()
    for i, (name, rho) in enumerate(rho_by_opt.items()):
        label = name
        if area is not None and name in area:
            label += f" (area {area[name]:.3f}"
            if interval is not None and name in interval:
                lo, hi = interval[name]
                label += f", 95% CI [{lo:.3f}, {hi:.3f}]"
            label += ")"
        fig.add_trace(go.Scatter(x=taus, y=np.asarray(rho, dtype=np.float64), mode="lines", name=label,
                                 line=dict(color=_color(name, i), shape="hv", width=2),
                                 hovertemplate=f"{name}<br>τ = %{{x:.3g}}<br>share of tasks = %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title="Performance profiles: share of tasks within τ × the fastest (gradient evaluations to target)",
                      xaxis=dict(title="τ (cost / best optimizer's cost)", range=[float(taus.min()), float(taus.max())]),
                      yaxis=dict(title="share of tasks", range=[-0.02, 1.02]), legend=dict(orientation="h", y=-0.2),
                      height=480)
    return fig


def _segments(ok: np.ndarray):
    """The runs of consecutive ``True`` in ``ok``, as index arrays."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    return [np.arange(a, b) for a, b in zip(edges[::2], edges[1::2])]


def lr_sensitivity(lrs, median_by_opt: Mapping[str, np.ndarray], q1_by_opt: Mapping[str, np.ndarray],
                   q3_by_opt: Mapping[str, np.ndarray], task: str | None = None) -> "go.Figure":
    """Final score against learning rate (log–log): the median over seeds as a line, the
    interquartile range as a band (from :func:`~jaxgd.compare_stats.sensitivity`).

    ``lrs`` ``(L,)`` shared, or a dict name -> ``(L_name,)``; each ``*_by_opt``: name -> ``(L,)``.
    Where the median is a failure (more than half the seeds diverged) the line has a gap and a ✕
    sits along the top (one row per optimizer); where only ``q3`` is (a quarter diverged) the band reaches the top edge.
    Scores below :data:`SWEEP_FLOOR` are drawn at it.
    """
    go = _go()
    fin = [np.asarray(v, dtype=np.float64) for d in (median_by_opt, q3_by_opt) for v in d.values()]
    fin = np.concatenate([v[np.isfinite(v)] for v in fin] + [np.zeros(0)])
    top = 10 * max(float(fin.max()), SWEEP_FLOOR) if fin.size else 1.0
    fig = go.Figure()
    for i, (name, med) in enumerate(median_by_opt.items()):
        color = _color(name, i)
        x = np.asarray(lrs[name] if isinstance(lrs, Mapping) else lrs, dtype=np.float64)
        med, q1, q3 = _drawn(med), _drawn(q1_by_opt[name]), _drawn(q3_by_opt[name])
        q3 = np.where(np.isnan(q3) & ~np.isnan(q1), top, q3)  # a failed q3: the band runs to the top
        bx, by = [], []
        for seg in _segments(~np.isnan(q1)):
            bx += [*x[seg], *x[seg][::-1], None]
            by += [*q3[seg], *q1[seg][::-1], None]
        if bx:
            fig.add_trace(go.Scatter(x=bx, y=by, fill="toself", mode="lines", line=dict(width=0), fillcolor=color,
                                     opacity=0.2, name=f"{name} IQR", legendgroup=name, showlegend=False,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=med, mode="lines+markers", name=name, legendgroup=name,
                                 line=dict(color=color, width=2), marker=dict(size=4), connectgaps=False,
                                 customdata=np.stack([q1, q3], axis=-1),
                                 hovertemplate=f"{name}<br>lr = %{{x:.4g}}<br>median = %{{y:.4g}}"
                                               f"<br>IQR [%{{customdata[0]:.4g}}, %{{customdata[1]:.4g}}]<extra></extra>"))
        failed = np.isnan(med)
        if failed.any():
            row = top * 2.5 ** i  # one row of ✕ per optimizer, so none hides another
            fig.add_trace(go.Scatter(x=x[failed], y=np.full(int(failed.sum()), row), mode="markers",
                                     name=f"{name} diverged", legendgroup=name, showlegend=False,
                                     marker=dict(symbol="x", size=8, color=color),
                                     hovertemplate=f"{name}: most seeds diverged at lr = %{{x:.4g}}<extra></extra>"))
    title = "lr sensitivity" + (f" — {task}" if task else "") + ": median and IQR over seeds (✕: most seeds diverged)"
    fig.update_layout(title=title, xaxis=dict(_LOG, title="learning rate"), yaxis=dict(_LOG, title="final loss"),
                      legend=dict(orientation="h", y=-0.2), height=480)
    return fig


def expected_best_curve(budgets, by_opt: Mapping[str, np.ndarray], task: str | None = None) -> "go.Figure":
    """The expected best score of a random search against its budget (grid points tried), one
    line per optimizer (:func:`~jaxgd.compare_stats.expected_best`); log–log. ``budgets`` ``(B,)``;
    ``by_opt``: name -> ``(B,)``. An infinite expectation (a budget that may draw only failures)
    is a gap."""
    go = _go()
    b = np.asarray(budgets, dtype=np.float64)
    fig = go.Figure()
    for i, (name, v) in enumerate(by_opt.items()):
        fig.add_trace(go.Scatter(x=b, y=_drawn(v), mode="lines+markers", name=name, connectgaps=False,
                                 line=dict(color=_color(name, i), width=2), marker=dict(size=5),
                                 hovertemplate=f"{name}<br>budget = %{{x:d}} grid points<br>expected best = %{{y:.4g}}<extra></extra>"))
    title = "Expected best result against tuning budget" + (f" — {task}" if task else "") + " (random search without replacement)"
    fig.update_layout(title=title, xaxis=dict(_LOG, title="budget (grid points tried)"),
                      yaxis=dict(_LOG, title="expected best final loss"), legend=dict(orientation="h", y=-0.2), height=480)
    return fig


def ranking_heatmap(stability: dict) -> "go.Figure":
    """Each optimizer's rank (1 = best) in each lr search space, from
    :func:`~jaxgd.compare_stats.ranking_stability`'s dict: the full grid first, then each window,
    labelled with its range and Kendall's τ against the full grid; ★ marks a changed winner. Each
    cell gives the rank (ties share the better one) and the best score, "failed" where every run
    in the window failed."""
    go = _go()
    names = list(stability["optimizers"])
    cols = {"full grid": stability["full"], **{k: v for k, v in stability["windows"].items() if k != "full"}}
    # competition ranks: 1 + the number of optimizers strictly better, so ties (all failed) share a rank
    best = np.array([[w["best"][n] for w in cols.values()] for n in names], dtype=np.float64)  # (O, W)
    best = np.where(np.isfinite(best), best, np.inf)
    z = 1 + (best[None, :, :] < best[:, None, :]).sum(axis=1)
    text = [[f"{z[i, j]}<br>" + (f"{best[i, j]:.3g}" if np.isfinite(best[i, j]) else "failed") for j in range(len(cols))]
            for i in range(len(names))]
    labels = [f"{label}{' ★' if w['winner_changed'] else ''}<br>[{w['lo']:.2g}, {w['hi']:.2g}]"
              f"<br>τ = {'n/a' if np.isnan(w['kendall_tau']) else format(w['kendall_tau'], '.2f')}" for label, w in cols.items()]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=names, text=text, texttemplate="%{text}", colorscale="Viridis",
                               reversescale=True, zmin=1, zmax=max(len(names), 2), colorbar=dict(title="rank"),
                               hovertemplate="%{y} in %{x}<br>rank %{z}<extra></extra>"))
    fig.update_layout(title="Ranking per lr search space (1 = best; best score below; τ: Kendall's τ-b against the full grid; ★: the winner changes)",
                      yaxis=dict(autorange="reversed"), height=160 + 60 * len(names))
    return fig
