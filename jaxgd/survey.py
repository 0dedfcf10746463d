"""The loss landscape of any problem around its optimizers' paths: :func:`landscape`.

One call trains the runs (or takes their trajectories), picks a plane through parameter space
(PCA of the paths, filter-normalised random directions, or the top two Hessian eigenvectors),
evaluates the loss on the plane's grid, projects every path onto it (with its distance off the
plane), interpolates from each start to each end, and keeps the sharpness curves with each
optimizer's stability limit. :class:`Landscape` holds it all as NumPy arrays; its ``figures()``
(:mod:`jaxgd.plots`) and ``write(folder)`` (the command's page, :mod:`jaxgd.app.landscape_page`) reach
the layers above the library when called, and need the ``app`` extra.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks, budget, planes, runs as _runs
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.curvature import sharpness_limit
from jaxgd.engine import Trajectory
from jaxgd.problems import Problem, loss_of

PLANES = ("pca", "random", "hessian")
PCA_POINTS = 300  # points of each path in the PCA of the paths
SHARPNESS_EVERY = 10  # runs given as settings measure the sharpness every this many steps unless told
INTERPOLATION = np.linspace(-0.25, 1.25, 61)  # t of the segment start -> end, a quarter beyond each side
_RUN_ARGS = frozenset(inspect.signature(_runs.check_run_args).parameters) - {"problem", "hyper"}


@dataclasses.dataclass(frozen=True, eq=False)
class Landscape:
    """What :func:`landscape` computed, as NumPy arrays; ``R`` runs keyed by name, ``T+1`` points each.

    ``S[i, j] = loss(origin + a[i]·d1 + b[j]·d2)``: rows follow ``d1`` (plotly takes ``z=S.T``).
    """

    name: str  # the model's label on the page (given, the problem's name, or :func:`describe`)
    model: str  # :func:`describe` of the parameters: layer sizes or leaf shapes, and the count
    what: str  # the page's sentence on the model and its data (plain text)
    problem: Problem
    trajectories: dict  # name -> Trajectory (NumPy leaves)
    settings: dict  # name -> the run's settings, JSON-ready (None for a trajectory given)
    limits: dict  # name -> largest stable sharpness on a quadratic (2/lr for gd; of P⁻¹H where preconditioned), or None
    plane_kind: str  # "pca", "random" or "hessian"
    plane: planes.Plane  # through the end of the first run that did not diverge (the first run if all did)
    explained: np.ndarray | None  # (2,) PCA variance ratios of d1, d2 (pca plane), else None
    random_walk_explained: np.ndarray | None  # (2,) the same for a random walk of the stacked paths' shape
    a: np.ndarray  # (A,) grid along d1
    b: np.ndarray  # (B,) grid along d2
    surface: np.ndarray  # (A, B)
    projections: dict  # name -> jaxgd.planes.Projection of (T+1,) arrays: a, b, loss, projected_loss, distance
    t: np.ndarray  # (K,) interpolation parameters, 0 the start and 1 the end
    interpolation: dict  # name -> (K,) loss((1 − t)·start + t·end) of that run
    config: dict  # the settings, JSON-ready (landscape.json's "config")
    meta: dict  # device, num_params, num_examples, ... (landscape.json's "meta")
    left_out: dict = dataclasses.field(default_factory=dict)  # name -> step a run diverged at: its points from
    # there on are not in the plane (the PCA, the origin), so a diverged path never poisons the others

    def gaps(self) -> dict:
        """Per run, ``(T+1,)`` ``|loss − projected loss|``: what the projection hides."""
        return {k: np.abs(p.loss - p.projected_loss) for k, p in self.projections.items()}

    def summary(self) -> dict:
        """Per run, JSON-ready: lr, steps, final loss, divergence, the largest gap to the projection
        and its step, the largest distance from the plane, the last sharpness measured and the
        stability limit (:attr:`limits`)."""
        out, gaps = {}, self.gaps()
        for name, t in self.trajectories.items():
            p, gap = self.projections[name], gaps[name]
            d = int(t.diverged_at)
            s = None if t.sharpness is None else t.sharpness[:None if d < 0 else d]  # none measured past divergence
            s = None if s is None else s[np.isfinite(s)]
            seen = np.isfinite(gap).any()
            out[name] = {"lr": (self.settings[name] or {}).get("lr"), "steps": int(t.num_steps),
                         "final_loss": float(t.loss[-1]), "diverged_at": None if d < 0 else d,
                         "max_loss_gap": float(np.nanmax(gap)) if seen else None,
                         "max_loss_gap_step": int(np.nanargmax(gap)) if seen else None,
                         "max_distance": float(np.nanmax(p.distance)) if np.isfinite(p.distance).any() else None,
                         "final_sharpness": None if s is None or not s.size else float(s[-1]),
                         "stability_limit": self.limits[name]}
        return out

    def document(self) -> dict:
        """``landscape.json``'s content (``write`` adds the versions to ``meta``)."""
        return {"config": self.config, "meta": self.meta,
                "plane": {"kind": self.plane_kind, "explained": self.explained, "left_out": self.left_out,
                          "random_walk_explained": self.random_walk_explained,
                          "a_range": [self.a[0], self.a[-1]], "b_range": [self.b[0], self.b[-1]]},
                "runs": self.summary()}

    def arrays(self) -> dict:
        """``landscape.npz``'s arrays: the grid, and per run ``NAME/loss``, ``/batch_loss``,
        ``/plane_a``, ``/plane_b``, ``/projected_loss``, ``/distance``, ``/interpolation`` (and
        ``/sharpness`` where measured)."""
        out = {"a": self.a, "b": self.b, "surface": self.surface, "t": self.t}
        for name, t in self.trajectories.items():
            p = self.projections[name]
            out |= {f"{name}/loss": t.loss, f"{name}/batch_loss": t.batch_loss, f"{name}/plane_a": p.a,
                    f"{name}/plane_b": p.b, f"{name}/projected_loss": p.projected_loss, f"{name}/distance": p.distance,
                    f"{name}/interpolation": self.interpolation[name]}
            if t.sharpness is not None:
                out[f"{name}/sharpness"] = t.sharpness
        return out

    def figures(self) -> dict:
        """The page's plotly figures by id (:func:`jaxgd.plots.landscape_figures`; needs the app extra)."""
        return importlib.import_module("jaxgd.plots").landscape_figures(self)  # a lazy reach up (test_layout.LAZY)

    def write(self, folder, png: bool = True) -> list:
        """Write ``landscape.html`` (offline), ``landscape.json``, ``landscape.npz`` and (``png``) the
        PNGs into ``folder``, as ``jaxgd landscape`` does (:func:`jaxgd.app.landscape_page.write`; needs the app
        extra); the paths written."""
        return importlib.import_module("jaxgd.app.landscape_page").write(self, folder, png=png)  # a lazy reach up



def describe(params, neuron_axis=None) -> str:
    """A model's label from its parameters: ``"64-16-10 MLP · 1,210 parameters"`` when the 2-D
    leaves, in tree order, chain as dense layers (``(out, in)``, or ``(in, out)`` with
    ``neuron_axis=-1``) and every other leaf is a bias of a layer's width; else the leaf shapes
    (the first six) and the count, e.g. ``"3 arrays (8×3×3, 8, 10) · 90 parameters"``."""
    shapes = [tuple(np.shape(v)) for v in jax.tree.leaves(params)]
    count = f"{sum(math.prod(s) for s in shapes):,} parameters"
    weights = [s for s in shapes if len(s) == 2]
    for w in ([weights, [s[::-1] for s in weights]][::-1 if neuron_axis == -1 else 1]):  # (out, in) first
        widths = {s[0] for s in w}
        if w and all(p[0] == q[1] for p, q in zip(w, w[1:])) and all(
                len(s) == 2 or (len(s) == 1 and s[0] in widths) for s in shapes):
            return f"{'-'.join(map(str, [w[0][1], *(s[0] for s in w)]))} {'MLP' if len(w) > 1 else 'linear model'} · {count}"
    shown = ", ".join("×".join(map(str, s)) or "scalar" for s in shapes[:6]) + (", …" if len(shapes) > 6 else "")
    return f"{len(shapes)} array{'s' if len(shapes) != 1 else ''} ({shown}) · {count}"


def memory_needed(num_params: int, num_examples: int | None, grid: int, steps=(), *, per_example: int = 4,
                  lanczos: int = 0, itemsize: int = 8) -> tuple[int, int]:
    """Bytes a landscape of ``n = num_params`` parameters on ``m = num_examples`` examples holds at
    its peak, roughly, as ``(training, grid)``; ``steps`` the runs' step counts (none: the model alone).

    Both hold the runs' recorded trajectories (every point and each step's two moments,
    ``(T+1)·(3n + 8)`` numbers a run, as :func:`jaxgd.runs.check_steps` counts them). Training adds
    the larger of its working set — parameters, gradient, two moments and ``lanczos + 1`` Lanczos
    vectors, ``(5 + lanczos)·n``, and the data's activations forward and backward,
    ``3·m·per_example`` — and the PCA's (each path's points stacked, centred and decomposed,
    ``3·min(T+1, PCA_POINTS)·n`` a run). The grid adds the surface (``grid²``), the plane (``3n``)
    and one block of ``P`` = :func:`jaxgd.planes.batch_points` points, their parameters and
    activations (``P·(n + 2·m·per_example)``). ``per_example``: numbers the loss holds per example
    (an MLP's layer widths; 4 when unknown); ``itemsize``: bytes a number."""
    n, m = max(int(num_params), 1), max(int(num_examples or 1), 1)
    kept = sum((t + 1) * (3 * n + 8) for t in steps)
    train = max((5 + lanczos) * n + 3 * m * per_example, 3 * n * sum(min(t + 1, PCA_POINTS) for t in steps))
    points = planes.batch_points(grid * grid, n)
    surface = grid * grid + 3 * n + points * (n + 2 * m * per_example)
    return itemsize * (kept + train), itemsize * (kept + surface)


def check_memory(num_params: int, num_examples: int | None, grid: int, steps=(), *, per_example: int = 4,
                 lanczos: int = 0, itemsize: int = 8, names=("problem", "runs")) -> None:
    """Refuse a landscape that would not fit in half the available memory (:func:`memory_needed`,
    :func:`jaxgd._checks.check_fits`) with the estimate, in an :class:`ArgumentError` named
    ``names[0]`` (what gave the model) where the model alone does not fit, else ``names[1]``
    (what set the steps) — or ``"grid"`` where the grid's stage needs the most."""
    for s, name in (((), names[0]), (tuple(steps), names[1])):
        need = memory_needed(num_params, num_examples, grid, s, per_example=per_example, lanczos=lanczos,
                             itemsize=itemsize)
        runs = "" if not s else f", {len(s)} run{'s' if len(s) > 1 else ''} of {max(s):,} steps"
        _checks.check_fits("grid" if need[1] > need[0] else name, max(need),
                           f"{num_params:,} parameters on {num_examples or 0:,} examples{runs} and a {grid}² grid")


def check_grid(problem: Problem, grid, steps=(), lanczos: int = 0) -> int:
    """``grid`` an integer ≥ 2 whose landscape fits in memory with runs of ``steps``
    (:func:`check_memory`, the model named ``"problem"``)."""
    grid = _checks.check_int("grid", grid, 2)
    check_memory(problem.num_params, problem.num_examples, grid, steps, lanczos=lanczos,
                 itemsize=np.dtype(problem.dtype).itemsize)
    return grid


HOUR = budget.HOUR  # the command asks for --yes past this much estimated work
BLOCK_FLOPS = 1e9  # a block of a run's steps or of the grid is about this much work (~0.1-1 s on a CPU core), a
# signal acted on between blocks; sized from the problem alone, so a landscape's numbers never depend on timing
LANCZOS_GUESS = 10  # Hessian-vector products a sharpness measurement is counted at (warm-started: usually 1-5)


def probe(problem: Problem) -> float:
    """Seconds one full-data gradient of ``problem`` takes here at its ``init``
    (:func:`jaxgd.budget.probe` of one lane: a compiled scan of gradient steps, timed)."""
    return budget.probe(problem)


def seconds_needed(grad_seconds: float, runs, grid: int) -> dict:
    """Seconds of work, roughly, from the cost of one full-data gradient (:func:`probe`):
    ``{"training": ..., "grid": ...}``. A run (a :class:`jaxgd.runs.RunConfig`) costs per step
    the gradient of its batch (``batch/m`` of one) and per sharpness measurement
    :data:`LANCZOS_GUESS` Hessian-vector products (two gradients each); the grid's ``grid²``
    points a full-data loss each (a third of a gradient), and the interpolations 61 per run."""
    train = 0.0
    for rc in runs:
        m = rc.problem.num_examples or 1
        train += rc.steps * min(1.0, (rc.batch_size or m) / m)
        if rc.sharpness:
            train += (rc.steps // rc.sharpness[0] + 1) * 2 * min(LANCZOS_GUESS, rc.sharpness[1])
    points = grid * grid + len(INTERPOLATION) * len(runs)
    return {"training": grad_seconds * train, "grid": grad_seconds * points / 3}


say_seconds = budget.say_seconds  # "40 s", "12 min", "3.5 h"


def check_seconds(grad_seconds: float, runs, grid: int, *, go_on: bool = False, how: str = "pass go_on=True",
                  names=("runs", "grid")) -> str | None:
    """Refuse a landscape estimated (:func:`seconds_needed`) at more than :data:`HOUR` of work unless
    ``go_on``: an :class:`ArgumentError` named ``names[1]`` where the grid is most of it, else ``names[0]``,
    with the estimate and ``how`` to go on. Returns the estimate's words when past the hour, else None."""
    need, say = seconds_needed(grad_seconds, runs, grid), say_seconds
    if sum(need.values()) <= HOUR:
        return None
    work = (f"about {say(sum(need.values()))} of work (training {say(need['training'])}, the grid {say(need['grid'])}; "
            f"a full-data gradient took {grad_seconds:.2g} s here)")
    if not go_on:
        raise ArgumentError(names[1] if need["grid"] > need["training"] else names[0],
                            f"asks for {work}: past an hour, {how}")
    return work


def _blocks(problem: Problem, per_item: float, most: int) -> int:
    """Items a block holds, in ``[1, most]``: about :data:`BLOCK_FLOPS` at ``per_item`` full-data
    gradients an item, a gradient counted as ``6·n·m`` flops (forward and backward of ``n`` parameters on ``m`` examples)."""
    flops = 6 * problem.num_params * (problem.num_examples or 1) * per_item
    return int(min(max(1, most), max(1, BLOCK_FLOPS // max(flops, 1))))


def check_paths(plane: str, steps) -> None:
    """Refuse a ``"pca"`` plane through runs of ``steps`` with fewer than 3 points in all (an
    :class:`ArgumentError` named ``"plane"``): two points span no plane."""
    if plane == "pca" and sum(t + 1 for t in steps) < 3:
        raise ArgumentError("plane", f"'pca' needs at least 3 points on the paths in all; {len(steps)} run(s) of "
                                     f"{max(steps, default=0)} step(s) have {sum(t + 1 for t in steps)}: train longer, "
                                     "add a run, or choose the 'random' or 'hessian' plane")


def _json_ready(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (np.generic, np.ndarray)) and np.ndim(v) == 0:
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_json_ready(x) for x in v]
    return getattr(v, "__qualname__", None) or repr(v)


def _checked_run(problem: Problem, name: str, run) -> _runs.RunConfig:
    """A run's settings as a checked :class:`jaxgd.runs.RunConfig`; sharpness every
    :data:`SHARPNESS_EVERY` steps unless the settings say."""
    if isinstance(run, _runs.RunConfig):
        return run
    run = {"optimizer": name} | run if isinstance(run, dict) else {"optimizer": run}
    kw = {"sharpness_every": SHARPNESS_EVERY} | {k: v for k, v in run.items() if k in _RUN_ARGS}
    hyper = {k: v for k, v in run.items() if k not in _RUN_ARGS}
    return _runs.check_run_args(problem, hyper=hyper, **kw)


def _settings(rc: _runs.RunConfig) -> dict:
    lr = rc.spec.hyper.get("lr")
    of = {"sharpness_of": rc.sharpness_of} if rc.sharpness and rc.sharpness_of != "hessian" else {}
    return {"optimizer": _json_ready(rc.optimizer), "lr": None if lr is None else float(lr), "epochs": rc.epochs,
            "batch_size": rc.batch_size, "seed": rc.seed, "sharpness_every": rc.sharpness[0] if rc.sharpness else 0} | of


def _limit(rc: _runs.RunConfig | None) -> float | None:
    lr = None if rc is None else rc.spec.hyper.get("lr")
    if lr is None or not isinstance(rc.optimizer, str):
        return None
    return sharpness_limit(rc.optimizer, float(lr), **{k: float(rc.spec.hyper[k]) for k in ("beta", "b1") if k in rc.spec.hyper},
                           preconditioned=rc.sharpness_of == "preconditioned")


def _named(runs) -> dict:
    """``runs`` as a dict name -> run; a list names each run by its optimizer, else ``run i``."""
    if isinstance(runs, dict):
        named = {str(k): v for k, v in runs.items()}
    elif isinstance(runs, (list, tuple)) and not isinstance(runs, Trajectory):
        def name(i, r):
            opt = r.get("optimizer") if isinstance(r, dict) else r.optimizer if isinstance(r, _runs.RunConfig) else r
            return opt if isinstance(opt, str) else f"run {i}"
        names = [name(i, r) for i, r in enumerate(runs)]
        if len(set(names)) != len(names):
            raise ArgumentError("runs", f"has runs of one name ({', '.join(names)}): pass a dict name -> run")
        named = dict(zip(names, runs))
    else:
        return _named([runs])
    if not named:
        raise ArgumentError("runs", "must hold at least one run")
    return named


def _trajectory(problem: Problem, name: str, t: Trajectory) -> Trajectory:
    if np.ndim(t.diverged_at) != 0:
        raise ArgumentError("runs", f"{name!r} is a sweep's trajectory: pass its runs one by one (jaxgd.runs.split)")
    if jax.tree.structure(t.params) != jax.tree.structure(problem.init):
        raise ArgumentError("runs", f"{name!r} has parameters of another tree than the problem's")
    return jax.tree.map(np.asarray, t)


def landscape(problem: Problem, runs, plane: str = "pca", grid: int = 51, span="auto", *, key=None,
              name: str | None = None, callback=None, go_on: bool = False) -> Landscape:
    """The loss landscape of ``problem`` on a plane through its runs' paths.

    Args:
      problem: a :class:`jaxgd.Problem` (e.g. :func:`jaxgd.model_problem`).
      runs: a dict name -> run, or a list (named by optimizer, else ``run i``), or one run. A run is
        a :class:`jaxgd.Trajectory` (one run's, of this problem), or settings that this call runs
        with the sharpness measured inside the scan: an optimizer (a name, a factory, a
        transformation), a dict of :func:`jaxgd.run` keywords (``{"optimizer": "gd", "lr": 0.5,
        "epochs": 100}``; the optimizer defaults to the run's name, hyperparameters go by name,
        ``sharpness_every`` defaults to :data:`SHARPNESS_EVERY`), or a checked ``jaxgd.runs.RunConfig``.
      plane: ``"pca"`` — the top two principal directions of every path (:func:`jaxgd.pca_plane`,
        each path thinned to :data:`PCA_POINTS`), through the first run's end; ``"random"`` —
        filter-normalised Gaussian directions (:func:`jaxgd.random_plane`, the problem's neuron
        axis) at the first run's end; ``"hessian"`` — the top two Hessian eigenvectors there.
        A run that diverged is left out of the plane from the step it diverged at (its earlier
        points stay in the PCA; ``left_out`` names it), and "the first run" is the first that did not.
      grid: points along each axis (≥ 2; refused when the surface would not fit in memory).
      span: ``"auto"`` covers every projected path and the problem's known minima with a margin of
        :data:`jaxgd.planes.AUTO_MARGIN` (15 %) of their range on each side, and on a random plane
        at least ``[-1, 1]`` (its directions are scaled like the parameters); a number ``s`` gives
        ``[-s, s]`` along both directions; a pair ``((a0, a1), (b0, b1))`` gives those ranges.
      key: for the plane's random draws (default ``jax.random.key(0)``).
      name: the model's label on the page (default: the problem's name, or :func:`describe` of its
        parameters for an unnamed ``model_problem``).
      callback: ``callback(stage, done, total)`` as the runs and the grid advance.
      go_on: go on with work estimated past :data:`HOUR` (:func:`check_seconds`, measured by
        :func:`probe` only where a lower bound from the flops passes a minute), else refused.

    The interpolation goes from each run's start to its end, ``t`` = :data:`INTERPOLATION`. The
    runs go in chunks of at most a twentieth of their steps and the grid in blocks of at most a
    tenth of its rows, each about :data:`BLOCK_FLOPS` at most, between which Python acts on a signal.
    Returns a :class:`Landscape`.
    """
    if not isinstance(problem, Problem):
        raise ArgumentTypeError("problem", f"must be a jaxgd.Problem, got {type(problem).__name__}")
    plane = _checks.check_choice("plane", plane, PLANES)
    grid = check_grid(problem, grid)
    if name is not None and not isinstance(name, str):
        raise ArgumentTypeError("name", f"must be a string, got {type(name).__name__}")
    if callback is not None and not callable(callback):
        raise ArgumentTypeError("callback", f"must be a function (stage, done, total), got {callback!r}")
    planes.grid_axes([], 2, span)  # checks the span before anything runs
    say = callback or (lambda *a: None)
    named = _named(runs)
    configs = {k: None if isinstance(r, Trajectory) else _checked_run(problem, k, r) for k, r in named.items()}
    steps = [np.shape(r.loss)[-1] - 1 if rc is None else rc.steps for rc, r in zip(configs.values(), named.values())]
    check_paths(plane, steps)
    check_grid(problem, grid, steps, max([rc.sharpness[1] for rc in configs.values() if rc and rc.sharpness], default=0))
    trained = [rc for rc in configs.values() if rc is not None]
    if not go_on and sum(seconds_needed(budget.optimistic(problem, [(1, 1, None)]), trained, grid).values()) > budget.MINUTE:
        check_seconds(probe(problem), trained, grid, go_on=go_on)  # before any compiling of the runs or the grid
    trajs = {}
    for k, r in named.items():
        rc = configs[k]
        if rc is None:
            trajs[k] = _trajectory(problem, k, r)
            continue
        cb = lambda done, total, k=k: say(f"training {k}", done, total)
        chunk = _blocks(problem, seconds_needed(1.0, [rc], 0)["training"] / rc.steps, rc.steps // 20)
        trajs[k] = jax.tree.map(np.asarray, _runs.run_checked(rc, chunk=chunk, callback=cb))
    # a diverged run's points from the step it diverged at on are left out of the plane (PCA and origin)
    cut = {k: int(t.diverged_at) for k, t in trajs.items() if int(t.diverged_at) >= 0}
    kept = {k: jax.tree.map(lambda v, d=cut.get(k): v[:d], t.params) for k, t in trajs.items() if cut.get(k) != 0}
    order = sorted(kept, key=lambda k: k in cut)  # the origin: the first run that did not diverge, if one did not
    if not kept or plane == "pca" and sum(len(jax.tree.leaves(p)[0]) for p in kept.values()) < 3:
        raise ArgumentError("runs", f"diverged ({', '.join(f'{k} at step {d}' for k, d in cut.items())}): the "
                                    "points before that are too few for a 'pca' plane; lower the lr or choose "
                                    "the 'random' or 'hessian' plane")
    end = jax.tree.map(lambda v: jnp.asarray(v[-1]), kept[order[0]])
    key = jax.random.key(0) if key is None else key
    explained = walk = None
    if plane == "pca":
        pca = planes.pca_plane(*(kept[k] for k in order), key=key, max_points=PCA_POINTS)
        the_plane, explained, walk = pca.plane, np.asarray(pca.explained), np.asarray(pca.random_walk_explained)
    elif plane == "random":
        the_plane = planes.random_plane(problem, end, key)
    else:
        the_plane = planes.hessian_plane(problem, end, key)
    projections = {k: jax.tree.map(np.asarray, planes.project(the_plane, jax.tree.map(jnp.asarray, t.params), problem))
                   for k, t in trajs.items()}
    minima = [] if not problem.minima else [planes.project(the_plane, jax.tree.map(
        lambda *v: jnp.stack(v), *problem.minima), problem)]
    a, b = planes.grid_axes([*projections.values(), *minima], grid, span, at_least=1.0 if plane == "random" else 0.0)
    S = _surface(problem, the_plane, a, b, say, _blocks(problem, 1 / 3, grid * max(1, grid // 10)))
    ends = {k: [jax.tree.map(lambda v: jnp.asarray(v[i]), t.params) for i in (0, -1)] for k, t in trajs.items()}
    interp = {k: _in_blocks(partial(planes.interpolate, problem, *ends[k]), INTERPOLATION,
                            _blocks(problem, 1 / 3, len(INTERPOLATION))) for k in trajs}
    model = describe(problem.init, problem.neuron_axis)
    label = name or (problem.name if problem.name not in ("", "model") else model)
    m = problem.num_examples
    what = (f"{label}: {model}" if label != model else model) + ("" if m is None else f"; {m:,} examples") + "."
    settings = {k: None if rc is None else _settings(rc) for k, rc in configs.items()}
    config = {"name": label, "plane": plane, "grid": grid, "span": _json_ready(span), "runs": settings}
    meta = {"device": jax.devices()[0].platform, "num_params": problem.num_params, "num_examples": m,
            "model": model, "dtype": str(problem.dtype)}
    return Landscape(label, model, what, problem, trajs, settings, {k: _limit(rc) for k, rc in configs.items()},
                     plane, jax.tree.map(np.asarray, the_plane), explained, walk, a, b, S, projections,
                     INTERPOLATION.copy(), interp, config, meta, cut)


def _in_blocks(fn, xs: np.ndarray, k: int) -> np.ndarray:
    """``fn(xs)`` in pieces of ``k`` values of ``xs`` (the last padded: one compilation), joined."""
    pieces = [xs[i:i + k] for i in range(0, len(xs), k)]
    return np.concatenate([np.asarray(fn(np.pad(p, (0, k - len(p)), mode="edge")))[:len(p)] for p in pieces])


def _surface(problem: Problem, plane: planes.Plane, a: np.ndarray, b: np.ndarray, say, points: int) -> np.ndarray:
    """:func:`jaxgd.plane_surface` in blocks of about ``points`` points: whole rows, or pieces of a
    row where one row is more (the last block padded so every block reuses one compilation)."""
    rows, cols = max(1, points // len(b)), min(points, len(b))
    f, out = loss_of(problem), []
    planes._check_plane(plane)  # once, not at every block
    for i in range(0, len(a), rows):
        block, row = a[i:i + rows], []
        for j in range(0, len(b), cols):
            piece = b[j:j + cols]
            S = planes.checked_surface(f, plane, np.pad(block, (0, rows - len(block)), mode="edge"),
                                       np.pad(piece, (0, cols - len(piece)), mode="edge"))
            row.append(np.asarray(S)[:len(block), :len(piece)])
        out.append(np.concatenate(row, axis=1))
        say("loss on the plane", min(i + rows, len(a)), len(a))
    return np.concatenate(out)
