"""What each ``jaxgd`` command does once its flags are parsed: check, compute, write the files, and
print its summary (beside the code that computed it).

Each command takes the parsed flags ``args`` and ``setup(dtype)``, the command line's set-up of JAX
(precision, caches), which it calls once the dtype is known and before any array exists, and which
returns the folder a page keeps its packed plotly.js in (or None); the command returns the exit code. A bad value raises :class:`jaxgd.ArgumentError` naming the argument, before any work.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial

import jax
import numpy as np

import jaxgd
from jaxgd import _checks, budget, comparison, explore
from jaxgd._checks import ArgumentError
from jaxgd import plots
from jaxgd.app import compare_page, config, landscape, presets, report, signals
from jaxgd.app.files import check_file_target, check_folder_target, dumps, text_writer, write_all, write_json
from jaxgd.app.plan import big_data, plan
from jaxgd.app.results import run_rows, sweep_doc, versions
from jaxgd.app.summary import notebook_numbers, number, optimizer_table
from jaxgd.app.terminal import Progress, echo, stderr
from jaxgd.data import steps_per_epoch
from jaxgd.datasets import read_xy
from jaxgd.optim import make_schedule

HYPER = ("beta", "decay", "eps", "b1", "b2")  # the optimizers' hyperparameters, one flag each
REPORT_FILES = ("report.html", "results.json", "results.npz", "metrics.csv")  # checked before computing
SWEEP_FILES = ("sweep.json", "sweep.html", "sweep.png")


def _problem(args):
    """The problem of ``--problem``, ``--data``, ``--noise``, ``--data-seed``, ``--dtype``."""
    return jaxgd.problem("notebook" if args.problem == "notebook" and args.data is None else
                         "data" if args.problem == "notebook" else args.problem,
                         data=args.data, noise=args.noise, data_seed=args.data_seed, dtype=args.dtype)


DEFAULTS = {"seed": 0, "sampling": "shuffle", "rng": "jax", "data_seed": 0, "decay_rate": 0.99, "final_fraction": 0.0}
SCHEDULE_FLAGS = {"decay_rate": ("exponential",), "warmup": ("warmup-cosine",),
                  "final_fraction": ("cosine", "warmup-cosine")}  # each schedule flag's schedules


def _settle(args) -> None:
    """Refuse the flags of run, sweep, grads given where they change nothing; fill in the others' :data:`DEFAULTS`."""
    why = {k: f"applies to --schedule {' or '.join(v)}, not {args.schedule}" for k, v in SCHEDULE_FLAGS.items()
           if getattr(args, "schedule", v[0]) not in v}
    if not args.noise:
        why["data_seed"] = "is the seed of --noise on the notebook's data: without --noise it changes nothing"
    if getattr(args, "batch_size", 0) is None:
        why |= dict.fromkeys(("seed", "sampling", "rng"), "applies to minibatch runs (--batch-size): a full-batch "
                                                          "run draws no sample order")
    for k in why:
        if getattr(args, k, None) is not None:
            raise ArgumentError(k, why[k])
    vars(args).update({k: v for k, v in DEFAULTS.items() if getattr(args, k, v) is None})


def thin_note(m: int, k: dict, asked=None, flag: str = "--loss-every to choose") -> None:
    """One line on stderr where the full-data loss was thinned unasked (``asked``: the --loss-every
    given, or None): ``k`` ``{which runs: their loss_every values}`` (those all 1 left out)."""
    parts = [f"{w} every {min(v):,}" + (f" to {max(v):,}" if min(v) < max(v) else "") + " steps"
             for w, v in k.items() if max(v) > 1]
    if parts and asked is None:
        stderr(f"jaxgd: {m:,} examples: the full-data loss of {', of '.join(parts)} (NaN between; {flag}), as each "
               "costs a pass over the data")


def _flags(cls, args) -> dict:
    """The flags named as the fields of the settings dataclass ``cls`` (None where no flag has that name)."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}


def _data_note(data) -> None:
    """One line on stderr when the first row of a ``--data`` file was read as a header (the
    arguments are all checked by then: a bad one's error stays the only line)."""
    if data is None:
        return
    f = read_xy(data)
    if f.header is not None:
        sep = {",": "comma", "\t": "tab", ";": "semicolon"}[f.separator]
        stderr(f"jaxgd: --data {str(data)!r}: row 1 ({', '.join(f.header)}) read as a header; "
               f"{len(f.x)} rows of data, {sep}-separated")


def _run(args, setup) -> int:
    """``jaxgd run``: one optimizer run; one line of summary, or the whole trajectory as JSON."""
    setup(args.dtype)
    if args.json not in (None, "-"):
        check_file_target("json", args.json)
    _settle(args)
    problem = _problem(args)
    hyper = {h: getattr(args, h) for h in HYPER if getattr(args, h) is not None}
    cfg = jaxgd.runs.check_run_args(problem, args.optimizer, args.lr, args.epochs, args.batch_size, args.init,
                                    args.sampling, args.rng, args.seed, hyper, loss_every=args.loss_every or "auto")
    cfg = cfg.with_lr(make_schedule(args.schedule, args.lr, cfg.steps, args.decay_rate, args.warmup,
                                    args.final_fraction))
    _budget(problem, [(1, cfg.steps, args.batch_size)], "epochs", args)
    _data_note(args.data)
    thin_note(problem.num_examples, {"the run": [cfg.loss_every]}, args.loss_every)
    t = signals.on_a_thread(lambda stop: jaxgd.runs.run_checked(cfg))  # Ctrl-C at once, even in one long call
    div = int(t.diverged_at)
    settings = {
        "lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "steps": cfg.steps,
        "sampling": args.sampling, "rng": args.rng, "seed": args.seed, "init": [float(v) for v in cfg.init],
        "loss_every": cfg.loss_every, "problem": problem.name,
        "hyper": {k: v for k, v in cfg.spec.hyper.items() if k != "lr"}, "dtype": args.dtype, "noise": args.noise,
        "data_seed": args.data_seed, "device": jax.devices()[0].platform, "jaxgd": jaxgd.__version__,
        "schedule": {"kind": args.schedule} | {k: getattr(args, k) for k in SCHEDULE_FLAGS},
    }
    if args.json is not None:
        write_json(args.json, {"optimizer": args.optimizer, "config": settings, "final": {"w": t.final.w, "b": t.final.b},
                               "params": {"w": t.params.w, "b": t.params.b}, "loss": t.loss,
                               "batch_loss": t.batch_loss, "diverged_at": None if div < 0 else div})
        if args.json == "-":
            return 0
    state = "finite throughout" if div < 0 else f"diverged at step {div}"
    echo(f"{args.optimizer}: {cfg.steps} steps on {settings['device']} ({args.dtype}) -> "
         f"W = {float(t.final.w)!r}, b = {float(t.final.b)!r}, loss = {float(t.loss[-1])!r} ({state})")
    return 0


def _budget(problem, work, name: str, args) -> None:
    """Refuse work estimated past an hour (:func:`jaxgd.budget.check`) unless ``--yes``; with it, say the estimate."""
    words = budget.check(problem, work, name, go_on=args.yes, how="give --yes to go on")
    if words:
        stderr(f"jaxgd: --yes: {words}")


def _grads(args, setup) -> int:
    """``jaxgd grads``: jax.grad against the analytic gradient over the problem's grid."""
    setup(args.dtype)
    _checks.check_int("grid", args.grid, 2, config.GRID_MAX)
    _settle(args)
    problem = _problem(args)
    n = args.grid
    w, b = np.linspace(*problem.w_range, n), np.linspace(*problem.b_range, n)
    gc = signals.on_a_thread(lambda stop: jaxgd.grad_check(problem, w, b))
    _data_note(args.data)
    na, nb = problem.param_names
    echo(f"jax.grad vs analytic gradient on a {n}×{n} grid over "
         f"{na} in {list(problem.w_range)}, {nb} in {list(problem.b_range)} ({args.dtype}):")
    echo(f"  max abs error {gc.max_abs_error:.3e}, max rel error {gc.max_rel_error:.3e} "
         f"(worst at {na}={gc.worst.w:.4g}, {nb}={gc.worst.b:.4g})")
    echo(f"  {na:>8} {nb:>8} | {f'dL/d{na} autodiff':>22} {f'dL/d{na} analytic':>22} | "
         f"{f'dL/d{nb} autodiff':>22} {f'dL/d{nb} analytic':>22}")
    for i, j in ((0, 0), (n // 4, 3 * n // 4), (n // 2, n // 2), (3 * n // 4, n // 4), (n - 1, n - 1)):
        echo(f"  {w[i]:8.3f} {b[j]:8.3f} | {float(gc.autodiff.w[i, j]):22.15g} {float(gc.analytic.w[i, j]):22.15g} | "
             f"{float(gc.autodiff.b[i, j]):22.15g} {float(gc.analytic.b[i, j]):22.15g}")
    return 0


def _notebook(args, setup) -> int:
    """``jaxgd notebook``: the notebook's printed numbers, and every optimizer × sampling mode."""
    setup(args.dtype)
    for line in [*notebook_numbers(args.dtype), "", *optimizer_table()]:
        echo(line)
    return 0


def _report(args, setup) -> int:
    """``jaxgd report``: defaults, then the TOML file, then the flags given, checked into a plan; every
    run computed and written (:mod:`jaxgd.app.report`); a line per run."""
    t0 = time.perf_counter()
    values = config.load_toml(args.config) if args.config is not None else {}
    values.update({k: v for k, v in _flags(config.ReportConfig, args).items() if v is not None})
    cfg = config.check(dataclasses.replace(config.ReportConfig(), **values))
    check_folder_target("out", cfg.out, REPORT_FILES)
    pack_dir = setup(cfg.dtype)
    p = plan(cfg)
    points, epochs = report.sweep_shape(cfg)
    basins = cfg.sweep and len(p.problem.minima) >= 2  # explore.basins: a grid of starts per full-batch run
    _budget(p.problem, [(1, r.steps, r.config.batch_size) for r in p.runs]
            + [(points * len(cfg.optimizers), epochs, None)] * bool(cfg.sweep)
            + [(explore.BASIN_GRID ** 2, r.steps, None) for r in p.runs if basins and r.config.batch_size is None],
            "epochs", args)
    _data_note(cfg.data)
    m, b = p.problem.num_examples, p.config.batch_size
    if cfg.batch_size is None and m is not None and b != presets.MODES[-1].batch_size:
        stderr(f"jaxgd: --data has {m} examples: the minibatch mode takes batches of {b} (--batch-size to choose)")
    thin_note(m, {f"the {md.label} runs": [r.config.loss_every for r in p.runs if r.mode == md]
                  for md in dict.fromkeys(r.mode for r in p.runs)}, cfg.loss_every)
    big = big_data(p.problem)
    if big and (cfg.sweep or cfg.epochs is None):
        stderr(f"jaxgd: --data has {p.problem.num_examples:,} examples: the report skips the sweeps and explorables"
               + ("" if cfg.epochs is not None else ", and SGD and minibatch runs take 1 epoch (--epochs to choose)"))
    with Progress(p.total_steps, unit="step") as bar:
        bar.say(f"computing {len(p.runs)} runs ({p.total_steps:,} steps)"
                + (", the sweeps and the explorables" if cfg.sweep and not big else ""))
        data = signals.on_a_thread(lambda stop: report.compute(
            p, callback=partial(bar.update, "runs") if bar.active else None, pack_dir=pack_dir, stop=stop))
    bar.say(f"writing {cfg.out}")
    files = report.write(data, cfg.out, png=cfg.png, gif=cfg.gif, pack_dir=pack_dir)
    echo(f"jaxgd report: {len(data.runs)} runs on {data.meta['device']} ({cfg.dtype}); "
         f"jax.grad vs analytic: max rel error {data.grad_check.max_rel_error:.2e}")
    na, nb = data.problem.param_names
    for r in run_rows(data):
        state = r["why"] if r["state"] == "diverged" else r["state"] + ("" if r["state"] == "converged" else f": {r['why']}")
        echo(f"  {r['optimizer']:<10} {r['mode']:<10} lr {r['lr']:<6g} {r['steps']:>5} steps  "
             f"{na} = {_num(r['final_w'])}  {nb} = {_num(r['final_b'])}  loss = {_num(r['final_loss'], '.3e')}  {state}")
    echo(f"wrote {', '.join(str(f) for f in files)} in {time.perf_counter() - t0:.1f} s")
    return 0


def _num(v, spec=None) -> str:
    """Right-aligned in 10 columns: :func:`jaxgd.app.summary.number`, or ``spec`` if given."""
    return f"{'—' if v is None else format(v, spec) if spec else number(v):>10}"


def _sweep(args, setup) -> int:
    """``jaxgd sweep``: final loss against learning rate, one compiled call per optimizer; sweep.json,
    sweep.html (and sweep.png)."""
    setup(args.dtype)
    t0 = time.perf_counter()
    names = SWEEP_FILES if args.png else SWEEP_FILES[:2]
    check_folder_target("out", args.out, names)
    _settle(args)
    problem = _problem(args)
    optimizers = config.parse_optimizers(args.optimizers)
    lo, hi = (_checks.check_positive_number(k, getattr(args, k)) for k in ("lr_min", "lr_max"))
    if hi < lo:
        raise ArgumentError("lr_max", f"must be >= --lr-min ({lo!r}), got {hi!r}")
    num = _checks.check_int("num", args.num, 1, 1_000_000)
    epochs = _checks.check_int("epochs", args.epochs, 1)  # as the sweep checks it (its steps: there too)
    m, bs = problem.num_examples, args.batch_size
    if bs is not None and m is not None:
        bs = _checks.check_int("batch_size", bs, 1, m)
    _budget(problem, [(num, epochs * (steps_per_epoch(m, bs) if bs and m else 1), bs)] * len(optimizers), "epochs", args)

    # the first optimizer's sweep checks the rest (the same for every optimizer) before it computes
    sc = signals.on_a_thread(lambda stop: jaxgd.lr_scan(
        problem, optimizers, np.geomspace(lo, hi, num), epochs=args.epochs, batch_size=args.batch_size,
        sampling=args.sampling, rng=args.rng, seed=args.seed, loss_every=args.loss_every or "auto", go_on=True))  # _budget
    _data_note(args.data)  # m, bs checked above and by the sweep: each run's steps, and the loss_every "auto" took
    every = args.loss_every or jaxgd.runs.auto_loss_every(m, bs, args.epochs * (bs and steps_per_epoch(m, bs) or 1))
    thin_note(m, {"each run": [every]}, args.loss_every)
    device = jax.devices()[0].platform
    settings = {"optimizers": list(optimizers), "lr_min": lo, "lr_max": hi, "num": num, "epochs": args.epochs,
                "batch_size": args.batch_size, "sampling": args.sampling, "rng": args.rng, "seed": args.seed,
                "noise": args.noise, "data_seed": args.data_seed, "dtype": args.dtype, "loss_every": every}
    doc = sweep_doc(sc, settings, {"device": device, "versions": versions()})
    figure = (sc.lrs, sc.final_loss, sc.diverged_at, sc.stability_limit)
    writers = {
        "sweep.json": text_writer(dumps(doc) + "\n"),
        "sweep.html": lambda p: plots.plotly_figs.sweep(*figure, optimal_lr=sc.optimal_lr).write_html(
            p, include_plotlyjs=True, full_html=True),
        "sweep.png": lambda p: plots.mpl_figs.sweep(*figure, optimal_lr=sc.optimal_lr).savefig(p, dpi=110, format="png"),
    }
    write_all(args.out, {k: writers[k] for k in names})
    echo(f"jaxgd sweep: {num} learning rates in [{lo:g}, {hi:g}] × {len(optimizers)} optimizers, "
         f"{args.epochs} epochs each, on {device} ({args.dtype})")
    if sc.stability_limit is not None:
        echo(f"  theory: full-batch gd is stable for lr < 2/λmax = {sc.stability_limit:.6g}")
    for k in optimizers:
        best = sc.best(k)
        best = "all diverged" if best is None else f"best lr {best[0]:.4g} (final loss {best[1]:.3e})"
        bnd = jaxgd.divergence_boundary(sc.lrs, sc.diverged_at[k])
        echo(f"  {k:<12} {best}; " + ("no run diverged" if bnd is None else f"diverges from lr {bnd:.4g}"))
    echo(f"wrote {', '.join(names)} into {args.out}/ in {time.perf_counter() - t0:.1f} s")
    return 0


def _landscape(args, setup) -> int:
    """``jaxgd landscape``: a real model's loss landscape on a plane, with the paths and sharpness
    (:mod:`jaxgd.app.landscape`); a line per optimizer."""
    pack_dir = setup(args.dtype)
    t0 = time.perf_counter()
    check_folder_target("out", args.out, landscape.FILES + landscape.PNGS * args.png)  # before any work
    p = landscape.check(landscape.LandscapeConfig(**_flags(landscape.LandscapeConfig, args)))
    cfg = p.config
    thin_note(p.problem.num_examples, {"each run": [p.runs[0].loss_every]}, flag="--batch-size or --epochs to change it")
    with Progress() as bar:
        data = signals.on_a_thread(lambda stop: landscape.compute(
            p, progress=signals.unless(stop, bar.update if bar.active else None)))
    files = landscape.write(data, cfg.out, png=cfg.png, pack_dir=pack_dir)
    m = data.meta
    echo(f"jaxgd landscape: {cfg.model} ({m['num_params']:,} parameters) on {p.dataset.name} "
         f"({m['num_examples']} examples, {m['task']}), {cfg.plane} plane, {cfg.grid}² grid, on {m['device']} ({cfg.dtype})")
    if data.explained is not None:
        echo(f"  PCA: the plane explains {100 * data.explained[0]:.1f} % + {100 * data.explained[1]:.1f} % of the "
             f"paths' variance (a random walk: {100 * data.random_walk_explained[0]:.1f} % + "
             f"{100 * data.random_walk_explained[1]:.1f} %)")
    if data.left_out:
        echo(f"  the plane leaves out {', '.join(f'{k} from step {d}' for k, d in data.left_out.items())}: "
             f"{'it' if len(data.left_out) == 1 else 'they'} diverged there")
    for opt, r in data.summary().items():
        state = "" if r["diverged_at"] is None else f", diverged at step {r['diverged_at']}"
        lim = "" if r["stability_limit"] is None else f" (stable below {r['stability_limit']:.4g})"
        sh = np.asarray(data.trajectories[opt].sharpness if data.trajectories[opt].sharpness is not None else [])
        sh = sh[:None if r["diverged_at"] is None else r["diverged_at"]]  # as the summary: none past divergence
        at = f" at step {int(np.flatnonzero(np.isfinite(sh))[-1])}" if np.isfinite(sh).any() else ""  # the last measured
        sharp = "" if r["final_sharpness"] is None else f", sharpness {r['final_sharpness']:.4g}{at}{lim}"
        p = data.projections[opt]  # at the end, as the page's table (the largest was the shared start's)
        gap = abs(float(p.loss[-1]) - float(p.projected_loss[-1]))
        echo(f"  {opt:<10} {r['steps']} steps, final loss {r['final_loss']:.4g}{state}{sharp}; "
             f"at the end: gap to the projection {'—' if not math.isfinite(gap) else f'{gap:.3g}'}, "
             f"{float(p.distance[-1]):.3g} from the plane")
    echo(f"wrote {', '.join(str(f) for f in files)} in {time.perf_counter() - t0:.1f} s")
    return 0


def _compare(args, setup) -> int:
    """``jaxgd compare``: the suite's grid of runs per task, the statistics, compare.json and compare.html
    (:mod:`jaxgd.app.compare_page`); a line per optimizer."""
    pack_dir = setup(args.dtype)
    t0 = time.perf_counter()
    check_folder_target("out", args.out, compare_page.FILES)
    quick = {"tasks": ",".join(comparison.QUICK), "optimizers": "gd,momentum,adam", "num_lrs": 6,
             "num_second": 2, "seeds": 3, "budget": 60} if args.quick else {}
    defaults = {"num_lrs": 25, "num_second": 8, "seeds": 10, "budget": 200}  # the flags' (None: not given)
    v = {k: getattr(args, k) if getattr(args, k) is not None else quick.get(k, d) for k, d in defaults.items()}
    tasks = args.tasks if args.tasks is not None else quick.get("tasks")
    tasks = None if tasks is None else [s.strip() for s in tasks.split(",") if s.strip()]
    optimizers = args.optimizers if args.optimizers is not None else quick.get("optimizers")
    optimizers = None if optimizers is None else config.parse_optimizers(optimizers)
    lo = _checks.check_positive_number("lr_min", args.lr_min)
    hi = _checks.check_positive_number("lr_max", args.lr_max)
    if hi < lo:
        raise ArgumentError("lr_max", f"must be >= --lr-min ({lo!r}), got {hi!r}")
    with Progress() as bar:
        c = signals.on_a_thread(lambda stop: comparison.compare(
            tasks, optimizers, seeds=v["seeds"], budget=v["budget"], num_lrs=v["num_lrs"], num_second=v["num_second"],
            lr_range=(lo, hi), target=args.target, go_on=args.yes,
            progress=signals.unless(stop, lambda t, i, n, s: (bar.update("tasks", i, n),
                                                              stderr(f"jaxgd: task {i}/{n} {t}: {s:.1f} s")))))
    files = compare_page.write(c, args.out, pack_dir=pack_dir)
    m, p = c.meta, c.stats["profile"]
    echo(f"jaxgd compare: {len(c.tasks)} tasks × {len(c.optimizers)} optimizers, {m['runs']:,} runs of "
         f"{c.budget} gradient evaluations on {m['device']} ({m['dtype']}) in {m['seconds']:.1f} s")
    for i, o in enumerate(c.optimizers):
        echo(f"  {o:<12} profile area to τ = {p['tau_max']:g}: {p['area'][i]:.3f} "
             f"[{p['low'][i]:.3f}, {p['high'][i]:.3f}]; reached the target on {int(p['solved'][i])} of {len(c.tasks)} tasks")
    echo(f"wrote {', '.join(str(f) for f in files)} in {time.perf_counter() - t0:.1f} s")
    return 0


COMMANDS = {"run": _run, "grads": _grads, "notebook": _notebook, "report": _report, "sweep": _sweep,
            "landscape": _landscape, "compare": _compare}
