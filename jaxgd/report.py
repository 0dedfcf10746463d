"""The report: every optimizer under every sampling mode, computed, then written as files.

``compute(cfg)`` does the numerics (surface, gradient check, runs) and returns
:class:`ReportData`; ``write(data, out)`` turns it into ``report.html`` (self-contained,
plotly.js inlined), PNGs, an optional GIF, and ``results.json`` / ``results.npz`` /
``metrics.csv``. Every file is written to a temporary name in ``out`` and renamed into place.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import os
import platform
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxgd import io as jio
from jaxgd import presets
from jaxgd.config import ReportConfig
from jaxgd.data import notebook_data
from jaxgd.problems import Problem, notebook
from jaxgd.surface import GradCheck, grad_check, loss_surface
from jaxgd.trajectory import Trajectory, run


class RunResult(NamedTuple):
    optimizer: str
    mode: presets.Mode
    lr: float
    epochs: int
    traj: Trajectory

    @property
    def label(self) -> str:
        return f"{self.optimizer} · {self.mode.label}"


@dataclasses.dataclass
class ReportData:
    config: ReportConfig
    problem: Problem
    w: np.ndarray
    b: np.ndarray
    surface: np.ndarray
    grad_check: GradCheck
    runs: list
    noisy_y: np.ndarray
    meta: dict
    scan: object = None  # jaxgd.sweep.LRScan, or None without the sweep section


def modes(cfg: ReportConfig) -> tuple[presets.Mode, ...]:
    """The notebook's three modes, with the configured minibatch size and seed; a landscape's one."""
    if cfg.problem != "notebook":
        return (presets.LANDSCAPE_MODE,)
    out = []
    for m in presets.MODES:
        if m.name == "minibatch" and cfg.batch_size != 8:
            m = m._replace(batch_size=cfg.batch_size, label=f"minibatch (batch {cfg.batch_size})")
        if cfg.seed is not None:
            m = m._replace(seed=cfg.seed)
        out.append(m)
    return tuple(out)


def run_settings(cfg: ReportConfig, optimizer: str, mode: presets.Mode) -> tuple[float, int]:
    if cfg.problem != "notebook":
        lr, epochs = presets.landscape_settings(cfg.problem, optimizer)
    else:
        lr, epochs = presets.settings(optimizer, mode.name)
    if isinstance(cfg.lr, dict):
        lr = cfg.lr.get(optimizer, lr)
    elif cfg.lr is not None:
        lr = cfg.lr
    return lr, epochs if cfg.epochs is None else cfg.epochs


def plan(cfg: ReportConfig) -> list[tuple[str, presets.Mode, float, int]]:
    """(optimizer, mode, lr, epochs) of every run, in report order."""
    return [(opt, m, *run_settings(cfg, opt, m)) for opt in cfg.optimizers for m in modes(cfg)]


def versions() -> dict:
    import jax
    import jaxlib
    import matplotlib
    import optax
    import plotly

    import jaxgd

    return {"jaxgd": jaxgd.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "optax": optax.__version__, "numpy": np.__version__, "plotly": plotly.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version()}


def compute(cfg: ReportConfig, callback=None) -> ReportData:
    """Run everything the report shows. ``callback(steps_done, steps_total)`` reports progress."""
    import jax

    if cfg.problem != "notebook":
        from jaxgd.landscapes import LANDSCAPES

        problem = LANDSCAPES[cfg.problem]()  # no data: it computes in JAX's default float, set from --dtype
    elif cfg.data is not None:
        from jaxgd.data import load_csv
        from jaxgd.problems import linear_regression

        problem = linear_regression(*load_csv(cfg.data), dtype=cfg.dtype, name="data")
    else:
        problem = notebook(noise=cfg.noise, seed=cfg.data_seed, dtype=cfg.dtype)
    w = np.linspace(*problem.w_range, cfg.grid)
    b = np.linspace(*problem.b_range, cfg.grid)
    S = np.asarray(loss_surface(problem, w, b))
    gc = grad_check(problem, w, b)
    todo = plan(cfg)
    m = problem.num_examples
    total = sum(ep * (1 if md.batch_size is None else -(-m // md.batch_size)) for _, md, _, ep in todo)
    done = 0
    runs = []
    for opt, md, lr, epochs in todo:
        steps = epochs * (1 if md.batch_size is None else -(-m // md.batch_size))
        cb = None if callback is None else (lambda k, _t, base=done: callback(base + k, total))
        chunk = max(steps // 20, 1000) if steps > 5000 else None
        t = run(problem, opt, lr=lr, epochs=epochs, batch_size=md.batch_size, sampling=md.sampling, rng=md.rng,
                seed=md.seed, chunk=chunk, callback=cb)
        done += steps
        runs.append(RunResult(opt, md, lr, epochs, jax.tree.map(np.asarray, t)))
    noisy = None
    if cfg.data is None and cfg.problem == "notebook":
        noisy = notebook_data(noise=1.0, seed=cfg.data_seed, dtype=cfg.dtype)[1]
    meta = {"dtype": cfg.dtype, "device": jax.devices()[0].platform, "versions": versions()}
    scan = None
    if cfg.sweep:
        from jaxgd.config import SWEEP_LR_RANGE
        from jaxgd.sweep import lr_scan

        lrs = np.geomspace(*SWEEP_LR_RANGE, cfg.sweep_points)
        scan = lr_scan(problem, cfg.optimizers, lrs, epochs=cfg.sweep_epochs)
    return ReportData(cfg, problem, w, b, S, gc, runs, None if noisy is None else np.asarray(noisy), meta, scan)


# ----------------------------------------------------------------------------- outputs


def paths(data: ReportData):
    from jaxgd.plots import Path as PlotPath
    from jaxgd.plots import style_for

    out = []
    for i, r in enumerate(data.runs):
        color, dash = style_for(r.optimizer, r.mode.name, i)
        out.append(PlotPath.from_trajectory(r.label, r.traj, color, dash))
    return out


def diagnostics(data: ReportData) -> list[dict]:
    """Per run: gradient and update norms and the norms of the moments, each ``(T,)`` or None."""
    from jaxgd.plots import style_for

    out = []
    for i, r in enumerate(data.runs):
        t = r.traj
        color, dash = style_for(r.optimizer, r.mode.name, i)
        k = int(t.diverged_at)
        n = t.steps if k < 0 else k  # a diverged run: the steps before it left, as in the other figures

        def norm(p):
            return None if p is None else np.hypot(np.asarray(p.w), np.asarray(p.b))[:n]

        out.append(dict(label=r.label, color=color, dash=dash, grad_norm=np.asarray(t.grad_norm)[:n],
                        update_norm=np.asarray(t.update_norm)[:n], first=norm(t.first_moment),
                        second=norm(t.second_moment)))
    return out


def figures(data: ReportData) -> dict:
    """The report's plotly figures by id: data (regression only), surface3d, contour, loss, diagnostics, sweep.

    The two animated ones are figure dicts (plotly's schema, unvalidated: much faster to build
    and write than ``go.Figure``); ``plotly.graph_objects.Figure(spec)`` turns one into a figure.
    """
    from jaxgd import plots

    ps = paths(data)
    names = data.problem.param_names
    figs = {}
    if data.problem.data is not None:
        x, y = (np.asarray(a) for a in data.problem.data)
        figs["data"] = plots.plotly_data(x, y, data.noisy_y, *_line(data))
    figs["surface3d"] = plots.surface_spec(data.w, data.b, data.surface, ps, names)
    figs["contour"] = plots.contour_spec(data.w, data.b, data.surface, ps, _minima(data), names)
    figs["loss"] = plots.plotly_loss_curves(ps)
    figs["diagnostics"] = plots.plotly_diagnostics(diagnostics(data))
    if data.scan is not None:
        sc = data.scan
        figs["sweep"] = plots.plotly_sweep(sc.lrs, sc.final_loss, sc.diverged_at, sc.stability_limit,
                                         optimal_lr=sc.optimal_lr)
    return figs


def _minima(data: ReportData):
    """The known minima as an ``(k, 2)`` array, or None."""
    return np.array([list(m) for m in data.problem.minima]) if data.problem.minima else None


def _line(data: ReportData):
    """The line drawn over the data: the notebook's true line, or the least-squares fit of a file's data."""
    if data.config.data is None:
        return (2.0, 3.0), "true line"
    return tuple(data.problem.minimum), "least-squares line"


def run_rows(data: ReportData) -> list[dict]:
    rows = []
    for r in data.runs:
        t = r.traj
        d = int(t.diverged_at)
        rows.append({"optimizer": r.optimizer, "mode": r.mode.name, "lr": r.lr, "epochs": r.epochs,
                     "batch_size": r.mode.batch_size, "sampling": r.mode.sampling if r.mode.batch_size else None,
                     "rng": r.mode.rng, "seed": r.mode.seed, "steps": int(t.steps),
                     "final_w": float(t.params.w[-1]), "final_b": float(t.params.b[-1]),
                     "final_loss": float(t.loss[-1]), "diverged_at": None if d < 0 else d})
    return rows


def results(data: ReportData) -> dict:
    """Everything needed to reproduce and check the report, JSON-ready (timings excluded)."""
    gc = data.grad_check
    runs = []
    for row, r in zip(run_rows(data), data.runs):
        t = r.traj
        moments = {k: None if m is None else {"w": m.w, "b": m.b}
                   for k, m in (("first_moment", t.first_moment), ("second_moment", t.second_moment))}
        runs.append(row | {"params": {"w": t.params.w, "b": t.params.b}, "loss": t.loss,
                           "batch_loss": t.batch_loss, "grad_norm": t.grad_norm, "update_norm": t.update_norm}
                    | moments)
    out = {
        "config": _config_dict(data.config), "meta": data.meta,
        "problem": {"name": data.problem.name,
                    "minimum": None if data.problem.minimum is None else list(data.problem.minimum),
                    "minima": [list(m) for m in data.problem.minima],
                    "w_range": list(data.problem.w_range), "b_range": list(data.problem.b_range)},
        "grad_check": {"max_abs_error": gc.max_abs_error, "max_rel_error": gc.max_rel_error,
                       "grid": data.config.grid},
        "runs": runs,
    }
    if data.scan is not None:
        out["sweep"] = scan_dict(data.scan)
    return out


def scan_dict(sc) -> dict:
    """An LRScan, JSON-ready: per optimizer the final losses, divergence steps and boundary."""
    from jaxgd.sweep import divergence_boundary

    return {"lrs": sc.lrs, "epochs": sc.epochs, "batch_size": sc.batch_size, "stability_limit": sc.stability_limit,
            "optimal_lr": sc.optimal_lr,
            "optimizers": {k: {"final_loss": sc.final_loss[k], "diverged_at": sc.diverged_at[k],
                               "divergence_boundary": divergence_boundary(sc.lrs, sc.diverged_at[k])}
                           for k in sc.final_loss}}


def _config_dict(cfg: ReportConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["optimizers"] = list(cfg.optimizers)
    d.pop("out")
    return d


def write(data: ReportData, out: str | os.PathLike, png: bool = True, gif: bool = False) -> list[Path]:
    """Write every output file into ``out`` (created if missing). Returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    res = results(data)

    def text(name, s):
        jio.write_text_atomic(out / name, s)
        written.append(out / name)

    text("results.json", jio.dumps(res, indent=1) + "\n")
    with jio.atomic_path(out / "results.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **_npz_arrays(data, res))
    written.append(out / "results.npz")
    text("metrics.csv", _metrics_csv(data, res))
    figs = figures(data)
    text("report.html", page(data, figs))
    if png:
        for name, fig in _mpl_figures(data).items():
            with jio.atomic_path(out / name) as tmp:
                fig.savefig(tmp, dpi=100, format="png")
            written.append(out / name)
    if gif:
        from PIL import Image

        from jaxgd.plots import mpl_frames

        frames = [Image.fromarray(f) for f in mpl_frames(data.w, data.b, data.surface, paths(data),
                                                          data.problem.minimum, data.problem.param_names)]
        with jio.atomic_path(out / "paths.gif") as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
        written.append(out / "paths.gif")
    return written


def _mpl_figures(data: ReportData) -> dict:
    from jaxgd import plots

    ps = paths(data)
    names = data.problem.param_names
    figs = {}
    if data.problem.data is not None:
        x, y = (np.asarray(a) for a in data.problem.data)
        figs["data.png"] = plots.mpl_data(x, y, data.noisy_y, *_line(data))
    figs["contour.png"] = plots.mpl_contour(data.w, data.b, data.surface, ps, _minima(data), names)
    figs["loss.png"] = plots.mpl_loss_curves(ps)
    figs["diagnostics.png"] = plots.mpl_diagnostics(diagnostics(data))
    figs["surface3d.png"] = plots.mpl_surface(data.w, data.b, data.surface, ps, names)
    if data.scan is not None:
        sc = data.scan
        figs["sweep.png"] = plots.mpl_sweep(sc.lrs, sc.final_loss, sc.diverged_at, sc.stability_limit,
                                   optimal_lr=sc.optimal_lr)
    return figs


def _npz_arrays(data: ReportData, res: dict) -> dict:
    arrays = {"w_grid": data.w, "b_grid": data.b, "surface": data.surface,
              "meta_json": np.array(jio.dumps({k: v for k, v in res.items() if k != "runs"}))}
    if data.problem.data is not None:
        arrays["x"], arrays["y"] = (np.asarray(a) for a in data.problem.data)
    for r in data.runs:
        key = f"{r.optimizer}/{r.mode.name}"
        t = r.traj
        for field, v in (("w", t.params.w), ("b", t.params.b), ("loss", t.loss), ("batch_loss", t.batch_loss),
                         ("grad_norm", t.grad_norm), ("update_norm", t.update_norm),
                         ("diverged_at", t.diverged_at)):
            arrays[f"{key}/{field}"] = np.asarray(v)
        for field, m in (("first_moment", t.first_moment), ("second_moment", t.second_moment)):
            if m is not None:
                arrays[f"{key}/{field}_w"], arrays[f"{key}/{field}_b"] = np.asarray(m.w), np.asarray(m.b)
    if data.scan is not None:
        arrays["sweep/lrs"] = data.scan.lrs
        for k in data.scan.final_loss:
            arrays[f"sweep/{k}/final_loss"] = data.scan.final_loss[k]
            arrays[f"sweep/{k}/diverged_at"] = data.scan.diverged_at[k]
    return arrays


def _metrics_csv(data: ReportData, res: dict) -> str:
    buf = io.StringIO()
    buf.write(f"# jaxgd report: {jio.dumps({k: res[k] for k in ('config', 'meta')})}\n")
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["optimizer", "mode", "lr", "batch_size", "seed", "dtype", "step", "w", "b", "loss", "batch_loss",
                 "grad_norm", "update_norm", "m_w", "m_b", "v_w", "v_b"])

    def num(v):
        v = float(v)
        return repr(v) if np.isfinite(v) else ""

    for r in data.runs:
        t = r.traj
        T = int(t.steps)
        for k in range(T + 1):
            last = k == T
            wr.writerow([r.optimizer, r.mode.name, repr(r.lr), r.mode.batch_size or "", r.mode.seed,
                         data.meta["dtype"], k, num(t.params.w[k]), num(t.params.b[k]), num(t.loss[k]),
                         "" if last else num(t.batch_loss[k]), "" if last else num(t.grad_norm[k]),
                         "" if last else num(t.update_norm[k]),
                         *("" if last or m is None else num(getattr(m, c)[k])
                           for m in (t.first_moment, t.second_moment) for c in ("w", "b"))])
    return buf.getvalue()


def page(data: ReportData, figs: dict) -> str:
    """The self-contained HTML page (plotly.js inlined once; no network needed)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    cfg = data.config
    gc = data.grad_check
    divs = {k: pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=k, auto_play=False, validate=False,
                           config={"displaylogo": False}) for k, f in figs.items()}
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r["optimizer"], dict((m.name, m.label) for m in modes(cfg))[r["mode"]], f"{r['lr']:g}", r["steps"],
            _fmt(r["final_w"]), _fmt(r["final_b"]), _fmt(r["final_loss"], "{:.3e}"),
            "no" if r["diverged_at"] is None else f"diverged at step {r['diverged_at']}")) + "</tr>"
        for r in run_rows(data))
    v = data.meta["versions"]
    names = data.problem.param_names
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>jaxgd report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f3f3f3; }} td:nth-child(n+3) {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ color: #555; font-size: 0.9em; }} section {{ margin-bottom: 2em; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>jaxgd report</h1>
<p class="note">{html.escape(_describe(data))} {cfg.dtype} on {data.meta['device']};
jaxgd {v['jaxgd']}, jax {v['jax']}, optax {v['optax']}.</p>
{f"<section><h2>Data</h2>{divs['data']}</section>" if 'data' in divs else ""}
<section><h2>Loss surface and paths</h2>
<p class="note">x = {names[0]}, y = {names[1]}, z = loss. Click a legend entry to hide or show a path; the slider and play button
move every path along together (a path shorter than the step shown is drawn whole).</p>{divs['surface3d']}</section>
<section><h2>Contours</h2>{divs['contour']}</section>
<section><h2>Loss per step</h2>{divs['loss']}</section>
<section><h2>Per-step diagnostics</h2>
<p class="note">The gradient and update norms of each step, and the norms of the optimizer's moment estimates
after it (momentum's velocity and Adam's m; RMSProp's s and Adam's v), where the optimizer keeps them.</p>
{divs['diagnostics']}</section>
{_sweep_section(data, divs)}
<section><h2>Gradient check</h2>
<p id="gradcheck">jax.grad against the closed-form gradient{" (dL/dW = 2·mean(e·x), dL/db = 2·mean(e))"
if data.problem.data is not None else ""} at all
{cfg.grid}×{cfg.grid} grid points: max absolute error {gc.max_abs_error:.3e}, max relative error
{gc.max_rel_error:.3e}.</p></section>
<section><h2>Runs</h2>
<table id="runs"><tr><th>optimizer</th><th>mode</th><th>lr</th><th>steps</th><th>final {names[0]}</th><th>final {names[1]}</th>
<th>final loss</th><th>diverged</th></tr>
{rows}
</table>
<p class="note">Config: {html.escape(jio.dumps(_config_dict(cfg)))}</p></section>
</body></html>
"""


def _describe(data: ReportData) -> str:
    p, cfg = data.problem, data.config
    if cfg.problem != "notebook":
        from jaxgd import landscapes

        doc = landscapes.LANDSCAPES[cfg.problem].__doc__.split(":")[0].strip("`")
        mins = "; ".join(f"({m[0]:.4g}, {m[1]:.4g})" for m in p.minima) or "none"
        return f"The {cfg.problem} function f(a, b) = {doc}. Known minima: {mins}."
    what = (f"y = 2x + 3 on {p.num_examples} points of [-5, 5]" if cfg.data is None
            else f"y = W·x + b to the {p.num_examples} points of {cfg.data}")
    return f"Fitting {what} by mean squared error in (W, b); minimum at W = {p.minimum.w:.6g}, b = {p.minimum.b:.6g}."


def _polyak(data: ReportData) -> tuple[float, float]:
    from jaxgd.theory import theory

    th = theory(data.problem)
    return th.polyak_beta, th.polyak_lr


def _sweep_section(data: ReportData, divs: dict) -> str:
    if data.scan is None:
        return ""
    from jaxgd.sweep import divergence_boundary

    sc = data.scan
    items = []
    for k in sc.final_loss:
        bnd = divergence_boundary(sc.lrs, sc.diverged_at[k])
        items.append(f"<li>{html.escape(k)}: " + ("no run diverged" if bnd is None else
                                                   f"runs diverge from lr = {bnd:.4g}") + "</li>")
    limit = "" if sc.stability_limit is None else (
        f"<p>Theory, for full-batch gd on this quadratic loss: lr &lt; 2/λmax = {sc.stability_limit:.5g} "
        "(λmax from <code>jax.hessian</code>), drawn as the black line; the fastest rate at "
        f"lr = 2/(λmin + λmax) = {sc.optimal_lr:.5g}, the dotted line. Heavy-ball momentum is fastest with "
        "β = {:.4g} and lr = {:.4g} (Polyak's, in jaxgd's EMA convention).</p>".format(*_polyak(data)))
    return f"""<section><h2>Learning-rate sweep</h2>
<p class="note">{len(sc.lrs)} learning rates from {sc.lrs[0]:g} to {sc.lrs[-1]:g}, {sc.epochs} full-batch steps each,
from the default start, every optimizer's runs in one compiled call. A run has diverged when its loss leaves the
finite numbers or its |loss| grows past 10⁶ × max(|start|, 1).</p>{divs['sweep']}{limit}<ul id="sweep-boundaries">{''.join(items)}</ul>
</section>"""


def _fmt(v, f="{:.6f}"):
    return "—" if v is None or not np.isfinite(v) else f.format(v)
