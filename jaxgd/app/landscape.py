"""``jaxgd landscape``: the loss landscape of an MLP on a data set, seen on a plane through parameter space.

``check(cfg)`` turns the settings into a :class:`LandscapePlan` (the data set, the model, the
problem, every run checked); ``compute(plan)`` is :func:`jaxgd.landscape` of it (every number on
the page is computed there), described in the command's words; ``write(ls, out)``
(:func:`write`) writes ``landscape.html`` (offline),
``landscape.json``, ``landscape.npz`` and PNGs.
"""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

import jaxgd
from jaxgd import _checks, datasets, models, survey
from jaxgd._checks import ArgumentError
from jaxgd.app.config import GRID_MAX, parse_optimizers
from jaxgd.app import files as jio
from jaxgd.app.results import versions
from jaxgd.app.shell import figures_page, fill
from jaxgd.plots.landscape_figs import figures, mpl_figures
from jaxgd.survey import Landscape


@dataclasses.dataclass(frozen=True)
class LandscapeConfig:
    """The settings of ``jaxgd landscape`` (flag names with ``_``)."""

    data: str = "digits"
    target: str | None = None
    task: str | None = None
    model: str = "mlp:32"
    activation: str = "tanh"
    loss: str = "xent"
    optimizers: tuple = ("gd", "momentum", "adam")
    lr: tuple | float | str = (0.5, 0.5, 0.01)
    epochs: int = 100
    batch_size: int | None = None
    plane: str = "pca"
    grid: int = 51
    sharpness_every: int = 10
    seed: int = 0
    dtype: str = "float64"
    out: str = "out"
    png: bool = True


class LandscapePlan(NamedTuple):
    config: LandscapeConfig
    dataset: object  # jaxgd.datasets.Dataset
    sizes: tuple
    problem: object  # jaxgd.Problem
    runs: tuple  # RunConfig per optimizer


def parse_lrs(lr, optimizers) -> tuple:
    """One learning rate for every optimizer, or one each: a number, a sequence, or a comma list."""
    items = [v.strip() for v in lr.split(",")] if isinstance(lr, str) else list(np.atleast_1d(lr))
    try:
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        raise ArgumentError("lr", f"must be a number or one per optimizer (comma-separated), got {lr!r}") from None
    if len(values) == 1:
        values = values * len(optimizers)
    if len(values) != len(optimizers):
        raise ArgumentError("lr", f"must be one number or one per optimizer ({len(optimizers)}: "
                                  f"{', '.join(optimizers)}), got {len(values)}")
    return tuple(_checks.check_positive_number("lr", v) for v in values)


def check(cfg: LandscapeConfig) -> LandscapePlan:
    """Check every setting, load the data, build the model and check every run (nothing is
    computed); raises :class:`jaxgd.ArgumentError` naming the setting."""
    optimizers = parse_optimizers(cfg.optimizers)
    plane = _checks.check_choice("plane", cfg.plane, survey.PLANES)
    grid = _checks.check_int("grid", cfg.grid, 2, GRID_MAX)
    seed = _checks.check_seed(cfg.seed)
    dtype = _checks.check_choice("dtype", cfg.dtype, ("float64", "float32"))
    hidden = models.parse_mlp_spec(cfg.model)
    lrs = parse_lrs(cfg.lr, optimizers)
    _checks.check_choice("loss", cfg.loss, models.LOSSES)
    models.mlp((1, *hidden, 1), cfg.activation)  # checks the activation
    if not isinstance(cfg.out, str) or not cfg.out:
        raise ArgumentError("out", f"must be a folder path, got {cfg.out!r}")
    if cfg.data in datasets.DATASETS:
        if cfg.target is not None:
            raise ArgumentError("target", f"applies to a CSV file, not to the data set {cfg.data!r}")
        ds = datasets.load(cfg.data)
        if cfg.task is not None and cfg.task != ds.task:
            raise ArgumentError("task", f"of {cfg.data!r} is {ds.task}, got {cfg.task!r}")
    else:
        ds = datasets.load_csv_table(cfg.data, target=cfg.target, task=cfg.task)
    sizes = (ds.x.shape[1], *hidden, ds.out_dim)
    model = models.mlp(sizes, cfg.activation, ds.task, cfg.loss)
    problem = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(seed), dtype=dtype),
                                  (ds.x, ds.y), name=f"{cfg.model} on {ds.name}", dtype=dtype)
    survey.check_grid(problem, grid)
    runs = tuple(jaxgd.runs.check_run_args(problem, opt, lr, cfg.epochs, cfg.batch_size, None, "shuffle", "jax", seed,
                                      sharpness_every=cfg.sharpness_every) for opt, lr in zip(optimizers, lrs))
    cfg = dataclasses.replace(cfg, optimizers=optimizers, lr=lrs, plane=plane, grid=grid, seed=seed, dtype=dtype)
    return LandscapePlan(cfg, ds, sizes, problem, runs)


def compute(plan: LandscapePlan, progress=None) -> Landscape:
    """:func:`jaxgd.landscape` of the plan's runs (``progress(stage, done, total)`` as they and
    the grid advance), described as the command describes it: its settings as ``config``, the
    data's task and the layer sizes in ``meta``, its sentence on the model."""
    cfg, ds = plan.config, plan.dataset
    ls = jaxgd.landscape(plan.problem, dict(zip(cfg.optimizers, plan.runs)), cfg.plane, cfg.grid,
                         key=jax.random.key(cfg.seed), name=cfg.model, callback=progress)
    what = (f"{cfg.model} ({' → '.join(map(str, plan.sizes))}, {ls.meta['num_params']:,} parameters, "
            f"{cfg.activation}) on {ds.name}: {ls.meta['num_examples']} examples, {ds.task} "
            f"({'softmax cross-entropy' if ds.task == 'classification' else 'squared error'}).")
    meta = {k: ls.meta[k] for k in ("device", "num_params", "num_examples")} | {"task": ds.task,
                                                                                "sizes": list(plan.sizes)}
    config = dataclasses.asdict(cfg) | {"optimizers": list(cfg.optimizers), "lr": list(cfg.lr)}
    return dataclasses.replace(ls, what=what, config=config, meta=meta)


FILES = ("landscape.json", "landscape.npz", "landscape.html")  # and landscape-NAME.png with png


# ----------------------------------------------------------------------------- the page and files


def _num(v, spec=".4g") -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def _largest_gap(ls, opt: str, row: dict) -> str:
    """The page's sentence on the largest gap between a path's true loss and its projection's."""
    k = row["max_loss_gap_step"]
    if k is None:
        return "No finite point to compare."
    p = ls.projections[opt]
    return (f"Largest gap: {html.escape(opt)} at step {k}, where the true loss is {_num(p.loss[k])} and the loss at "
            f"its projection {_num(p.projected_loss[k])} (a gap of {_num(row['max_loss_gap'])}); that point is "
            f"{_num(p.distance[k], '.3g')} from the plane.")


def _trained(ls) -> str:
    """The page's sentence on the runs: one for runs of one length and batch from one start, else one each."""
    s, t = ls.settings, ls.trajectories
    lr = lambda k: "a schedule" if s[k]["lr"] is None else f"{s[k]['lr']:g}"  # noqa: E731
    starts = [np.concatenate([np.ravel(v[0]) for v in jax.tree.leaves(x.params)]) for x in t.values()]
    if all(s.values()) and len({(v["epochs"], v["batch_size"]) for v in s.values()}) == 1 and all(
            np.array_equal(starts[0], x) for x in starts):
        v = next(iter(s.values()))
        batch = "full batch" if v["batch_size"] is None else f"batches of {v['batch_size']}"
        return (f"Each optimizer trained for {v['epochs']} epochs ({batch}) from the same start, at lr "
                f"{', '.join(f'{html.escape(k)} {lr(k)}' for k in s)}.")
    return "Runs: " + "; ".join(f"{html.escape(k)}, {int(x.num_steps)} steps" + (f" at lr {lr(k)}" if s[k] else "")
                                for k, x in t.items()) + "."


def _every(ls) -> str:
    """How often the sharpness was measured: the settings', else the steps between measurements."""
    every = {v["sharpness_every"] for v in ls.settings.values() if v and v["sharpness_every"]}
    for t in ls.trajectories.values():
        steps = np.flatnonzero(np.isfinite(t.sharpness)) if t.sharpness is not None else ()
        if len(steps) > 1 and not every:
            every.add(int(np.min(np.diff(steps))))
    return "/".join(map(str, sorted(every))) or "some"


def page(ls, v: dict, pack_dir=None) -> str:
    """The self-contained page (:func:`jaxgd.app.shell.figures_page`, plotly.js packed in
    ``pack_dir``): ``landscape.html`` filled in with ``ls`` and the versions ``v``, and :func:`figures`."""
    figs = figures(ls)
    summ = ls.summary()
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            opt, _num(r["lr"]), r["steps"], _num(r["final_loss"]), "no" if r["diverged_at"] is None else
            f"at step {r['diverged_at']}", _num(r["max_loss_gap"]), _num(r["max_distance"]),
            _num(r["final_sharpness"]), _num(r["stability_limit"]))) + "</tr>" for opt, r in summ.items())
    worst = max(summ.items(), key=lambda kv: -1 if kv[1]["max_loss_gap"] is None else kv[1]["max_loss_gap"])
    pct = {} if ls.explained is None else {k: f"{100 * x:.1f}" for k, x in zip(
        ("pc1", "pc2", "rw1", "rw2"), (*ls.explained, *ls.random_walk_explained))}
    values = {"sharpness": {"every": _every(ls)}, "gaps": {"gap": _largest_gap(ls, *worst)}, "variance": pct}
    body = fill("landscape.html", what=html.escape(ls.what), trained=_trained(ls),
                first=html.escape(next(iter(ls.trajectories))),
                plane=html.escape(fill("landscape.html", f"plane-{ls.plane_kind}")), dtype=str(ls.problem.dtype),
                device=ls.meta["device"], v_jaxgd=v["jaxgd"], v_jax=v["jax"], v_optax=v["optax"], rows=rows,
                sections="\n".join(fill("landscape.html", k, **values.get(k, {})) for k in figs))
    return figures_page("jaxgd landscape", body, figs, pack_dir)


def write(ls, out: str | os.PathLike, png: bool = True, pack_dir=None) -> list[Path]:
    """Write landscape.json, landscape.npz, landscape.html and (``png``) the PNGs of the Landscape
    ``ls`` into ``out``, as one set (:func:`jaxgd.app.files.write_all`: every target checked
    first, the old set kept on a failure); ``meta`` gains the versions."""
    v = versions()
    doc = ls.document()
    device, *rest = doc["meta"].items()
    doc["meta"] = dict([device, ("versions", v), *rest])
    writers = {"landscape.json": jio.text_writer(jio.dumps(doc, indent=1) + "\n"),
               "landscape.npz": jio.npz_writer(ls.arrays),
               "landscape.html": jio.text_writer(page(ls, v, pack_dir))}
    if png:
        for name, fig in mpl_figures(ls).items():
            writers[f"landscape-{name}.png"] = lambda path, fig=fig: fig.savefig(path, dpi=100, format="png")
    return jio.write_all(out, writers)
