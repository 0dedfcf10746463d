"""``jaxgd landscape``: the loss landscape of an MLP on a data set, seen on a plane through parameter space.

``check(cfg)`` turns the settings into a :class:`LandscapePlan` (the data set, the model, the
problem, every run checked); ``compute(plan)`` is :func:`jaxgd.landscape` of it (every number on
the page is computed there), described in the command's words; ``write(ls, out)``
(:func:`jaxgd.app.landscape_page.write`) writes ``landscape.html`` (offline),
``landscape.json``, ``landscape.npz`` and PNGs.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import NamedTuple

import jax
import numpy as np

import jaxgd
from jaxgd import _checks, budget, datasets, flows, models, planes, survey
from jaxgd._checks import ArgumentError
from jaxgd.app.config import GRID_MAX, parse_optimizers
from jaxgd.app.terminal import stderr
from jaxgd.app.landscape_page import FILES, PNGS, write  # noqa: F401  (the command's files and their writer)
from jaxgd.survey import Landscape


LOSS_WORDS = {"xent": "softmax cross-entropy", "mse": "squared error against one-hot targets"}  # --loss, said on the page
DEEP = 32  # hidden layers past which the compile time is estimated (it grows about with the square of the depth)
PROBE_DEPTH = 16  # the depth compiled to estimate it
PROGRAMS = 4  # programs of the model's size a landscape compiles: the probe, the training scan, the grid, the interpolation


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
    sharpness_of: str = "hessian"
    seed: int = 0
    dtype: str = "float64"
    out: str = "out"
    png: bool = True
    yes: bool = False  # go on past an hour of estimated work


@dataclasses.dataclass(frozen=True, eq=False)
class FlowLandscape(Landscape):  # with gd's flows on its plane (gd_flows): kind -> Projection of (T+1,) arrays
    flows: dict = dataclasses.field(default_factory=dict)


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
    ds = datasets.load_data(cfg.data, cfg.target, cfg.task)
    sizes = (ds.x.shape[1], *hidden, ds.out_dim)
    n, m = sum((i + 1) * o for i, o in zip(sizes, sizes[1:])), len(ds.x)
    fits = partial(survey.check_memory, n, m, grid, per_example=2 * sum(sizes), itemsize=np.dtype(dtype).itemsize,
                   names=("model", "epochs"))
    fits()  # the model alone, before its parameters exist; with the runs' trajectories once they are checked
    model = models.mlp(sizes, cfg.activation, ds.task, cfg.loss)
    problem = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(seed), dtype=dtype),
                                  (ds.x, ds.y), name=f"{cfg.model} on {ds.name}", dtype=dtype)
    if len(hidden) > DEEP and (need := compile_seconds(sizes, cfg.activation, ds, cfg.loss, dtype)) > budget.HOUR:
        words = (f"has {len(hidden):,} hidden layers: compiling it is estimated at about {budget.say_seconds(need)} here "
                 f"(the compile time grows about with the square of the depth)")
        if not cfg.yes:
            raise ArgumentError("model", f"{words}: past an hour, give --yes to go on")
        stderr(f"jaxgd: --yes: --model {words}")
    runs = tuple(jaxgd.runs.check_run_args(problem, opt, lr, cfg.epochs, cfg.batch_size, None, "shuffle", "jax", seed,
                                      sharpness_every=cfg.sharpness_every, sharpness_of=cfg.sharpness_of,
                                      loss_every="auto") for opt, lr in zip(optimizers, lrs))  # said on stderr
    if ds.task == "regression" and cfg.loss != LandscapeConfig.loss:
        raise ArgumentError("loss", f"applies to classification; {ds.name!r} is a regression, fit by squared error")
    if cfg.sharpness_of != LandscapeConfig.sharpness_of and not runs[0].sharpness:
        raise ArgumentError("sharpness_of", "applies where the sharpness is measured: give --sharpness-every k ≥ 1")
    survey.check_paths(plane, [rc.steps for rc in runs])
    fits([rc.steps for rc in runs], lanczos=max([rc.sharpness[1] for rc in runs if rc.sharpness], default=0))
    cfg = dataclasses.replace(cfg, optimizers=optimizers, lr=lrs, plane=plane, grid=grid, seed=seed, dtype=dtype)
    work = survey.check_seconds(survey.probe(problem), runs, grid, go_on=cfg.yes, how="give --yes to go on",
                                names=("epochs", "grid"))  # last: every refusal above comes before any compiling
    if work:
        stderr(f"jaxgd: --yes: {work}")
    return LandscapePlan(cfg, ds, sizes, problem, runs)


def compile_seconds(sizes, activation: str, ds, loss: str, dtype) -> float:
    """Seconds, roughly, that compiling a landscape of the MLP ``sizes`` takes here: its full-data loss and
    gradient compiled with its first :data:`PROBE_DEPTH` hidden layers, scaled by the square of the depth (as
    XLA's compile time of a chain of layers grows here: 16, 32, 50, 100 layers of width 1 took about 4, 17, 30,
    100 s on 2 busy cores), times :data:`PROGRAMS`."""
    m = models.mlp((sizes[0], *sizes[1:PROBE_DEPTH + 1], sizes[-1]), activation, ds.task, loss)
    p = jaxgd.model_problem(m.loss_per_example, m.init(jax.random.key(0), dtype=dtype), (ds.x, ds.y), dtype=dtype)
    t0 = time.perf_counter()
    jax.jit(jax.value_and_grad(p.full_loss)).lower(p.init).compile()
    return PROGRAMS * (time.perf_counter() - t0) * ((len(sizes) - 2) / PROBE_DEPTH) ** 2


def compute(plan: LandscapePlan, progress=None) -> Landscape:
    """:func:`jaxgd.landscape` of the plan's runs (``progress(stage, done, total)`` as they and
    the grid advance), described as the command describes it: its settings as ``config``, the
    data's task and the layer sizes in ``meta``, its sentence on the model."""
    cfg, ds = plan.config, plan.dataset
    ls = jaxgd.landscape(plan.problem, dict(zip(cfg.optimizers, plan.runs)), cfg.plane, cfg.grid,
                         key=jax.random.key(cfg.seed), name=cfg.model, callback=progress, go_on=True)  # checked
    what = sentence(cfg, ds, plan.sizes, ls.meta['num_params'], ls.meta['num_examples'])
    meta = {k: ls.meta[k] for k in ("device", "num_params", "num_examples")} | {"task": ds.task,
                                                                                "sizes": list(plan.sizes)}
    config = dataclasses.asdict(cfg) | {"optimizers": list(cfg.optimizers), "lr": list(cfg.lr),
                                        "loss_every": plan.runs[0].loss_every}
    config.pop("yes")
    ls = dataclasses.replace(ls, what=what, config=config, meta=meta)
    return FlowLandscape(**vars(ls), flows=gd_flows(ls, dict(zip(cfg.optimizers, plan.runs)), progress))


def sentence(cfg: LandscapeConfig, ds, sizes, num_params: int, num_examples: int) -> str:
    """The page's sentence on the model: its layers, the data, the task and the loss fitted (``cfg.loss``)."""
    return (f"{cfg.model} ({' → '.join(map(str, sizes))}, {num_params:,} parameters, {cfg.activation}) on {ds.name}: "
            f"{num_examples} examples, {ds.task} ({LOSS_WORDS[cfg.loss] if ds.task == 'classification' else 'squared error'}).")


def gd_flows(ls: Landscape, runs: dict, progress=None) -> dict:
    """gd's flows (:mod:`jaxgd.flows`) beside the full-batch gd run of ``runs`` (name -> RunConfig), projected
    on the plane; the central flow only where gd's sharpness reached 2/lr (:func:`jaxgd.flows.crossing`;
    below it, it is gradient flow). ``{}`` without such a run."""
    gd = next((k for k, rc in runs.items() if rc.optimizer == "gd" and rc.batch_size is None), None)
    if gd is None:
        return {}
    rc, lr = runs[gd], float(runs[gd].spec.hyper["lr"])
    sharp = ls.trajectories[gd].sharpness
    kinds = flows.KINDS if sharp is not None and flows.crossing(sharp, lr) is not None else flows.KINDS[:2]
    out = {}
    for i, k in enumerate(kinds):
        (progress or (lambda *a: None))("gd's flows", i, len(kinds))
        out[k] = jax.tree.map(np.asarray, planes.project(ls.plane, flows.flow(k, ls.problem, rc.init, lr, rc.steps).params,
                                                         ls.problem))
    return out
