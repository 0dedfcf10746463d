"""``jaxgd landscape``: the loss landscape of a real model, seen on a plane through parameter space.

``check(cfg)`` turns the settings into a :class:`LandscapePlan` (the data set, the model, the
problem, every run checked); ``compute(plan)`` trains each optimizer (sharpness measured inside
the scan), picks the plane (PCA of the paths, filter-normalised random directions, or the top two
Hessian eigenvectors), evaluates the loss on the plane's grid, projects every path onto it and
interpolates from the start to each end; ``write(data, out)`` writes ``landscape.html`` (offline),
``landscape.json``, ``landscape.npz`` and PNGs. Every number on the page is computed here.
"""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd
from jaxgd import _checks, datasets, models, planes
from jaxgd._checks import ArgumentError
from jaxgd.app import files as jio
from jaxgd.app.config import GRID_MAX, parse_optimizers
from jaxgd.app.plots import landscape_figs
from jaxgd.app.results import versions
from jaxgd.app.shell import figures_page, fill, thin
from jaxgd.curvature import sharpness_limit
from jaxgd.planes import MAX_ELEMENTS

PLANES = ("pca", "random", "hessian")
PCA_POINTS = 300  # points of each path in the PCA of the paths


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


def memory_needed(grid: int, num_params: int, num_examples: int) -> int:
    """Bytes the grid needs at its peak, roughly: the surface (grid², 8 bytes each) and one
    chunk of the vmapped evaluation (``planes.MAX_ELEMENTS`` parameter numbers, with the
    activations of every example for each point in the chunk)."""
    points = max(1, MAX_ELEMENTS // max(num_params, 1))
    return 8 * (grid * grid + MAX_ELEMENTS + points * num_examples * 4)


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
    plane = _checks.check_choice("plane", cfg.plane, PLANES)
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
    _checks.check_fits("grid", memory_needed(grid, problem.num_params, problem.num_examples),
                       f"a {grid}² grid of {problem.num_params:,} parameters on {problem.num_examples:,} examples")
    runs = tuple(jaxgd.runs.check_run_args(problem, opt, lr, cfg.epochs, cfg.batch_size, None, "shuffle", "jax", seed,
                                      sharpness_every=cfg.sharpness_every) for opt, lr in zip(optimizers, lrs))
    cfg = dataclasses.replace(cfg, optimizers=optimizers, lr=lrs, plane=plane, grid=grid, seed=seed, dtype=dtype)
    return LandscapePlan(cfg, ds, sizes, problem, runs)


@dataclasses.dataclass
class LandscapeData:
    """Everything the page shows, as NumPy arrays."""

    plan: LandscapePlan
    trajectories: dict  # optimizer -> Trajectory (NumPy leaves)
    plane: object  # jaxgd.planes.Plane
    explained: np.ndarray | None  # (2,) PCA variance ratios (pca plane), else None
    random_walk_explained: np.ndarray | None
    a: np.ndarray  # (G,) grid along d1
    b: np.ndarray  # (G,) grid along d2
    surface: np.ndarray  # (G, G), S[i, j] = loss(origin + a_i d1 + b_j d2)
    projections: dict  # optimizer -> jaxgd.planes.Projection of (T+1,) arrays
    t: np.ndarray  # (K,) interpolation parameters
    interpolation: dict  # optimizer -> (K,) loss along start -> its end
    meta: dict


def compute(plan: LandscapePlan, progress=None) -> LandscapeData:
    """Train, choose the plane, evaluate the grid, project and interpolate.

    ``progress(stage, done, total)`` is called as the runs and the grid advance."""
    cfg, problem = plan.config, plan.problem
    say = progress or (lambda *a: None)
    trajs = {}
    for opt, rc in zip(cfg.optimizers, plan.runs):
        cb = lambda done, total, opt=opt: say(f"training {opt}", done, total)
        t = jaxgd.runs.run_checked(rc, chunk=max(rc.steps // 20, 1), callback=cb)
        trajs[opt] = jax.tree.map(np.asarray, t)
    first = trajs[cfg.optimizers[0]]
    end = jax.tree.map(lambda a: jnp.asarray(a[-1]), first.params)
    key = jax.random.key(cfg.seed)
    explained = walk = None
    if cfg.plane == "pca":  # the union of all paths (thinned), the first optimizer's last so its end is the origin
        parts = [jax.tree.map(lambda a, i=thin(len(t.loss), PCA_POINTS): a[i], t.params)
                 for t in [trajs[o] for o in cfg.optimizers[1:]] + [first]]
        path = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
        pca = planes.pca_plane(path, key=key)
        plane, explained, walk = pca.plane, np.asarray(pca.explained), np.asarray(pca.random_walk_explained)
    elif cfg.plane == "random":
        plane = planes.random_plane(problem, end, key)
    else:
        plane = planes.hessian_plane(problem, end, key)
    projections = {o: jax.tree.map(np.asarray, planes.project(plane, jax.tree.map(jnp.asarray, t.params), problem))
                   for o, t in trajs.items()}
    a, b = _grid_axes(projections, cfg.plane, cfg.grid)
    rows = []
    step = max(1, cfg.grid // 10)
    for i in range(0, cfg.grid, step):  # row blocks, for progress; same-size blocks reuse one compilation
        block = a[i:i + step]
        pad = step - len(block)
        rows.append(np.asarray(planes.plane_surface(problem, plane, np.pad(block, (0, pad), mode="edge"), b))[:len(block)])
        say("loss on the plane", min(i + step, cfg.grid), cfg.grid)
    S = np.concatenate(rows)
    ts = np.linspace(-0.25, 1.25, 61)
    start = jax.tree.map(jnp.asarray, problem.init)
    interp = {o: np.asarray(planes.interpolate(problem, start, jax.tree.map(lambda v: jnp.asarray(v[-1]), t.params), ts))
              for o, t in trajs.items()}
    meta = {"device": jax.devices()[0].platform, "versions": versions(), "num_params": problem.num_params,
            "num_examples": problem.num_examples, "task": plan.dataset.task, "sizes": list(plan.sizes)}
    return LandscapeData(plan, trajs, jax.tree.map(np.asarray, plane), explained, walk, a, b, S, projections, ts,
                         interp, meta)


def _grid_axes(projections: dict, plane: str, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes covering every projected path with a 15 % margin (and ±1 for a random plane,
    whose directions are scaled like the parameters, as in Li et al.)."""
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for p in projections.values():
        for k, v in enumerate((p.a, p.b)):
            v = v[np.isfinite(v)]
            if v.size:
                lo[k], hi[k] = min(lo[k], v.min()), max(hi[k], v.max())
    if plane == "random":
        lo, hi = np.minimum(lo, -1.0), np.maximum(hi, 1.0)
    lo, hi = np.where(np.isfinite(lo), lo, -1.0), np.where(np.isfinite(hi), hi, 1.0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - 0.15 * span, hi + 0.15 * span
    return np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)


# ----------------------------------------------------------------------------- summaries and files


def summary(data: LandscapeData) -> dict:
    """Per optimizer: lr, steps, final loss, divergence, the projection's largest gaps, the
    sharpness at the end and the largest sharpness at which the optimizer is stable on a quadratic
    (:func:`jaxgd.curvature.sharpness_limit`: 2/lr for gd; None for adaptive rules); JSON-ready."""
    cfg = data.plan.config
    out = {}
    for opt, t in data.trajectories.items():
        p = data.projections[opt]
        s = None if t.sharpness is None else t.sharpness[np.isfinite(t.sharpness)]
        d = int(t.diverged_at)
        gap = np.abs(p.loss - p.projected_loss)
        lr = cfg.lr[cfg.optimizers.index(opt)]
        out[opt] = {"lr": lr, "steps": int(t.num_steps), "final_loss": float(t.loss[-1]),
                    "diverged_at": None if d < 0 else d,
                    "max_loss_gap": float(np.nanmax(gap)) if np.isfinite(gap).any() else None,
                    "max_loss_gap_step": int(np.nanargmax(gap)) if np.isfinite(gap).any() else None,
                    "max_distance": float(np.nanmax(p.distance)) if np.isfinite(p.distance).any() else None,
                    "final_sharpness": None if s is None or not s.size else float(s[-1]),
                    "stability_limit": sharpness_limit(opt, lr)}
    return out


def results(data: LandscapeData) -> dict:
    cfg = data.plan.config
    return {"config": dataclasses.asdict(cfg) | {"optimizers": list(cfg.optimizers), "lr": list(cfg.lr)},
            "meta": data.meta,
            "plane": {"kind": cfg.plane, "explained": data.explained, "random_walk_explained": data.random_walk_explained,
                      "a_range": [data.a[0], data.a[-1]], "b_range": [data.b[0], data.b[-1]]},
            "runs": summary(data)}


def npz_arrays(data: LandscapeData) -> dict:
    arrays = {"a": data.a, "b": data.b, "surface": data.surface, "t": data.t}
    for opt, t in data.trajectories.items():
        p = data.projections[opt]
        arrays |= {f"{opt}/loss": t.loss, f"{opt}/batch_loss": t.batch_loss, f"{opt}/plane_a": p.a,
                   f"{opt}/plane_b": p.b, f"{opt}/projected_loss": p.projected_loss, f"{opt}/distance": p.distance,
                   f"{opt}/interpolation": data.interpolation[opt]}
        if t.sharpness is not None:
            arrays[f"{opt}/sharpness"] = t.sharpness
    return arrays


def _num(v, spec=".4g") -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def _largest_gap(data: LandscapeData, opt: str, row: dict) -> str:
    """The page's sentence on the largest gap between a path's true loss and its projection's."""
    k = row["max_loss_gap_step"]
    if k is None:
        return "No finite point to compare."
    p = data.projections[opt]
    return (f"Largest gap: {html.escape(opt)} at step {k}, where the true loss is {_num(p.loss[k])} and the loss at "
            f"its projection {_num(p.projected_loss[k])} (a gap of {_num(row['max_loss_gap'])}); that point is "
            f"{_num(p.distance[k], '.3g')} from the plane.")


def page(data: LandscapeData, pack_dir=None) -> str:
    """The self-contained page (:func:`jaxgd.app.shell.figures_page`): ``landscape.html`` filled in,
    and the figures of :func:`jaxgd.app.plots.landscape_figs.figures`."""
    cfg, meta, ds, v = data.plan.config, data.meta, data.plan.dataset, data.meta["versions"]
    figs = landscape_figs.figures(data)
    summ = summary(data)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            opt, _num(r["lr"]), r["steps"], _num(r["final_loss"]), "no" if r["diverged_at"] is None else
            f"at step {r['diverged_at']}", _num(r["max_loss_gap"]), _num(r["max_distance"]),
            _num(r["final_sharpness"]), _num(r["stability_limit"]))) + "</tr>" for opt, r in summ.items())
    worst = max(summ.items(), key=lambda kv: -1 if kv[1]["max_loss_gap"] is None else kv[1]["max_loss_gap"])
    pct = {} if data.explained is None else {k: f"{100 * x:.1f}" for k, x in zip(
        ("pc1", "pc2", "rw1", "rw2"), (*data.explained, *data.random_walk_explained))}
    values = {"sharpness": {"every": cfg.sharpness_every}, "gaps": {"gap": _largest_gap(data, *worst)},
              "variance": pct}
    what = (f"{html.escape(cfg.model)} ({' → '.join(map(str, meta['sizes']))}, {meta['num_params']:,} parameters, "
            f"{cfg.activation}) on {html.escape(ds.name)}: {meta['num_examples']} examples, {ds.task} "
            f"({'softmax cross-entropy' if ds.task == 'classification' else 'squared error'}).")
    body = fill("landscape.html", what=what, epochs=cfg.epochs,
                batch="full batch" if cfg.batch_size is None else f"batches of {cfg.batch_size}",
                lrs=", ".join(f"{o} {lr:g}" for o, lr in zip(cfg.optimizers, cfg.lr)),
                first=html.escape(cfg.optimizers[0]), plane=html.escape(fill("landscape.html", f"plane-{cfg.plane}")), dtype=cfg.dtype,
                device=meta["device"], v_jaxgd=v["jaxgd"], v_jax=v["jax"], v_optax=v["optax"], rows=rows,
                sections="\n".join(fill("landscape.html", k, **values.get(k, {})) for k in figs))
    return figures_page("jaxgd landscape", body, figs, pack_dir)


FILES = ("landscape.json", "landscape.npz", "landscape.html")  # and landscape-NAME.png with png


def write(data: LandscapeData, out: str | os.PathLike, png: bool = True, pack_dir=None) -> list[Path]:
    """Write landscape.json, landscape.npz, landscape.html and (``png``) the PNGs into ``out``, as one
    set (:func:`jaxgd.app.files.write_all`: every target checked first, the old set kept on a failure)."""
    writers = {"landscape.json": jio.text_writer(jio.dumps(results(data), indent=1) + "\n"),
               "landscape.npz": jio.npz_writer(lambda: npz_arrays(data)),
               "landscape.html": jio.text_writer(page(data, pack_dir))}
    if png:
        for name, fig in landscape_figs.mpl_figures(data).items():
            writers[f"landscape-{name}.png"] = lambda path, fig=fig: fig.savefig(path, dpi=100, format="png")
    return jio.write_all(out, writers)
