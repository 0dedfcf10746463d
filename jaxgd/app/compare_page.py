"""The page and files of a :class:`jaxgd.compare.Comparison` (``jaxgd compare`` and
``Comparison.write``): ``compare.html`` (offline, on the page shell) and ``compare.json`` (strict
JSON), written as one set. Every number comes from the Comparison and its statistics.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from jaxgd.app import files as jio
from jaxgd.app.results import versions
from jaxgd.app.shell import figures_page, fill
from jaxgd.comparison import winners
from jaxgd.plots.compare_figs import expected_best_curve, lr_sensitivity, performance_profiles

FILES = ("compare.json", "compare.html")


def _num(v, spec=".3g") -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def _best_row(c, t: str, o: str) -> slice:
    """The configurations of ``o`` at its best second hyperparameter on task ``t`` (lr fastest)."""
    L = len(np.unique(c.lr[o]))
    h = c.stats["tasks"][t][o]["best"] // L
    return slice(h * L, (h + 1) * L)


def figures(c) -> dict:
    """The page's plotly figures by id: ``profile``, ``expected`` and ``sens-I`` for task ``I``."""
    p, opts = c.stats["profile"], c.optimizers
    profile = performance_profiles(p["taus"], dict(zip(opts, p["rho"])), dict(zip(opts, p["area"])),
                                   {o: (lo, hi) for o, lo, hi in zip(opts, p["low"], p["high"])})
    taus = np.log10([float(np.min(p["taus"])), float(np.max(p["taus"]))])
    ticks = [v for v in (1, 2, 3, 4, 8, 16, 32, 64, 128, 256) if v <= float(np.max(p["taus"]))]
    profile.update_xaxes(type="log", range=list(taus),  # τ ≤ 4, where the area is taken, gets a third of the width
                         tickvals=ticks, ticktext=[str(v) for v in ticks])  # every label its own τ (no 2, 3 after 10)
    profile.add_vline(x=p["tau_max"], line=dict(color="#888", dash="dot", width=1),
                      annotation=dict(text=f"τ = {p['tau_max']:g}: the area ends", font=dict(size=11)))
    profile.update_layout(title="Performance profiles (gradient evaluations to the target)")
    expected = expected_best_curve(c.stats["expected_best"]["budgets"],
                                   dict(zip(opts, c.stats["expected_best"]["geometric_mean"])))
    expected.update_layout(title="Expected best against tuning budget",
                           yaxis_title="gap left (geometric mean)")
    figs = {"profile": profile, "expected": expected}
    for i, t in enumerate(c.tasks):
        rows = c.stats["tasks"][t]
        sl = {o: _best_row(c, t, o) for o in opts}
        figs[f"sens-{i}"] = lr_sensitivity({o: c.lr[o][sl[o]] for o in opts},
                                           {o: rows[o]["median"][sl[o]] for o in opts},
                                           {o: rows[o]["q1"][sl[o]] for o in opts},
                                           {o: rows[o]["q3"][sl[o]] for o in opts}, task=t)
        figs[f"sens-{i}"].update_layout(title=f"{t}: median and IQR over seeds")
    return figs


def _winner(w: dict) -> str:
    """A window's winner, or the optimizers tied at its best score (a tie is no win), or "all failed"."""
    tied = [k for k in w["best"] if k in winners(w)]
    return "all failed" if not tied else tied[0] if len(tied) == 1 else f"tie of {len(tied)}: " + ", ".join(tied)


def _tables(c) -> dict:
    opts, st, e = c.optimizers, c.stats, html.escape
    task_rows = "\n".join(
        f"<tr><td>{e(t)}</td><td>{_num(c.targets[t], '.4g')}</td>" + "".join(
            f"<td>{_num(st['tasks'][t][o]['fastest_evals'], '.0f')}<br><span class=note>"
            f"{_num(st['tasks'][t][o]['best_median'])}</span></td>" for o in opts) + "</tr>" for t in c.tasks)
    win = st["ranking"]["windows"]
    ranking_rows = "\n".join(
        f"<tr><td>{e(w)}</td><td>{_num(r['lo'])}</td><td>{_num(r['hi'])}</td><td>{r['winner_changed']} of "
        f"{len(c.tasks)}</td><td>{_num(r['mean_kendall_tau'], '.2f')}</td></tr>" for w, r in win.items())
    per = st["ranking"]["per_task"]
    winner_rows = "\n".join(
        f"<tr><td>{e(t)}</td>" + "".join(f"<td>{e(_winner(per[t]['windows'][w]))}</td>" for w in win) + "</tr>"
        for t in c.tasks)
    return dict(opt_heads="".join(f"<th>{e(o)}</th>" for o in opts), task_rows=task_rows, ranking_rows=ranking_rows,
                window_heads="".join(f"<th>{e(w)}</th>" for w in win), winner_rows=winner_rows)


def page(c, v: dict, pack_dir=None) -> str:
    """The self-contained page (:func:`jaxgd.app.shell.figures_page`, plotly.js packed in ``pack_dir``)."""
    figs = figures(c)
    cfg, m, e = c.config, c.meta, html.escape
    H = cfg["num_second"]
    seconds = {o: c.second_names[o] for o in c.optimizers if c.second_names[o]}
    grid = (f"{cfg['num_lrs']} learning rates from {cfg['lr_range'][0]:g} to {cfg['lr_range'][1]:g} × {H} values of "
            f"one second hyperparameter" + (f" ({', '.join(f'{e(o)}: {e(s)}' for o, s in seconds.items())})"
                                             if seconds else "")
            + (f"; optimizers without one got {cfg['num_lrs'] * H} learning rates" if len(seconds) < len(c.optimizers)
               else ""))
    sens = "\n".join(f'<div id="sens-{i}"></div>' for i in range(len(c.tasks)))
    body = fill("compare.html", optimizers=e(", ".join(c.optimizers)), num_tasks=len(c.tasks),
                tasks=e(", ".join(c.tasks)), budget=c.budget, grid=grid, seeds=len(c.seeds), jitter=cfg["jitter"],
                runs=f"{m['runs']:,}", seconds=f"{m['seconds']:.0f}", device=m["device"], dtype=m["dtype"],
                target=f"{cfg['target']:g}", k=cfg["k"], v_jaxgd=v["jaxgd"], v_jax=v["jax"], v_optax=v["optax"],
                second_names=e(", ".join(f"{o} {s}" for o, s in seconds.items()) or "none"), sensitivity=sens,
                **_tables(c))
    return figures_page("jaxgd compare", body, figs, pack_dir)


def write(c, out: str | os.PathLike, pack_dir=None) -> list[Path]:
    """Write compare.json and compare.html of the Comparison ``c`` into ``out``, as one set
    (:func:`jaxgd.app.files.write_all`); ``meta`` gains the versions."""
    v = versions()
    doc = c.document()
    doc["meta"] = {**doc["meta"], "versions": v}
    return jio.write_all(out, {"compare.json": jio.text_writer(jio.dumps(doc, indent=1) + "\n"),
                               "compare.html": jio.text_writer(page(c, v, pack_dir))})
