"""A fair comparison of optimizers over a suite of tasks: :func:`compare`.

For each task, every optimizer runs a full grid of learning rate (log-spaced) × one second
hyperparameter (momentum's β, RMSProp's ρ, Adam's and Lion's β₁; none for gd, which gets as many
learning rates instead, so every optimizer has the same number of configurations) × seeds, in
one :func:`jaxgd.sweep` per task and optimizer (cut into calls of the same shape only where the
recorded steps would not fit in memory). A seed jitters the start (``θ₀ + jitter·rms(θ₀)·z``, ``z ~ N(0, I)`` from the seed)
and draws the task's noise or sample order.

Budgets are gradient evaluations: every optimizer gets the same ``budget`` of them. A step of a
first-order optimizer costs one; a step of Newton's method costs ``1 + n`` (its Hessian charged
as ``n`` Hessian-vector products, each taken as one gradient evaluation); L-BFGS costs one per
step plus its zoom line search's trial points (each a value and gradient), which the trajectory
does not expose, so it is charged :data:`LBFGS_COST` = 2 per step: the common case of one trial,
a lower bound (from each task's start at lr 1, optax's line search took 1.0–1.3 trials per step
on eight of the suite's tasks, 12 on rastrigin and 19 on saddle). An optimizer of cost ``c`` runs
``budget // c`` steps.

Targets: a task's reference loss ``f_ref`` is its known minimum where it has one (the
landscapes, the quadratics, the notebook's least squares), else the lowest loss any run of any
optimizer reached; a run reaches the target at the first measured point where
``loss ≤ f_ref + target·(f₀ − f_ref)`` (``f₀`` the loss at the task's unjittered start): it has
closed all but a fraction ``target`` of the gap. ``saddle`` has no minimum: its target is
escape, ``loss ≤ −1``, and its final losses are floored there.

The statistics (:mod:`jaxgd.compare_stats`) all come from the same arrays: lr sensitivity
(median and quartiles over seeds), evaluations to the target with a k-of-n rule over seeds,
Dolan–Moré performance profiles of the tuned optimizers with their area to τ = 4 and bootstrap
intervals over tasks, the expected best result against the tuning budget, and ranking
stability when the lr range is shrunk or shifted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from functools import lru_cache
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxgd import _checks, compare_stats, datasets, models, optim, runs
from jaxgd import budget as _budget
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.landscapes import LANDSCAPES
from jaxgd.problems import Problem, model_problem, notebook

OPTIMIZERS = ("gd", "momentum", "nesterov", "rmsprop", "adam", "optax:lion")  # the default six
SECOND = {"momentum": "beta", "nesterov": "beta", "rmsprop": "decay", "adam": "b1", "optax:lion": "b1",
          "newton": "damping"}  # each built-in's second hyperparameter (gd and lbfgs: none)
LBFGS_COST = 2  # gradient evaluations charged per L-BFGS step: its own and one line-search trial (a lower bound)
SUITE = ("rosenbrock", "beale", "himmelblau", "rastrigin", "saddle", "ill_conditioned", "quadratic_ill",
         "quadratic_noisy", "notebook", "iris_mlp")
QUICK = ("rosenbrock", "ill_conditioned", "quadratic_noisy")
SADDLE_TARGET = -1.0  # saddle has no minimum: reaching loss -1 is escaping it
MAX_CALL_BYTES = 1 << 29  # the recorded steps of one sweep call (params, moments, losses) stay under 512 MiB


def _unit_values(n: int) -> np.ndarray:
    """``n`` values of a decay in [0.5, 0.99]: ``1 − geomspace(0.5, 0.01, n)`` (0.9 at n = 1)."""
    return np.array([0.9]) if n == 1 else 1 - np.geomspace(0.5, 0.01, n)


SECOND_VALUES = {"beta": _unit_values, "decay": _unit_values, "b1": _unit_values,
                 "damping": lambda n: np.concatenate([[0.0], np.geomspace(1e-4, 1.0, n - 1)]) if n > 1 else np.zeros(1)}


# ----------------------------------------------------------------------------- the built-in tasks


class Task(NamedTuple):
    """A task of the suite: its problem, the reference loss its target is measured from (None:
    the best loss any run reaches), and a fixed target loss (None: from ``target``)."""

    name: str
    problem: Problem
    f_ref: float | None
    fixed_target: float | None = None


QUAD_DIM = 20


def _quadratic_loss(params, batch, mask):
    """½ θᵀAθ with ``A`` the data (its rows the examples, all used: a full-batch task)."""
    (A,) = batch
    return 0.5 * params @ (A @ params)


def _noisy_quadratic_loss(params, batch, mask, key=None):
    """½ Σ h θ² (``h`` the data), plus ``σ·⟨√h·z, θ⟩`` with ``z ~ N(0, I)`` from the step's key:
    the gradient ``h·θ + σ√h·z`` is noisy, the measured loss (no key) is not (the noisy quadratic
    model of Zhang et al. 2019, σ = 0.3)."""
    (h,) = batch
    loss = 0.5 * jnp.sum(h * params**2)
    if key is None:
        return loss
    z = jax.random.normal(key, params.shape, params.dtype)
    return loss + 0.3 * jnp.sum(jnp.sqrt(h) * z * params)


@lru_cache(maxsize=None)
def _builtin(name: str, dtype_name: str) -> Task:
    dtype = np.dtype(dtype_name)
    if name in LANDSCAPES:
        p = LANDSCAPES[name]()
        if name == "saddle":
            return Task(name, p, None, SADDLE_TARGET)
        return Task(name, p, float(p.loss(p.minimum)))
    if name == "quadratic_ill":  # κ = 10³, rotated so that no coordinate is an eigenvector
        q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(QUAD_DIM, QUAD_DIM)))
        A = (q * np.geomspace(1.0, 1e3, QUAD_DIM)) @ q.T
        p = model_problem(_quadratic_loss, np.ones(QUAD_DIM, dtype) / np.sqrt(QUAD_DIM), (A,), name=name,
                          dtype=dtype, batched=True)
        return Task(name, p, 0.0)
    if name == "quadratic_noisy":
        p = model_problem(_noisy_quadratic_loss, np.ones(QUAD_DIM, dtype), (np.geomspace(1e-2, 1.0, QUAD_DIM),),
                          name=name, dtype=dtype, batched=True, takes_key=True)
        return Task(name, p, 0.0)
    if name == "notebook":
        p = notebook(dtype=dtype)
        return Task(name, p, float(p.loss(p.minimum)))
    if name == "iris_mlp":
        ds = datasets.load("iris")
        model = models.mlp((4, 16, 3), "tanh", "classification")
        p = model_problem(model.loss_per_example, model.init(jax.random.key(0), dtype=dtype), (ds.x, ds.y),
                          name=name, dtype=dtype)
        return Task(name, p, None)
    raise ArgumentError("tasks", f"must name tasks of {', '.join(map(repr, SUITE))} or be jaxgd.Problems; got {name!r}")


def _task(t) -> Task:
    if isinstance(t, str):
        return _builtin(t, np.dtype(_checks.check_dtype(None)).name)
    if isinstance(t, Problem):
        f = None if t.minimum is None else float(t.loss(t.minimum))
        return Task(t.name, runs._check_problem(t), f if f is not None and math.isfinite(f) else None)
    raise ArgumentTypeError("tasks", f"must be task names or jaxgd.Problems, got {type(t).__name__}")


# ----------------------------------------------------------------------------- optimizers and grids


class Member(NamedTuple):
    """An optimizer of the comparison: its label, what :func:`jaxgd.sweep` takes, its second
    hyperparameter's name (None: none) and values, and its cost per step in gradient evaluations."""

    label: str
    optimizer: Any
    second: str | None
    values: tuple
    cost: int


def _label(o) -> str:
    if isinstance(o, str):
        return o
    name = getattr(o, "__qualname__", type(o).__name__)
    return name.split(".")[-1]


def _cost(o, problem: Problem) -> int:
    """Gradient evaluations per step (see the module's docstring); a factory of the user's: 1."""
    if o == "newton":
        return 1 + problem.num_params
    if o == "lbfgs":
        return LBFGS_COST
    return 1


def _members(optimizers, second, num_second: int, problem: Problem) -> list[Member]:
    if optimizers is None:
        optimizers = OPTIMIZERS
    if isinstance(optimizers, str) or optim.is_custom(optimizers):
        optimizers = (optimizers,)
    pairs = list(optimizers.items()) if isinstance(optimizers, dict) else [(_label(o), o) for o in optimizers]
    if not pairs:
        raise ArgumentError("optimizers", "must name at least one optimizer, got none")
    labels = [k for k, _ in pairs]
    if len(set(labels)) != len(labels):
        raise ArgumentError("optimizers", f"must have distinct names, got {labels}")
    second = dict(second or {})
    unknown = sorted(set(second) - set(labels))
    if unknown:
        raise ArgumentError("second", f"names no optimizer of the comparison: {unknown[0]!r} (they are {labels})")
    out = []
    for label, o in pairs:
        if isinstance(o, str):
            optim.resolve(o, 1.0, {})  # the error for an unknown name
        name = second.get(label, SECOND.get(o) if isinstance(o, str) else None)
        if isinstance(name, tuple):
            name, values = name
            values = tuple(float(v) for v in _checks.check_array(f"second[{label!r}]", values).reshape(-1))
        elif name is not None:
            if name not in SECOND_VALUES:
                raise ArgumentError("second", f"{label!r}: give ({name!r}, values): jaxgd has no default values "
                                              f"for {name!r}")
            values = tuple(float(v) for v in SECOND_VALUES[name](num_second))
        else:
            values = ()
        if name is not None:
            for v in values:  # the hyperparameter exists and its values are in range
                optim.resolve(o, 1.0, {name: v})
        out.append(Member(label, o, name, values, _cost(o, problem)))
    return out


class Grid(NamedTuple):
    """The configurations of one optimizer: ``lr (C,)`` and ``second (C,)`` (NaN for none)."""

    lr: np.ndarray
    second: np.ndarray


def grid(member: Member, lr_range: tuple, num_lrs: int, num_second: int) -> Grid:
    """lr log-spaced over ``lr_range`` × the second hyperparameter's values, lr fastest; an
    optimizer without one gets ``num_lrs · num_second`` learning rates over the same range."""
    lo, hi = lr_range
    if member.second is None:
        return Grid(np.geomspace(lo, hi, num_lrs * num_second), np.full(num_lrs * num_second, np.nan))
    lr, s = np.meshgrid(np.geomspace(lo, hi, num_lrs), np.asarray(member.values), indexing="xy")
    return Grid(lr.reshape(-1), s.reshape(-1))


# ----------------------------------------------------------------------------- the runs


def _starts(problem: Problem, seeds: np.ndarray, jitter: float) -> list:
    """Each seed's start, ``θ₀ + jitter·rms(θ₀)·z`` (rms over all the parameters, 1 where θ₀ is zero;
    ``z`` standard normal from ``fold_in(key(2026), seed)``), as the leaves of ``problem.init`` with
    a leading axis of seeds ``(S, *leaf)``."""
    flat, unravel = ravel_pytree(problem.init)
    flat = np.asarray(flat, np.float64)
    scale = float(np.sqrt(np.mean(flat**2))) or 1.0
    z = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(2026), int(s)), flat.shape))
                  for s in seeds]).astype(np.float64)
    points = [jax.tree.leaves(unravel(jnp.asarray(p, problem.dtype))) for p in flat + jitter * scale * z]
    return [np.stack([np.asarray(leaves[i]) for leaves in points]) for i in range(len(points[0]))]


class TaskRuns(NamedTuple):
    """One task's runs: per optimizer ``final (C, S)`` and ``curves (C, S, M)`` (the full-data loss at
    its measured steps; +inf from a divergence on), the gradient evaluations at those steps
    ``evals (M,)``; ``f0`` the loss at the task's start; the seconds and the sweep calls it took."""

    final: dict
    curves: dict
    evals: dict
    f0: float
    seconds: float
    calls: int


def _measured(members, budget: int, points: int):
    """``loss_every`` from the most steps: every step up to ``points`` steps (so that the times to
    target are exact, not rounded up to a measured step), else about ``points`` measured points."""
    most = max(budget // m.cost for m in members)
    return max(1, most // points)


def run_task(task: Task, members: list[Member], grids: dict, seeds: np.ndarray, budget: int, jitter: float,
             points: int = 1000) -> TaskRuns:
    """Run every optimizer's grid × seeds on ``task``, each optimizer in one :func:`jaxgd.sweep` (cut
    into calls of equal shape, one program, only where its records would exceed
    :data:`MAX_CALL_BYTES`). One call per optimizer rather than one union of them all: a union
    computes every member's update on every run, 2–3× the CPU time of separate calls here."""
    p = task.problem
    t0 = time.perf_counter()
    S = len(seeds)
    starts = _starts(p, seeds, jitter)
    every = _measured(members, budget, points)
    final, curves, evals, calls = {}, {}, {}, 0
    for m in members:
        g = grids[m.label]
        C, T = len(g.lr), budget // m.cost
        R = C * S
        lr, seed = np.repeat(g.lr, S), np.tile(seeds, C)
        hyper = {} if m.second is None else {m.second: np.repeat(g.second, S)}
        inits = [np.tile(a, (C,) + (1,) * (a.ndim - 1)) for a in starts]
        per_run = 8 * (T + 1) * (3 * p.num_params + 8)
        n_calls = -(-R // max(1, min(R, MAX_CALL_BYTES // per_run)))
        chunk = -(-R // n_calls)  # equal shapes: one program for every call
        loss = np.empty((R, T + 1))
        for c in range(n_calls):
            own = np.arange(c * chunk, min(R, (c + 1) * chunk))
            sel = np.r_[own, np.full(chunk - len(own), own[-1])]  # a short call repeats its last run
            init = jax.tree.unflatten(jax.tree.structure(p.init), [a[sel] for a in inits])
            t = runs.sweep(p, m.optimizer, lr=lr[sel], epochs=T, init=init, seed=seed[sel], loss_every=every,
                           go_on=True, **{k: v[sel] for k, v in hyper.items()})  # estimated by compare
            part = np.asarray(t.loss, np.float64)
            div = np.asarray(t.diverged_at)[:, None]
            loss[own] = np.where((div >= 0) & (np.arange(T + 1)[None] >= div), np.inf, part)[: len(own)]
            calls += 1
        idx = np.unique(np.r_[np.arange(0, T + 1, every), T])
        cur = loss.reshape(C, S, T + 1)[:, :, idx]
        cur = np.where(np.isnan(cur), np.inf, cur)  # a non-finite loss (NaN) counts as failed
        final[m.label], curves[m.label], evals[m.label] = cur[:, :, -1], cur, idx * m.cost
    f0 = float(p.loss(p.init))
    return TaskRuns(final, curves, evals, f0, time.perf_counter() - t0, calls)


# ----------------------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison:
    """What :func:`compare` measured, as NumPy arrays; ``K`` tasks, ``O`` optimizers, ``C``
    configurations per optimizer, ``S`` seeds, ``M`` measured points.

    final: ``{task: {optimizer: (C, S)}}`` the full-data loss after the budget (inf: diverged or
    non-finite). curves: ``{task: {optimizer: (C, S, M)}}`` the loss at ``evals[task][optimizer]``
    ``(M,)`` gradient evaluations. lr, second: ``{optimizer: (C,)}`` each configuration's learning
    rate and second hyperparameter (NaN: none). targets: ``{task: loss}``. stats: the statistics
    (:func:`statistics`), JSON-ready.
    """

    tasks: tuple
    optimizers: tuple
    second_names: dict
    costs: dict  # task -> optimizer -> gradient evaluations per step
    lr: dict
    second: dict
    seeds: np.ndarray
    budget: int
    final: dict
    curves: dict
    evals: dict
    f0: dict
    f_ref: dict
    targets: dict
    stats: dict
    config: dict
    meta: dict

    def document(self) -> dict:
        """``compare.json``'s content: the settings, the grid, per task the targets and the
        statistics; every number JSON-ready (NaN and ±inf as None)."""
        return _json_ready({"config": self.config, "meta": self.meta,
                            "grid": {o: {"lr": self.lr[o], "second": self.second_names[o],
                                         "second_values": self.second[o]} for o in self.optimizers},
                            "tasks": {k: {"f0": self.f0[k], "f_ref": self.f_ref[k], "target": self.targets[k],
                                          "cost_per_step": self.costs[k]} for k in self.tasks},
                            "stats": self.stats})

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`document` as strict JSON (no NaN, no Infinity)."""
        return json.dumps(self.document(), indent=indent, allow_nan=False)


def _json_ready(v):
    if isinstance(v, dict):
        return {str(k): _json_ready(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_ready(x) for x in v]
    if isinstance(v, np.ndarray):
        return _json_ready(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _seeds(seeds) -> np.ndarray:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = _checks.check_int("seeds", seeds, 1, 10_000)
        return np.arange(n)
    a = _checks.check_array("seeds", seeds, low=0, high=2**31 - 1, integer=True).reshape(-1)
    if not a.size or len(set(a.tolist())) != a.size:
        raise ArgumentError("seeds", "must be a count >= 1 or distinct integers >= 0")
    return a.astype(np.int64)


def _lr_range(lrs, lr_range, num_lrs) -> tuple[tuple, int]:
    if lrs is not None:
        a = _checks.check_array("lrs", lrs, low=0, low_open=True).reshape(-1)
        if a.size < 1:
            raise ArgumentError("lrs", "must hold at least one learning rate")
        return (float(a.min()), float(a.max())), a.size
    lo, hi = (_checks.check_positive_number("lr_range", v) for v in _checks.check_pair("lr_range", lr_range))
    if hi < lo:
        raise ArgumentError("lr_range", f"must be (low, high) with low <= high, got {lr_range!r}")
    return (lo, hi), _checks.check_int("num_lrs", num_lrs, 1, 10_000)


def compare(tasks=None, optimizers=None, lrs=None, second=None, seeds=10, budget: int = 200, *, num_lrs: int = 25,
            num_second: int = 8, lr_range=(1e-4, 10.0), target: float = 1e-2, k: int | None = None,
            jitter: float = 0.1, windows=None, n_boot: int = 1000, progress: Callable | None = None,
            go_on: bool = False) -> Comparison:
    """Compare optimizers fairly over a suite of tasks (see the module's docstring for the rules).

    tasks: names of :data:`SUITE` (default all ten) or :class:`jaxgd.Problem`s. optimizers: built-in
    names (default :data:`OPTIMIZERS`), factories ``f(learning_rate, **hyper)`` (optax style), or a
    dict ``{label: optimizer}``. lrs: the learning rates (default ``num_lrs`` log-spaced over
    ``lr_range``). second: ``{label: name}`` or ``{label: (name, values)}``, the second
    hyperparameter swept per optimizer (default :data:`SECOND`, ``num_second`` values; None: none).
    seeds: a count or the seeds. budget: gradient evaluations per run, the same for every optimizer.
    target: the fraction of the gap ``f₀ − f_ref`` left at the target. k: seeds of ``S`` that must
    reach it (default ⌈0.6·S⌉, AlgoPerf's 3 of 5). windows: ``(lo, hi)`` lr ranges for the ranking
    stability (default: the lower and upper halves, the middle half and the range shifted down
    and up by a quarter, in decades). ``progress(task, i, K, seconds)``: called after each task.
    Work estimated past an hour (:func:`jaxgd.budget.check`, each task's configurations × seeds
    lanes of ``budget`` gradient steps) is refused, naming ``budget``, unless ``go_on``.
    """
    seed_list = _seeds(seeds)
    budget = _checks.check_int("budget", budget, 1, runs.MAX_STEPS)
    lr_lim, L = _lr_range(lrs, lr_range, num_lrs)
    H = _checks.check_int("num_second", num_second, 1, 1000)
    target = _checks.check_number("target", target, low=0, low_open=True, high=1, high_open=True)
    jitter = _checks.check_nonneg_number("jitter", jitter)
    S = len(seed_list)
    k = math.ceil(0.6 * S) if k is None else _checks.check_int("k", k, 1, S)
    n_boot = _checks.check_int("n_boot", n_boot, 1, 1_000_000)
    task_list = [_task(t) for t in (SUITE if tasks is None else ([tasks] if isinstance(tasks, (str, Problem))
                                                                    else list(tasks)))]
    if not task_list:
        raise ArgumentError("tasks", "must hold at least one task")
    names = [t.name for t in task_list]
    if len(set(names)) != len(names):
        raise ArgumentError("tasks", f"must have distinct names, got {names}")
    members = {t.name: _members(optimizers, second, H, t.problem) for t in task_list}
    first = members[names[0]]
    for m in first:
        if budget // m.cost < 1:
            raise ArgumentError("budget", f"{budget} gradient evaluations buy no step of {m.label} on "
                                          f"{names[0]} ({m.cost} per step)")
    grids = {m.label: grid(m, lr_lim, L, H) for m in first}
    if lrs is not None:
        a = np.asarray(lrs, np.float64).reshape(-1)
        grids = {m.label: Grid(np.tile(a, len(m.values)), np.repeat(m.values, L)) if m.second is not None
                 else grids[m.label] for m in first}
    work = {t.name: [(len(grids[m.label].lr) * S, budget, None) for m in first] for t in task_list}
    _budget.refuse(sum(_budget.seconds(t.problem, work[t.name])[0] for t in task_list),
                   sum(lanes * steps for w in work.values() for lanes, steps, _ in w), "budget", go_on=go_on,
                   how="go on with --yes (go_on=True in Python)")
    results, t_start = {}, time.perf_counter()
    for i, t in enumerate(task_list):
        results[t.name] = run_task(t, members[t.name], grids, seed_list, budget, jitter)
        if progress is not None:
            progress(t.name, i + 1, len(task_list), results[t.name].seconds)
    seconds = time.perf_counter() - t_start
    labels = tuple(m.label for m in first)
    f_ref, targets = {}, {}
    for t in task_list:
        r = results[t.name]
        best = min(float(np.min(np.where(np.isfinite(r.final[o]), r.final[o], np.inf))) for o in labels)
        f_ref[t.name] = t.f_ref if t.f_ref is not None else (best if math.isfinite(best) else r.f0)
        targets[t.name] = t.fixed_target if t.fixed_target is not None else (
            f_ref[t.name] + target * (r.f0 - f_ref[t.name]))
    final = {t: {o: r.final[o] for o in labels} for t, r in results.items()}
    floors = {t.name: t.fixed_target for t in task_list if t.fixed_target is not None}
    final = {t: {o: np.maximum(v, floors[t]) if t in floors else v for o, v in d.items()} for t, d in final.items()}
    config = {"tasks": names, "optimizers": list(labels), "seeds": seed_list, "budget": budget,
              "lr_range": list(lr_lim), "num_lrs": L, "num_second": H, "target": target, "k": k,
              "jitter": jitter, "n_boot": n_boot}
    runs_per = {o: len(grids[o].lr) * S for o in labels}
    meta = {"device": jax.devices()[0].platform, "devices": jax.device_count(), "processes": jax.process_count(),
            "dtype": str(task_list[0].problem.dtype), "seconds": seconds,
            "task_seconds": {t: r.seconds for t, r in results.items()},
            "sweep_calls": {t: r.calls for t, r in results.items()}, "runs_per_optimizer": runs_per,
            "runs": int(sum(runs_per.values()) * len(task_list))}
    c = Comparison(tuple(names), labels, {m.label: m.second for m in first},
                   {t: {m.label: m.cost for m in members[t]} for t in names},
                   {o: grids[o].lr for o in labels}, {o: grids[o].second for o in labels}, seed_list, budget, final,
                   {t: {o: r.curves[o] for o in labels} for t, r in results.items()},
                   {t: {o: r.evals[o] for o in labels} for t, r in results.items()},
                   {t: r.f0 for t, r in results.items()}, f_ref, targets, {}, config, meta)
    return dataclasses.replace(c, stats=statistics(c, k, windows, n_boot))


TAUS = np.geomspace(1.0, 64.0, 121)  # the performance profiles' τ axis
TAU_MAX = 4.0  # their area is taken up to this τ (AlgoPerf's)
GAP_FLOOR = 1e-10  # the expected-best curves average log10 of the gap left, floored here


def _gap(scores: np.ndarray, f0: float, lo: float) -> np.ndarray:
    """The fraction of the gap ``f₀ − lo`` still open: 0 at ``lo``, 1 at the start or worse (and
    for a failure)."""
    with np.errstate(invalid="ignore", over="ignore"):
        g = (scores - lo) / (f0 - lo) if f0 > lo else np.where(scores <= lo, 0.0, 1.0)
    return np.clip(np.where(np.isfinite(g), g, 1.0), 0.0, 1.0)


def winners(w: dict) -> set:
    """The optimizers tied at a ranking's best finite score (empty if all failed)."""
    best = {k: v for k, v in w["best"].items() if np.isfinite(v)}
    return {k for k, v in best.items() if v == min(best.values())} if best else set()


def _changed(full: dict, window: dict) -> bool:
    """The window's winners share none with the full grid's (a tie counts every tied optimizer)."""
    return not (winners(full) & winners(window))


def statistics(c: Comparison, k: int, windows=None, n_boot: int = 1000) -> dict:
    """Every statistic of the page and of ``compare.json`` from ``c``'s arrays (:mod:`jaxgd.compare_stats`).

    ``tasks[task][optimizer]``: per configuration ``median``, ``q1``, ``q3`` of the final loss over
    seeds (``inf`` when most diverged) and ``evals_to_target`` (the k-th fastest seed's gradient
    evaluations, ``inf`` when fewer than k reach it); ``best`` (the configuration with the
    lowest median). ``profile``: ``costs (O, K)`` (each optimizer's fastest configuration),
    ``rho (O, len(taus))``, ``area`` to τ = 4 and its bootstrap ``low``/``high`` (95 %).
    ``expected_best``: per tuning budget (configurations tried at random), each optimizer's
    expected best median as the fraction of the task's gap left, per task and as the geometric
    mean over tasks. ``ranking``: per task :func:`~jaxgd.compare_stats.ranking_stability` over lr
    windows, and per window how many tasks changed winner and the mean Kendall τ (a winner changes when the window's best and the full grid's share no optimizer:
    ties at the same best loss count every tied optimizer as a winner).
    """
    O = len(c.optimizers)
    per_task, costs = {}, np.full((O, len(c.tasks)), np.inf)
    C = min(len(c.lr[o]) for o in c.optimizers)
    budgets = np.unique(np.r_[2 ** np.arange(int(math.log2(C)) + 1), C])
    eb_tasks, rank_tasks = {}, {}
    if windows is None:  # the default windows that hold a learning rate of every optimizer's grid
        every = compare_stats.lr_windows(np.concatenate([c.lr[o] for o in c.optimizers]))
        windows = {w: (lo, hi) for w, (lo, hi) in every.items()
                   if all(np.any((c.lr[o] >= lo * (1 - 1e-12)) & (c.lr[o] <= hi * (1 + 1e-12))) for o in c.optimizers)}
    for j, t in enumerate(c.tasks):
        rows, medians = {}, {}
        for i, o in enumerate(c.optimizers):
            med, q1, q3 = compare_stats.sensitivity(c.final[t][o])
            tt = compare_stats.time_to_target(c.curves[t][o], c.evals[t][o], c.targets[t], k)
            b = int(np.argmin(np.where(np.isfinite(med), med, np.inf)))
            rows[o] = {"median": med, "q1": q1, "q3": q3, "evals_to_target": tt, "best": b,
                       "best_lr": float(c.lr[o][b]), "best_second": float(c.second[o][b]),
                       "best_median": float(med[b]), "fastest": int(np.argmin(tt)), "fastest_evals": float(np.min(tt))}
            costs[i, j] = np.min(tt)
            medians[o] = med
        lo = min(c.f_ref[t], *(float(np.min(m)) for m in medians.values()))
        eb = np.stack([compare_stats.expected_best(_gap(medians[o], c.f0[t], lo), budgets, failed=1.0)
                       for o in c.optimizers])
        eb_tasks[t] = eb
        by_opt, lrs = {}, {}
        for o in c.optimizers:
            n_lr = len(np.unique(c.lr[o]))
            by_opt[o] = medians[o].reshape(-1, n_lr).T  # (L, H): lr first, the second hyperparameter after
            lrs[o] = c.lr[o][:n_lr]
        rank_tasks[t] = compare_stats.ranking_stability(by_opt, lrs, windows)
        per_task[t] = rows
    low, high = compare_stats.bootstrap_area(costs, TAU_MAX, n_boot=n_boot)
    geo = 10 ** np.mean(np.log10(np.maximum(np.stack(list(eb_tasks.values())), GAP_FLOOR)), axis=0)
    labels = list(next(iter(rank_tasks.values()))["windows"])
    summary = {w: {"winner_changed": int(sum(_changed(r["full"], r["windows"][w]) for r in rank_tasks.values())),
                   "mean_kendall_tau": float(np.nanmean([r["windows"][w]["kendall_tau"] for r in rank_tasks.values()]))
                   if any(np.isfinite(r["windows"][w]["kendall_tau"]) for r in rank_tasks.values()) else None,
                   "lo": next(iter(rank_tasks.values()))["windows"][w]["lo"],
                   "hi": next(iter(rank_tasks.values()))["windows"][w]["hi"]} for w in labels}
    return {"k": k, "tasks": per_task,
            "profile": {"taus": TAUS, "tau_max": TAU_MAX, "costs": costs,
                        "rho": compare_stats.performance_profile(costs, TAUS),
                        "area": compare_stats.profile_area(costs, TAU_MAX), "low": low, "high": high,
                        "n_boot": n_boot, "solved": np.isfinite(costs).sum(axis=1)},
            "expected_best": {"budgets": budgets, "per_task": eb_tasks, "geometric_mean": geo},
            "ranking": {"per_task": rank_tasks, "windows": summary}}
