"""The report: every optimizer under every sampling mode, computed, then written as files.

``plan(cfg)`` (:mod:`jaxgd.app.plan`) checks the configuration into a problem and its runs;
``compute(plan)`` does the numerics (surface, gradient check, runs, the learning-rate sweep and
the explorables of :mod:`jaxgd.explore`) and returns :class:`ReportData`; ``write(data,
out)`` turns it into ``report.html`` (:mod:`jaxgd.app.page`: offline, drawn by its own script),
``results.json`` / ``results.npz`` / ``metrics.csv``, and on request PNGs (:func:`figures`, drawn
with matplotlib) and a GIF. The files are written as one set: all to
temporary names in ``out``, then renamed into place.
"""

from __future__ import annotations

import dataclasses
import os
from threading import Event, Lock
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import jax
import numpy as np

from jaxgd import engine, explore, flows as jflows, optim
from jaxgd._checks import check_params
from jaxgd.app import files as jio
from jaxgd.app import shell
from jaxgd.app.config import SWEEP_LR_RANGE, ReportConfig
from jaxgd.app.page import data_line, norms, page
from jaxgd.app.plan import Plan, big_data, modes, run_settings
from jaxgd.plots import Path as PlotPath
from jaxgd.plots import mpl_figs, style_for
from jaxgd.app.results import metrics_csv, npz_arrays, results, versions
from jaxgd.curvature import _hessian_jit, theory_of
from jaxgd.data import notebook_data
from jaxgd.engine import Trajectory
from jaxgd.model import Params
from jaxgd.problems import Problem
from jaxgd.runs import lr_scan, run_checked, split, sweep, truncate
from jaxgd.surface import GradCheck, _on_grid, _rows_per_chunk, verdict


@dataclasses.dataclass
class ReportData:
    config: ReportConfig
    problem: Problem
    w: np.ndarray
    b: np.ndarray
    surface: np.ndarray
    grad_check: GradCheck
    runs: list  # jaxgd.app.plan.Run, each with its trajectory
    noisy_y: np.ndarray
    meta: dict
    scan: object = None  # jaxgd.LRScan, or None without the sweep section
    theory: object = None  # jaxgd.curvature.Theory at the minimum, for a quadratic loss
    explore: dict = dataclasses.field(default_factory=dict)  # whatif, phase, cloud, basins, exercise (see jaxgd.explore)
    losses: dict = dataclasses.field(default_factory=dict)  # {"minima": [loss at each known minimum], "start": loss} (basics)
    flows: dict = dataclasses.field(default_factory=dict)  # kind -> Trajectory beside runs[flow_run] (see flow_kinds)
    flow_run: int | None = None


def compute(plan: Plan, callback=None, threads: int = 2, pack_dir=None, stop: Event | None = None) -> ReportData:
    """Run everything the report shows. ``callback(steps_done, steps_total)`` reports progress;
    the page's plotly.js is packed meanwhile (:func:`jaxgd.app.shell.plotly_packed`, kept in ``pack_dir``).
    Once ``stop`` is set (by Ctrl-C here, or by the caller) the queued work is dropped and the runs end at
    their next chunk, with KeyboardInterrupt.

    With the sweep section on, each optimizer's full-batch run is one more run of its
    learning-rate sweep (same start, same settings: the first ``epochs`` steps of it), so it
    costs no compiled program of its own. The independent parts (:func:`basics`, the sweeps, the
    other runs) go to ``threads`` threads: XLA compiles outside Python's lock (each program on
    two threads of its own), so on two cores one program traces while another compiles. More
    threads made a cold report slower there (three: median 3.01 s against 2.72 s).
    """
    cfg, problem = plan.config, plan.problem
    w = np.linspace(*problem.w_range, cfg.grid)
    b = np.linspace(*problem.b_range, cfg.grid)
    total, lock, progress = plan.total_steps, Lock(), {}
    stop = Event() if stop is None else stop  # set on Ctrl-C: the queued work is dropped, a chunked run ends at its next chunk

    def report(i, k):
        if stop.is_set():
            raise KeyboardInterrupt
        if callback is not None:
            with lock:
                progress[i] = k
                callback(sum(progress.values()), total)

    def one(i, r):
        chunk = max(r.steps // 20, 1000) if r.steps > 5000 else None
        t = run_checked(r.config, chunk=chunk, callback=lambda k, _t: report(i, k))
        return jax.tree.map(np.asarray, t)

    def many(idx):
        out = _sweep_runs([plan.runs[i].config for i in idx])
        for i in idx:
            report(i, plan.runs[i].steps)
        return dict(zip(idx, out))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool, _stopping(pool, stop):
        basics_f = pool.submit(basics, problem, w, b, *gradcheck_grid(problem, w, b))  # needed first (the theory)
        pack_f = pool.submit(shell.plotly_packed, pack_dir)  # the page's plotly.js, packed while the programs compile
        fr, kinds = flow_kinds(plan)
        flows_f = {k: pool.submit(jflows.flow, k, problem, plan.runs[fr].config.init, plan.runs[fr].lr, plan.runs[fr].steps,
                                  go_on=True) for k in kinds}  # the run's own steps, estimated by the command
        stoch_f = pool.submit(_stochastic, plan) if cfg.sweep else None
        sweeps_f = pool.submit(_lr_sweeps, plan) if cfg.sweep else None
        folding = _foldable(plan) if cfg.sweep else {}
        rest = [i for i in range(len(plan.runs)) if i not in folding]
        groups = _groups(plan, rest)
        runs_f = {i: pool.submit(one, i, plan.runs[i]) for i in rest if not any(i in g for g in groups)}
        for g in groups:
            f = pool.submit(many, g)
            runs_f.update({i: f for i in g})
        S, gc, th, losses = _result(basics_f)
        sweeps, folded = _result(sweeps_f) if sweeps_f else (None, {})
        more_f = pool.submit(_sweeps, plan, th, sweeps) if cfg.sweep else None
        runs = []
        for i, r in enumerate(plan.runs):
            t = jax.tree.map(np.asarray, folded[i]) if i in folded else _result(runs_f[i])
            t = t[i] if isinstance(t, dict) else t
            if i in folded:
                report(i, r.steps)
            runs.append(r._replace(traj=t))
        scan, more = _result(more_f) if more_f else (None, {})
        more.update(_result(stoch_f) if stoch_f else {})
        if ex := explore.exercises(more.get("whatif"), more.get("cloud"), min(losses["minima"], default=None)):
            more["exercise"] = ex
        _result(pack_f)
    noisy = (np.asarray(notebook_data(noise=1.0, seed=cfg.data_seed, dtype=cfg.dtype)[1])  # on the host: no compiled program
             if cfg.data is None and cfg.problem == "notebook" else None)
    meta = {"dtype": cfg.dtype, "device": jax.devices()[0].platform, "versions": versions()}
    flows = {k: jax.tree.map(np.asarray, _result(f)) for k, f in flows_f.items()}
    return ReportData(cfg, problem, w, b, S, gc, runs, noisy, meta, scan, th, more, losses, flows, fr)


def flow_kinds(plan: Plan) -> tuple[int | None, tuple]:
    """``(i, kinds)``: the plan's full-batch gd run and its flows (:mod:`jaxgd.flows`), the central flow only
    where the loss is not quadratic (on a quadratic it is gradient flow); ``(None, ())`` without such a run,
    for a schedule, past :data:`MANY_MAX_STEPS` steps and on big data (:func:`jaxgd.app.plan.big_data`)."""
    i = next((i for i, r in enumerate(plan.runs) if r.optimizer == "gd" and r.mode.batch_size is None), None)
    if i is None or callable(plan.runs[i].lr) or plan.runs[i].steps > MANY_MAX_STEPS or big_data(plan.problem):
        return None, ()
    return i, jflows.KINDS[:2] if plan.problem.quadratic else jflows.KINDS


def _result(f: Future):
    """``f.result()``, waking every 0.1 s: a signal that the system handed to another thread (XLA's) is
    acted on only when the main thread runs, not when the whole run it waits for ends."""
    while True:
        try:
            return f.result(timeout=0.1)
        except Pending:
            pass


@contextmanager
def _stopping(pool: ThreadPoolExecutor, stop: Event):
    """On an exception (Ctrl-C) in the block: ``stop`` is set and ``pool``'s queued work cancelled, so the
    pool's exit waits only for the work running now (a chunked run stops at its next chunk)."""
    try:
        yield
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def basics(problem: Problem, w, b, gw, gb):
    """The loss surface on ``w × b``, the gradient check on ``gw × gb``, the Hessian facts at the
    minimum (quadratic losses, else None) and ``{"minima": [...], "start": ...}``, the full-data
    loss at the known minima and at the start: ``loss_surface``'s, ``grad_check``'s, ``theory``'s
    numbers from one compiled call instead of four (:func:`_basics_program`)."""
    dt = problem.dtype
    w, b, gw, gb = (np.asarray(a, dt) for a in (w, b, gw, gb))
    at = (check_params("at", problem.minimum, problem.init, dt) if problem.quadratic and problem.minimum is not None
          else None)  # no minimum (the saddle): no theory at one, as off a quadratic
    points = [tuple(map(float, m)) for m in problem.minima] + [(float(problem.init.w), float(problem.init.b))]
    pts = Params(*(np.asarray(c, dt) for c in zip(*points)))
    statics = (problem.loss_fn, problem.grad_fn, _rows_per_chunk(problem, len(b)), _rows_per_chunk(problem, len(gb)))
    S, grads, H, L = engine.compiled_call(_basics_program, "basics", statics, problem.data, w, b, gw, gb, at, pts)
    L = np.asarray(L, np.float64)
    return (np.asarray(S), None if grads is None else verdict(gw, gb, *grads),
            None if H is None else theory_of(H, at), {"minima": L[:-1].tolist(), "start": float(L[-1])})


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _basics_program(loss_fn, grad_fn, rows, grad_rows, data, w, b, gw, gb, at, points):
    """:func:`basics`' arrays: ``S (len(w), len(b))``, ``(autodiff, analytic)`` gradients on the
    check's grid (None without ``grad_fn``), the Hessian at ``at`` (None if ``at`` is None) and
    the loss at each of ``points`` (Params of 1-D arrays)."""
    S = _on_grid("loss", loss_fn, None, rows, data, w, b)
    grads = None if grad_fn is None else _on_grid("grads", loss_fn, grad_fn, grad_rows, data, gw, gb)
    H = None if at is None else _hessian_jit(loss_fn, at, data)
    return S, grads, H, jax.vmap(lambda p: loss_fn(p, data, None))(points)


MANY_MAX_STEPS = 5000  # runs up to this long share compiled calls (longer ones run alone, in chunks, with progress; no flows)


def _groups(plan: Plan, idx) -> list[list[int]]:
    """The plan's runs (of ``idx``) that one :func:`jaxgd.sweep` computes together: one group per
    (full batch or not, rng, ``loss_every``, sharpness), runs of at most :data:`MANY_MAX_STEPS`
    steps with a plain learning rate, the optimizer's default hyperparameters and no explicit order."""
    groups = {}
    for i in idx:
        c = plan.runs[i].config
        plain = c.spec.kind[2] is None and c.spec == optim.resolve(c.optimizer, c.spec.hyper["lr"], {})
        if c.steps <= MANY_MAX_STEPS and plain and c.order is None:
            key = (c.batch_size is None, c.batch_size is None or c.rng, c.loss_every, c.sharpness)
            groups.setdefault(key, []).append(i)
    return list(groups.values())


def _sweep_runs(cfgs) -> list[Trajectory]:
    """Checked runs of one :func:`_groups` group as the columns of one :func:`jaxgd.sweep`; each run's
    own Trajectory (host arrays)."""
    c0 = cfgs[0]
    col = lambda f: [f(c) for c in cfgs]  # noqa: E731
    every, iters, tol = c0.sharpness or (0, 50, 1e-4)
    names = col(lambda c: c.optimizer)
    t = sweep(c0.problem, names, col(lambda c: c.spec.hyper["lr"]), col(lambda c: c.epochs),
              None if c0.batch_size is None else col(lambda c: c.batch_size), None, col(lambda c: c.sampling), c0.rng,
              col(lambda c: c.seed), sharpness_every=every, sharpness_iters=iters, sharpness_tol=tol,
              loss_every=c0.loss_every, go_on=True)  # the command estimated the runs (--yes)
    return split(t, names)


WHATIF_MAX_EPOCHS = 1000  # the what-if and phase sweeps keep every path: at most this many steps
WHATIF_MAX_POINTS = 100


def sweep_shape(cfg: ReportConfig) -> tuple[int, int]:
    """The report's learning-rate sweeps: ``(learning rates, epochs)`` each, within the what-if's bounds."""
    return min(cfg.sweep_points, WHATIF_MAX_POINTS), min(cfg.sweep_epochs, WHATIF_MAX_EPOCHS)


GRADCHECK_BUDGET = 10**8  # grid points × examples of the gradient check


def gradcheck_grid(problem: Problem, w, b):
    """The grid of the gradient check: the plot's, or on big data every k-th point of it, so that
    points × examples stay under :data:`GRADCHECK_BUDGET` (10⁶ examples: a 10 × 10 grid)."""
    m = problem.num_examples or 1
    k = 1
    while (len(w[::k]) * len(b[::k])) * m > GRADCHECK_BUDGET and len(w[::k]) > 2:
        k += 1
    return w[::k], b[::k]


def _foldable(plan: Plan) -> dict[int, tuple[str, float, int]]:
    """The plan's runs that are extra runs of their optimizer's full-batch sweep:
    ``{plan index: (optimizer, lr, epochs)}`` — full batch, default start and settings, no
    longer than the sweep."""
    cfg = plan.config
    _, epochs = sweep_shape(cfg)
    if big_data(plan.problem):
        return {}
    return {i: (r.optimizer, float(r.lr), r.config.epochs) for i, r in enumerate(plan.runs)
            if r.config.batch_size is None and r.config.order is None and r.config.epochs <= epochs
            and not callable(r.lr) and r.optimizer in cfg.optimizers and not any(r.config.sharpness)}


def _lr_sweeps(plan: Plan):
    """Each optimizer's full-batch sweep (:func:`jaxgd.explore.lr_sweeps`), with the plan's
    full-batch runs that fit in it as extra runs: ``(sweeps, {plan index: Trajectory})``;
    ``(None, {})`` on data of more than :data:`jaxgd.app.plan.BIG_DATA` examples."""
    cfg, problem = plan.config, plan.problem
    if big_data(problem):
        return None, {}
    points, epochs = sweep_shape(cfg)
    extra = {}
    for i, (opt, lr, e) in _foldable(plan).items():
        extra.setdefault(opt, []).append((i, lr, e))
    sweeps, folded = explore.lr_sweeps(problem, cfg.optimizers, np.geomspace(*SWEEP_LR_RANGE, points), epochs,
                                       extra={k: [lr for _, lr, _ in v] for k, v in extra.items()},
                                       go_on=True)  # estimated by the command (sweep_shape)
    return sweeps, {i: truncate(t, e) for opt, items in extra.items() for (i, _, e), t in zip(items, folded[opt])}


def _sweeps(plan: Plan, th, sweeps):
    """The learning-rate sweep and the explorables (see :mod:`jaxgd.explore`)."""
    cfg, problem = plan.config, plan.problem
    if sweeps is None:  # too much data for the sweeps (big_data)
        return None, {}
    lam = None if th is None else float(th.eigenvalues[-1])
    points, epochs = sweep_shape(cfg)
    if (points, epochs) == (cfg.sweep_points, cfg.sweep_epochs):
        scan = explore.scan_from(sweeps, epochs, th)  # the same runs at each optimizer's default β
    else:
        scan = lr_scan(problem, cfg.optimizers, np.geomspace(*SWEEP_LR_RANGE, cfg.sweep_points),
                       epochs=cfg.sweep_epochs)
    more = {"whatif": [explore.whatif(s, lam) for s in sweeps.values()]}
    if "momentum" in sweeps:
        more["phase"] = explore.phase(sweeps["momentum"], lam)
    return scan, more


def _stochastic(plan: Plan) -> dict:
    """The explorables that need no lr sweep: the seed cloud and SGD's lr × batch size diagram
    (problems with data), the basins of attraction (landscapes with several minima)."""
    cfg, problem = plan.config, plan.problem
    if big_data(problem):
        return {}
    more, mms = {}, modes(cfg, problem)
    if problem.num_examples is not None:
        more["cloud"], more["batch_phase"] = explore.seed_cloud(
            problem, [m for m in mms if m.batch_size], lambda m: run_settings(cfg, problem, "gd", m), batch_phase=True,
            go_on=True)  # capped at CLOUD_STEPS a run
    basins = explore.basins(problem, cfg.optimizers, lambda o: run_settings(cfg, problem, o, mms[0]),
                            go_on=True)  # estimated by the command (basin_work)
    if basins is not None:
        more["basins"] = basins
    return more


# ----------------------------------------------------------------------------- figures


def paths(data: ReportData) -> list[PlotPath]:
    """Each run as a :class:`jaxgd.plots.Path` in its colour and dash."""
    return [PlotPath.from_trajectory(r.label, r.traj, *style_for(r.optimizer, r.mode.name, i))
            for i, r in enumerate(data.runs)]


def diagnostics(data: ReportData) -> list[dict]:
    """Per run: gradient and update norms and the norms of the moments, each ``(T,)`` or None."""
    out = []
    for i, r in enumerate(data.runs):
        t, (color, dash) = r.traj, style_for(r.optimizer, r.mode.name, i)
        n = slice(t.steps if t.diverged_at < 0 else int(t.diverged_at))  # a diverged run: the steps before it left
        out.append(dict(label=r.label, color=color, dash=dash, grad_norm=np.asarray(t.grad_norm)[n],
                        update_norm=np.asarray(t.update_norm)[n], first=norms(t.first_moment, n),
                        second=norms(t.second_moment, n)))
    return out


def figures(data: ReportData) -> dict:
    """The report's PNGs by id — data (regression only), surface3d, contour, loss, diagnostics,
    sweep — as matplotlib Figures (the page draws its own, :mod:`jaxgd.app.page`)."""
    ps = paths(data)
    names = data.problem.param_names
    figs = {}
    if data.problem.data is not None:
        x, y = (np.asarray(a) for a in data.problem.data)
        figs["data"] = mpl_figs.data(x, y, data.noisy_y, *data_line(data))
    figs["surface3d"] = mpl_figs.surface(data.w, data.b, data.surface, ps, names)
    minima = np.array([list(m) for m in data.problem.minima]) if data.problem.minima else None
    figs["contour"] = mpl_figs.contour(data.w, data.b, data.surface, ps, minima, names)
    figs["loss"] = mpl_figs.loss_curves(ps)
    figs["diagnostics"] = mpl_figs.diagnostics(diagnostics(data))
    if data.scan is not None:
        sc = data.scan
        figs["sweep"] = mpl_figs.sweep(sc.lrs, sc.final_loss, sc.diverged_at, sc.stability_limit,
                                       optimal_lr=sc.optimal_lr)
    return figs


# ----------------------------------------------------------------------------- files


def write(data: ReportData, out: str | os.PathLike, png: bool = True, gif: bool = False, pack_dir=None) -> list[Path]:
    """Write every output file into ``out`` as one set (:func:`jaxgd.app.files.write_all`): each
    to a temporary file first, then all renamed into place, the folder locked meanwhile; on any
    failure (a full disk, Ctrl-C) the temporaries are removed and the old files stay. Returns
    the paths written. ``pack_dir``: where the page's packed plotly.js is kept (:func:`jaxgd.app.shell.plotly_packed`)."""
    res = results(data)
    writers = {"results.json": jio.text_writer(jio.dumps(res, indent=1) + "\n"),
               "results.npz": jio.npz_writer(lambda: npz_arrays(data, res) | {f"flow/{k}/{f}": np.asarray(v) for k, t in
                                             data.flows.items() for f, v in zip(("w", "b", "loss"), (*t.params, t.loss))}),
               "metrics.csv": jio.text_writer(metrics_csv(data, res)), "report.html": jio.text_writer(page(data, pack_dir))}
    if png:
        for name, fig in figures(data).items():
            writers[f"{name}.png"] = lambda tmp, fig=fig: fig.savefig(tmp, dpi=100, format="png")
    if gif:
        writers["paths.gif"] = lambda tmp: _gif(data, tmp)
    return jio.write_all(out, writers)


def _gif(data: ReportData, tmp) -> None:
    from PIL import Image

    frames = [Image.fromarray(f) for f in mpl_figs.frames(data.w, data.b, data.surface, paths(data),
                                                           data.problem.minimum, data.problem.param_names)]
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
