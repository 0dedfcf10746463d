"""The report's HTML page, on the app's page shell (:mod:`jaxgd.app.shell`): the text (the
template ``report.html`` filled here), one JSON object of numbers (:func:`page_data`: the surface,
every path thinned to at most :data:`MAX_POINTS` points, the sweeps and the explorables, rounded to
6 significant digits) and plotly.js, both packed. ``page.js`` (next to this module) draws every
figure from the one object: one slider, one play button and one set of run toggles move all views
together, and each frame is a slice of the same arrays rather than a copy of them.
"""

from __future__ import annotations

import html
import math
from urllib.parse import urlencode

import numpy as np

from jaxgd import landscapes
from jaxgd.app.files import dumps
from jaxgd.app.plan import big_data, modes
from jaxgd.plots.common import LOG_LABEL, SWEEP_FLOOR, SYMLOG_LABEL, camera_eye, line_text, log_excess, style_for, symlog
from jaxgd.plots.flow_figs import FLOW_KEY, FLOWS
from jaxgd.plots.plotly_figs import sweep_spec
from jaxgd.app.results import config_dict, run_rows
from jaxgd.app.shell import asset, fill, html_page
from jaxgd.app.summary import number
from jaxgd.planes import evenly
from jaxgd.data import steps_per_epoch
from jaxgd.optim import resolve
from jaxgd.runs import divergence_boundary

MAX_POINTS = 1500  # per path on the page (every step is kept in results.npz)
MODE_SYMBOL = {"full": "circle", "sgd": "diamond", "minibatch": "square"}
RULES = {
    "gd": "θ ← θ − lr·g",
    "momentum": "v ← β·v + (1−β)·g;  θ ← θ − lr·v  (heavy ball, EMA form)",
    "nesterov": "v ← β·v + (1−β)·g;  θ ← θ − lr·(β·v + (1−β)·g)",
    "rmsprop": "s ← ρ·s + (1−ρ)·g²;  θ ← θ − lr·g / (√s + ε)",
    "adam": "m ← β₁·m + (1−β₁)·g;  v ← β₂·v + (1−β₂)·g²;  θ ← θ − lr·m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)",
}
HYPER_NAMES = {"beta": "β", "decay": "ρ", "eps": "ε", "b1": "β₁", "b2": "β₂"}


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def norms(m, idx):
    """``‖(w, b)‖`` of a moment (``Params`` of arrays) at ``idx``, float64; None without one."""
    return None if m is None else np.hypot(_f64(m.w), _f64(m.b))[idx]


def loss_min(data) -> float | None:
    """The loss the page's log-loss views subtract (they draw ``log10(loss − min)``): the smallest
    loss at a known minimum, 0 where that is under 10⁻⁶ of the starting loss (noiseless data, the
    landscapes' minima of 0), None where there is no minimum (the saddle: a linear axis)."""
    mins, start = data.losses.get("minima") or [], abs(data.losses.get("start", 1.0))
    if not mins:
        return None
    m = float(min(mins))
    return 0.0 if abs(m) <= 1e-6 * start else m


def loss_title(m: float | None, what: str = "loss") -> str:
    """What a loss axis plots (:func:`loss_min`): ``what``, or ``what − min (min = 1.234)``."""
    return what if not m else f"{what} − min (min = {number(m)})"


def loss_range(runs: list[dict], m: float = 0.0, decades: float = 12) -> list[float]:
    """log10 of the loss axis's ``[floor, top]`` for ``loss − m`` of ``runs`` (``loss`` at steps ``t``,
    ``diverged_at``): top 3× the largest one before a run diverged (room for its ✕; a diverging run's curve
    stays on the axis until it diverges), floor the smallest drawn but at most ``decades`` below the top (a
    run that reaches 1e-27 would otherwise squeeze the others into the top of the plot) and, where ``m`` is not
    0, at least ``1e-5·|m|`` (the page's 6 digits know ``loss − m`` no closer: page.js draws less at that floor)."""
    ex = [np.maximum(np.asarray(r["loss"]) - m, abs(m) * 1e-5) if m else np.asarray(r["loss"]) for r in runs]
    ok = [np.isfinite(e) & (e > 0) for e in ex]
    before = [e[k & ((r["diverged_at"] < 0) | (np.asarray(r["t"]) < r["diverged_at"]))] for e, k, r in zip(ex, ok, runs)]
    top = 3 * max((float(v.max()) for v in before if v.size), default=1.0)
    lows = [float(np.min(e[k])) for e, k in zip(ex, ok) if np.any(k)]
    floor = max(min(lows, default=top / 10 ** decades), top / 10 ** decades)
    return [math.log10(floor), math.log10(top)]


def _hyper(optimizer: str, lr) -> dict:
    """The optimizer's settings other than lr, by their symbols (β, ρ, ε, β₁, β₂); {} for optax's."""
    try:
        hyper = dict(resolve(optimizer, lr, {}).hyper)
    except Exception:  # an "optax:NAME" optimizer keeps its own defaults
        return {}
    hyper.pop("lr", None)
    return {HYPER_NAMES.get(k, k): float(v) for k, v in hyper.items() if isinstance(v, (int, float))}


def page_data(data) -> dict:
    """Every number the page draws, as one JSON-ready dict (paths thinned, :func:`jaxgd.planes.evenly`).

    ``grid``: the axes ``w (n,)``, ``b (m,)`` and the surface as plotly wants it, ``S (m, n)``
    (row j along b); ``runs``: per run its style, settings, state, the drawn step indices ``t``
    with ``w``, ``b``, ``loss`` at them, and the per-step records at ``tb`` (the steps < T of ``t``);
    ``flows`` (with :attr:`ReportData.flows`): ``run`` (gd's index), ``lr`` and per flow its look
    (:data:`jaxgd.plots.flow_figs.FLOWS`) with ``w``, ``b`` at gd's ``t`` (times ``t·lr``), and their ``key``.
    """
    cfg, p = data.config, data.problem
    S = _f64(data.surface)
    w, b = _f64(data.w), _f64(data.b)
    runs, optimizers = [], list(dict.fromkeys(r.optimizer for r in data.runs))
    for r, row in zip(data.runs, run_rows(data)):
        t = r.traj
        T = int(t.steps)
        idx = evenly(T + 1, MAX_POINTS)
        bidx = idx[idx < T]
        color, dash = style_for(r.optimizer, r.mode.name, optimizers.index(r.optimizer))  # one colour per optimizer
        spe = 1 if r.mode.batch_size is None else steps_per_epoch(p.num_examples, r.mode.batch_size)
        runs.append(dict(
            label=r.label, optimizer=r.optimizer, mode=r.mode.name, modeLabel=r.mode.label, color=color, dash=dash,
            symbol=MODE_SYMBOL.get(r.mode.name, "circle"), lr=r.lr, epochs=r.epochs, steps=T, spe=spe,
            batch=r.mode.batch_size, t=idx, w=_f64(t.params.w)[idx], b=_f64(t.params.b)[idx],
            loss=_f64(t.loss)[idx], tb=bidx, batch_loss=_f64(t.batch_loss)[bidx],
            grad_norm=_f64(t.grad_norm)[bidx], update_norm=_f64(t.update_norm)[bidx],
            first=norms(t.first_moment, bidx), second=norms(t.second_moment, bidx),
            diverged_at=int(t.diverged_at), state=row["state"], why=row["why"], hyper=_hyper(r.optimizer, r.lr)))
    minima = [list(map(float, m)) for m in p.minima]
    m = loss_min(data)
    out = dict(
        names=list(p.param_names), logLabel=LOG_LABEL, dtype=cfg.dtype,
        grid=dict(w=w, b=b, S=S.T, logS=log_excess(S).T, zmin=float(np.nanmin(S)), zmax=float(np.nanmax(S)), eye=camera_eye(S)),
        minima=minima, minLoss=data.losses["minima"], runs=runs, maxPoints=MAX_POINTS, lossMin=m,
        lossRange=None if m is None else loss_range(runs, m), lossTitle=loss_title(m))
    if data.flows:
        g = runs[data.flow_run]
        out["flows"] = dict(run=data.flow_run, lr=g["lr"], key=FLOW_KEY, items=[dict(kind=k, label=FLOWS[k][0], color=FLOWS[k][1],
            dash=FLOWS[k][2], w=_f64(f.params.w)[g["t"]], b=_f64(f.params.b)[g["t"]]) for k, f in data.flows.items()])
    if p.data is not None:
        x, y = (_f64(a) for a in p.data)
        keep = _sample(len(x))
        (lw, lb), label = data_line(data)
        out["data"] = dict(x=x[keep], y=y[keep], names=list(p.data_names), shown=len(keep), total=len(x),
                           line=dict(w=lw, b=lb, label=label, text=line_text(lw, lb, names=p.data_names)))
    if data.scan is not None:
        out["sweep"] = sweep_figure(data)
    ex = data.explore
    if ex.get("whatif"):
        out["whatif"] = [dict(wf, knob=None if wf["knob"] is None else HYPER_NAMES.get(wf["knob"], wf["knob"]))
                         for wf in ex["whatif"]]
        # one axis for every stop, of loss − min as the loss axes (none: linear): a diverging run on it until it
        # diverges, a converging one down to its end
        out["whatifRange"] = None if m is None else loss_range(
            [dict(loss=v, t=np.arange(v.shape[-1]), diverged_at=d) for wf in ex["whatif"] for v, d
             in zip(_f64(wf["loss"]).reshape(-1, np.shape(wf["loss"])[-1]), np.ravel(wf["diverged_at"]))], m, 40)
    for key in ("phase", "cloud", "basins", "exercise"):
        if ex.get(key):
            out[key] = ex[key]
    if ex.get("phase"):  # its budget (the momentum what-if's sweep), and Polyak's optimum where there is theory
        steps = np.shape(next(wf["loss"] for wf in ex["whatif"] if wf["optimizer"] == "momentum"))[-1] - 1
        th = data.theory  # Polyak's optimum [lr, β] (jaxgd's EMA convention)
        out["phase"] = dict(ex["phase"], steps=steps, polyak=None if th is None or not np.isfinite(th.polyak_lr)
                            else [float(th.polyak_lr), float(th.polyak_beta)])
    if ex.get("batch_phase"):
        th = data.theory
        out["batchPhase"] = dict(ex["batch_phase"], limit=None if th is None else float(th.stability_limit),
                                 m=p.num_examples, start_loss=data.losses["start"])
    return out


MAX_DATA_POINTS = 2000  # of the data figure; more are sampled evenly at random (seed 0)


def _sample(m: int) -> np.ndarray:
    """The examples drawn in the data figure: all up to :data:`MAX_DATA_POINTS`, else that many at random."""
    if m <= MAX_DATA_POINTS:
        return np.arange(m)
    return np.sort(np.random.default_rng(0).choice(m, MAX_DATA_POINTS, replace=False))


def data_line(data):
    """The line drawn over the data: the notebook's true line, or the least-squares fit of a file's data."""
    if data.config.data is None:
        return (2.0, 3.0), "true line"
    return tuple(map(float, data.problem.minimum)), "least-squares line"


def sweep_figure(data) -> dict:
    """The learning-rate sweep figure, as plotly's dict (:func:`jaxgd.plots.plotly_figs.sweep_spec`)."""
    sc, m = data.scan, loss_min(data)  # no minimum: sign(loss)·log10(1 + |loss|) on a linear axis
    y = {k: symlog(v) if m is None else np.asarray(v, np.float64) - m for k, v in sc.final_loss.items()}
    # each optimizer's lr on this page (its full-batch run), on its curve: log-log between the two stops around it,
    # where both are drawn (no star past the sweep's range, nor where the curve is broken by a divergence)
    stars = []
    for i, k in enumerate(y):
        lr = next((float(r.lr) for r in data.runs if r.optimizer == k and r.config.batch_size is None), None)
        v = np.maximum(y[k], SWEEP_FLOOR) if m is not None else np.asarray(y[k], np.float64)
        ok = (np.asarray(sc.diverged_at[k]) < 0) & np.isfinite(v)
        j = None if lr is None or not sc.lrs[0] <= lr <= sc.lrs[-1] else min(int(np.searchsorted(sc.lrs, lr)), len(sc.lrs) - 1)
        if j is not None and ok[j] and ok[max(j - 1, 0)]:
            f = (np.log10, lambda u: 10 ** u) if m is not None else (lambda u: u, lambda u: u)
            pair = [max(j - 1, 0), j]
            stars.append((k, lr, float(f[1](np.interp(np.log10(lr), np.log10(sc.lrs[pair]), f[0](v[pair])))), style_for(k, "full", i)[0]))
    fig = sweep_spec(sc.lrs, y, sc.diverged_at, sc.stability_limit, optimal_lr=sc.optimal_lr, log=m is not None,
                     ylabel=SYMLOG_LABEL if m is None else loss_title(m, "final full-data loss"),
                     title=f"Final loss after {sc.epochs} full-batch steps against learning rate (✕: diverged"
                           + ("; ★: this page's full-batch runs)" if stars else ")"))
    star = lambda color, **k: dict(type="scatter", mode="markers", marker=dict(symbol="star", size=13, color=color,  # noqa: E731
                                                                               line=dict(color="black", width=1)), **k)
    fig["data"] += [star(c, x=[lr], y=[v], name=k, showlegend=False,
                         hovertemplate=f"{k}: this page's full-batch run, lr = %{{x:.4g}}<extra></extra>") for k, lr, v, c in stars]
    if stars:  # the key: one grey star (each star takes its optimizer's colour)
        fig["data"].append(star("#bbbbbb", x=[None], y=[None], name="this page's runs"))
    return fig


# ----------------------------------------------------------------------------- text


def _esc(s) -> str:
    return html.escape(str(s))


def _text(name: str, yes: bool) -> str:
    """One of report.html's two wordings ``NAME-yes`` / ``NAME-no`` (e.g. on a quadratic or not)."""
    return fill("report.html", f"{name}-{'yes' if yes else 'no'}")


def flows_note(lr: float, flows: dict, how: str) -> str:
    """The sentence on gd's ``flows`` (kind -> path) at ``lr`` on the report's page and the landscape's."""
    return fill("report.html", "flows", lr=f"{lr:g}", how=how, central=_text("central", "central" in flows))


def _describe(data) -> str:
    p, cfg = data.problem, data.config
    if cfg.problem != "notebook":
        doc = landscapes.LANDSCAPES[cfg.problem].__doc__.split(":")[0].strip("`")
        mins = "; ".join(f"({m[0]:.4g}, {m[1]:.4g})" for m in p.minima) or "none"
        return f"The {cfg.problem} function f(a, b) = {doc}. Known minima: {mins}."
    x, y = p.data_names
    what = (f"y = 2x + 3 on {p.num_examples} points of [-5, 5]" if cfg.data is None
            else f"{y} = W·{x} + b to the {p.num_examples:,} points of {cfg.data}")
    return f"Fitting {what} by mean squared error in (W, b); minimum at W = {p.minimum.w:.6g}, b = {p.minimum.b:.6g}."


def _optimizer_rows(data) -> str:
    """Each optimizer's update rule, its settings, and per mode its lr, epochs and steps."""
    by_opt: dict = {}
    for r in data.runs:
        by_opt.setdefault(r.optimizer, []).append(r)
    rows = []
    for opt, rs in by_opt.items():
        rule = RULES.get(opt, "the optax optimizer of that name, with its own defaults")
        hyper = ", ".join(f"{k} = {v:g}" for k, v in _hyper(opt, rs[0].lr).items())
        per_mode = "; ".join(f"{r.mode.label}: lr {r.lr:g}, {r.epochs} epoch(s) = {int(r.traj.steps)} steps" for r in rs)
        rows.append(f"<tr><td><b>{_esc(opt)}</b></td><td class='rule'>{_esc(rule)}</td>"
                    f"<td>{_esc(hyper) or '—'}</td><td>{_esc(per_mode)}</td></tr>")
    return "".join(rows)


def _why_lengths(data) -> str:
    """Why the runs differ in length, and (gd at full batch on a quadratic) why it stops short."""
    p, th = data.problem, data.theory
    labels = {m.name: m.label for m in modes(data.config, p)}
    by: dict = {}  # optimizer -> its runs that did not converge (the runs table says how each ended)
    for r in run_rows(data):
        if r["state"] != "converged":
            by.setdefault(r["optimizer"], []).append(r)
    lost = [f"{o} ({rs[0]['state']}{' in every mode' if len(labels) > 1 else ''})" if len(rs) == len(labels) and
            len({r["state"] for r in rs}) == 1 else f"{o} ({', '.join(labels[r['mode']] + ': ' + r['state'] for r in rs)})"
            for o, rs in by.items()]
    lost = fill("report.html", "lost", n=sum(map(len, by.values())), total=len(data.runs), runs=_esc(", ".join(lost))) if lost else ""
    parts = [fill("report.html", "lengths-data", lost=lost) if p.num_examples is not None
             else fill("report.html", "lengths-landscape") + lost]
    gd = next((r for r in data.runs if r.optimizer == "gd" and r.mode.batch_size is None), None)
    if gd is not None and th is not None and int(gd.traj.diverged_at) < 0 and th.eigenvalues[0] > 0:
        lo, hi = float(th.eigenvalues[0]), float(th.eigenvalues[-1])
        T = int(gd.traj.steps)
        parts.append(fill("report.html", "lengths-gd", name=_esc(p.param_names[1]), T=T,
                          fb=f"{float(np.asarray(gd.traj.params.b)[-1]):.3g}", lo=f"{lo:.3g}", hi=f"{hi:.3g}",
                          cond=f"{hi / lo:.3g}", factor=f"{1 - gd.lr * lo:.3g}", limit=f"{2 / hi:.3g}",
                          removed=f"{100 * (1 - abs(1 - gd.lr * lo) ** T):.0f}"))
    return " ".join(parts)


def _grad_check(data) -> dict:
    """The gradient check's sentence, as the values of report.html's."""
    gc, dtype = data.grad_check, data.config.dtype
    tol = 1000 * float(np.finfo(dtype).eps)
    n = np.shape(gc.autodiff.w)
    return dict(
        verdict="<b class='ok'>✓ agree</b>" if gc.max_rel_error <= tol else "<b class='bad'>✗ disagree</b>",
        formula=_text("formula", data.problem.data is not None),
        where=(f"all {n[0]}×{n[1]} grid points" if n == (data.config.grid, data.config.grid) else
               f"{n[0]}×{n[1]} points of the grid (every few: the data are {data.problem.num_examples:,} examples)"),
        rel=f"{gc.max_rel_error:.2e}", abs=f"{gc.max_abs_error:.2e}", tol=f"{tol:.1e}")


def _run_rows(data) -> str:
    labels = {m.name: m.label for m in modes(data.config, data.problem)}
    rows = []
    for row in run_rows(data):
        state, why = row["state"], row["why"]
        cells = (row["optimizer"], labels[row["mode"]], f"{row['lr']:g}", row["steps"], number(row["final_w"]),
                 number(row["final_b"]), number(row["final_loss"]), why if state == "diverged" else f"{state}: {why}")
        rows.append(f"<tr class='{state.replace(' ', '-')}'>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return "\n".join(rows)


def _kind(data) -> str:
    """Which wording of a theory text: "yes" where the theory's limits (the red mark, the black lines) are drawn,
    "no" where they are not, "none" where there is no minimum (the saddle)."""
    return "none" if not data.problem.minima else "yes" if data.theory is not None else "no"


def _sweep_section(data) -> str:
    if data.scan is None:
        if data.config.sweep and big_data(data.problem):
            return fill("report.html", "sweep-skipped", m=f"{data.problem.num_examples:,}")
        return ""
    sc, th = data.scan, data.theory
    items = []
    for k in sc.final_loss:
        bnd = divergence_boundary(sc.lrs, sc.diverged_at[k])
        items.append(f"<li>{_esc(k)}: " + ("no run diverged" if bnd is None else
                                            f"runs diverge from lr = {bnd:.4g} (its dashed line)") + "</li>")
    theory = "" if sc.stability_limit is None or th is None else fill(
        "report.html", "sweep-theory", limit=f"{sc.stability_limit:.5g}", optimal=f"{sc.optimal_lr:.5g}",
        epochs=sc.epochs, beta=f"{th.polyak_beta:.4g}", polyak_lr=f"{th.polyak_lr:.4g}",
        marked=": the white cross on the lr × β diagram" if data.explore.get("phase") else "")
    return fill("report.html", "sweep", n=len(sc.lrs), lo=f"{sc.lrs[0]:g}", hi=f"{sc.lrs[-1]:g}", epochs=sc.epochs,
                theory=theory, items="".join(items), look=fill("report.html", f"sweep-look-{_kind(data)}"))


def _explorables(data, D) -> list[str]:
    ex = data.explore
    out = []
    text = lambda name: fill("report.html", f"{name}-{_kind(data)}")  # noqa: E731
    noiseless = data.config.noise == 0 and data.config.data is None
    if ex.get("exercise"):
        out.append(_exercises(data, noiseless))
    if ex.get("whatif"):
        out.append(fill("report.html", "whatif", limit=text("whatif-limit"), look=text("whatif-look")))
    if ex.get("phase"):
        ph = D["phase"]
        polyak = "" if ph["polyak"] is None else fill("report.html", "polyak", lr=f"{ph['polyak'][0]:.4g}", beta=f"{ph['polyak'][1]:.4g}")
        colour = "sign(loss)·log10(1 + |loss|) of its final loss" if D["lossMin"] is None else \
            f"log10 of its final {_esc(D['lossTitle'])} (0 is drawn at 10⁻³⁰)"
        out.append(fill("report.html", "phase", theory=text("phase-theory"), look=text("phase-look"), steps=ph["steps"],
                        colour=colour, polyak=polyak))
    if ex.get("cloud"):
        budgets = ", ".join(f"{_esc(v['label'])}: lr {v['lr']:g}, {v['epochs']} epoch(s)" for v in ex["cloud"].values())
        out.append(fill("report.html", "cloud", budgets=budgets, look=_text("cloud-look", noiseless)))
    if ex.get("batch_phase"):
        bp = ex["batch_phase"]
        E, m = bp["epochs"], int(bp["batch_sizes"][-1])
        lo, hi = float(np.min(bp["lrs"])), float(np.max(bp["lrs"]))
        marked = [c["label"] for c in ex.get("cloud", {}).values() if lo <= c["lr"] <= hi]
        circles = fill("report.html", f"circles-{'yes' if marked else 'no'}", marked=" and ".join(map(_esc, marked)))
        ragged = [int(b) for b in bp["batch_sizes"] if b > 1 and m % b == 1]
        ragged = fill("report.html", "ragged", sizes=", ".join(map(str, ragged)), m=m) if ragged else ""
        out.append(fill("report.html", "batch-phase", budget=f"{E} epoch{'' if E == 1 else 's'}", E=E, m=m, Em=E * m,
                        circles=circles, noiseless=fill("report.html", "noiseless") if noiseless else "", ragged=ragged,
                        rows=fill("report.html", f"rows-{'yes' if len(bp['batch_sizes']) == m else 'no'}", m=m, k=len(bp["batch_sizes"]))))
    if ex.get("basins"):
        bs = ex["basins"]
        budgets = "; ".join(f"{_esc(r.optimizer)}: lr {r.lr:g}, {r.traj.steps:,} steps" for r in data.runs
                            if r.mode.batch_size is None and r.optimizer in bs["labels"])
        out.append(fill("report.html", "basins", n=len(bs["w"]), budgets=budgets, tol=f"{bs['tol']:.3g}"))
    return out


def _exercises(data, noiseless: bool) -> str:
    """The exercise cards (report.html's ``exercise-card``, one per card of :func:`jaxgd.explore.exercises`, its
    words in ``ex-ID``: title, task and answer lines, with ``$VIEW_lr``, ``$VIEW_steps``, … of each of its views)
    and the readouts' tables, which page.js fills."""
    E, th = data.explore["exercise"], data.theory
    T, g, names = E["steps"], (lambda v: f"{v:.4g}"), [_esc(n) for n in data.problem.param_names]
    how = {"replacement": "drawn with replacement"}
    cards = []
    for c in E["cards"]:
        v = dict(opt=_esc(c["optimizer"]), T=T, best="" if th is None or c["optimizer"] != "gd" else fill(
            "report.html", "ex-best", best=g(th.optimal_lr)), noise=_text("ex-noise", noiseless), seeds=c.get("seeds"))
        for name, w in c.items():
            if isinstance(w, dict) and "lr" in w:
                v.update({f"{name}_{k}": x for k, x in dict(
                    lr=g(w["lr_value"]), beta=g(w["knob_value"] or 0), loss=g(w["loss"]), at=w["diverged_at"],
                    left=f"{100 * w['left']:.3g}", swing=g((w["knob_value"] or 0) ** 0.5),
                    tau=g(1 / (1 - (w["knob_value"] or 0))), limit="" if w["limit"] is None else fill(
                        "report.html", "ex-limit", lr=g(w["limit"]), beta=g(w["knob_value"] or 0)),
                    steps=f"{w['steps']} steps" if w["steps"] >= 0 else f"not within {T} steps").items()})
        v["modes"] = " ".join(fill("report.html", "ex-e-mode", how=how.get(m["sampling"], "shuffled").capitalize(),
                                   lr=g(m["lr"]), epochs=m["epochs"], hi=m["largest"], lo=m["smallest"],
                                   shi=g(m["spread_largest"]), slo=g(m["spread_smallest"])) for m in c.get("modes", ()))
        link = lambda w: urlencode(dict(card=c["id"], batch=w["batch"]) if "batch" in w else dict(  # noqa: E731
            card=c["id"], opt=c["optimizer"], lr=g(w["lr_value"]), **{} if w["knob_value"] is None else {"beta": g(w["knob_value"])}))
        title, task, answer = fill("report.html", f"ex-{c['id']}", **v).split("\n")
        cards.append(fill("report.html", "exercise-card", id=c["id"], title=title, task=task, answer=answer,
                          start=_esc(link(c["start"])), end=_esc(link(c["answer"]))))
    cells = lambda keys: "".join(f"<td data-k='{k}'></td>" for k in keys)  # noqa: E731
    batch = "" if not E["batch"] else fill("report.html", "exercise-batch", name0=names[0], name1=names[1], rows="".join(
        f"<tr id='ex-batch-{i}'><td>{how.get(r['sampling'], 'shuffled')}, lr {g(r['lr'])}, {r['epochs']} epoch(s), "
        f"{r['seeds']} seeds</td>" + cells(("spread", "loss", "w", "b", "diverged")) + "</tr>" for i, r in enumerate(E["batch"]["rows"])))
    return fill("report.html", "exercises", T=T, floor=g(E["floor"]), cards="".join(cards), name0=names[0], name1=names[1],
                cells=cells(("setting", "steps", "loss", "w", "b", "diverged")), batch=batch)


def _none_converged(data) -> bool:
    """No run ends near a minimum (``--lr 100``): the "Look for" texts then say where the paths go instead."""
    return not any(r["state"] == "converged" for r in run_rows(data))


def _data_section(data, D) -> str:
    """The data figure's section (on a new line), or "" without data."""
    if "data" not in D:
        return ""
    d = D["data"]
    return "\n" + fill("report.html", "data", m=f"{data.problem.num_examples:,}", label=_esc(d["line"]["label"]),
                lookdata=fill("report.html", "look-data-none" if _none_converged(data) else "look-data-line"),
                shown=f" ({d['shown']:,} of them, drawn at random, are shown)" if d["shown"] < d["total"] else "",
                line=_esc(d["line"]["text"]), x=_esc(d["names"][0]), y=_esc(d["names"][1]))


GLYPH = {"full": "●", "sgd": "◆", "minibatch": "■"}  # the current point's marker per mode (MODE_SYMBOL)


def _problem_texts(data, mds) -> dict:
    """The texts that depend on the problem: data or a landscape (and which), its sampling modes,
    its minima, and what the loss plots draw (:func:`loss_min`)."""
    p, m = data.problem, loss_min(data)
    has_data = p.data is not None
    name = "data" if has_data else data.config.problem
    glyphs, short = [GLYPH.get(md.name, "●") for md in mds], [md.label.split(" (")[0] for md in mds]  # "SGD (batch 1)": SGD
    scale = "linear" if m is None else "log" if m == 0 else "excess"
    return dict(
        g="the batch's gradient" if has_data else "the gradient", line=", the data's line" if has_data else "",
        marks="" if len(mds) == 1 else f"; the marker ({', '.join(map(' '.join, zip(glyphs, short)))}) and the dash tell "
                                       "the sampling modes apart",
        current=" ".join(glyphs) + " current point" + (f" ({', '.join(short)})" if len(mds) > 1 else ""),
        star="" if not p.minima else ", ☆ minimum" if len(p.minima) == 1 else ", ☆ minima",
        **dict(zip(("look3d", "look2d"), fill("report.html", "look-none" if _none_converged(data) and p.minima
                                              else f"look-{name}").split("\n"))),  # the 3-D view's, the contour's
        loss_panels=_text("loss-panels", has_data),
        loss_scale=fill("report.html", f"scale-{scale}", min=number(m) if m else ""),
        look_loss=fill("report.html", "look-loss-linear") if m is None else _text("look-loss", has_data))


def page(data, pack_dir=None) -> str:
    """The self-contained HTML page (no network needed): ``report.html`` filled in, on the shell
    (plotly.js packed once and kept in ``pack_dir``, :func:`jaxgd.app.shell.html_page`)."""
    cfg, p = data.config, data.problem
    v = data.meta["versions"]
    D = page_data(data)
    mds = modes(cfg, p)
    epoch = fill("report.html", "epoch", m=f"{p.num_examples:,}") if p.num_examples else ""
    quick = "".join(f"<button type='button' data-only='{m.name}'>only {_esc(m.label)}</button>" for m in mds) \
        if len(mds) > 1 else ""
    body = fill(
        "report.html", describe=_esc(_describe(data)), dtype=_esc(cfg.dtype), device=_esc(data.meta["device"]),
        v_jaxgd=_esc(v["jaxgd"]), v_jax=_esc(v["jax"]), v_optax=_esc(v["optax"]),
        modes="".join(f"<li>{fill('report.html', 'mode-' + m.name)}</li>" for m in mds if p.num_examples),
        epoch=epoch, optimizer_rows=_optimizer_rows(data), quick=quick, **_problem_texts(data, mds),
        data_section=_data_section(data, D), name0=_esc(p.param_names[0]), name1=_esc(p.param_names[1]),
        z="loss (MSE)" if p.data is not None else "loss",
        explorables="\n".join(s for s in [_sweep_section(data), *_explorables(data, D)] if s),
        flows=f"\n<p class='note'>{flows_note(D['flows']['lr'], data.flows, ' (each moves with the slider)')}</p>"
        if data.flows else "", run_rows=_run_rows(data), why_lengths=_why_lengths(data), config=_esc(dumps(config_dict(cfg))),
        **_grad_check(data))
    return html_page("jaxgd report", body, D, asset("page.js"), pack_dir)
