"""The report's explorables, each number precomputed by compiled sweeps (the page only looks them up).

- :func:`lr_sweeps` — per optimizer, one full-batch sweep over learning rates (× β for momentum and
  nesterov, × β₂ for Adam) with every path kept. It feeds the learning-rate sweep figure (the
  default β), the what-if sliders (a subset of the paths) and the lr × β phase diagram (momentum).
- :func:`seed_cloud` — gd under SGD and minibatch sampling over 1,000 seeds (final points), and
  the spread of the final point against the learning rate, one sweep per mode.
- :func:`basins` — on a landscape with several minima, a grid of starts (201² by default) per
  optimizer, coloured by the minimum each run ends at, one sweep over ``init`` each.

Every function returns NumPy arrays in plain dicts or NamedTuples; nothing here draws.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxgd.engine import Trajectory
from jaxgd.problems import Problem
from jaxgd.runs import LRScan, sweep

# β of the momentum phase diagram: 0, 0.02, …, 0.98 (50 values; 0.9, the default, exactly among them)
PHASE_BETAS = np.round(np.arange(50) * 0.02, 10)
ADAM_B2 = (0.9, 0.99, 0.999)
WHATIF_POINTS = 30  # learning rates per what-if slider
WHATIF_BETAS = (0.0, 0.5, 0.8, 0.9, 0.98)  # the β slider's stops (a subset of PHASE_BETAS)
SEEDS = 1000
SPREAD_SEEDS = 100
SPREAD_LR_FACTORS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # × the mode's preset lr
CLOUD_STEPS = 5000  # the seed cloud's runs take at most this many steps (its 1,600 runs are one sweep)
BASIN_GRID = 201


class LRSweep(NamedTuple):
    """One optimizer's full-batch sweep: ``lrs (L,)`` × ``knob`` values ``(K,)`` (K = 1 without a knob).

    w, b, loss: ``(L, K, T+1)``; diverged_at: ``(L, K)``; knob: the hyperparameter's name or None.
    """

    optimizer: str
    lrs: np.ndarray
    knob: str | None
    values: np.ndarray
    default: int  # index of the knob's default value
    w: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    diverged_at: np.ndarray


def _knob(optimizer: str) -> tuple[str | None, np.ndarray, int]:
    if optimizer in ("momentum", "nesterov"):
        return "beta", PHASE_BETAS, int(np.flatnonzero(PHASE_BETAS == 0.9)[0])
    if optimizer == "adam":
        return "b2", np.array(ADAM_B2), 2
    return None, np.zeros(1), 0


def lr_sweeps(problem: Problem, optimizers, lrs, epochs: int, extra: dict | None = None):
    """Per optimizer one compiled call: every lr × knob value, full batch, from the default start.

    ``extra``: ``{optimizer: [lr, ...]}`` — more runs at the knob's default, in the same call.
    Returns ``({optimizer: LRSweep}, {optimizer: [Trajectory of each extra run]})``.
    """
    lrs = np.asarray(lrs, np.float64)
    out, more = {}, {}
    for opt in optimizers:
        knob, values, default = _knob(opt)
        L, K = len(lrs), len(values)
        add = list((extra or {}).get(opt, ()))
        lr = np.concatenate([np.repeat(lrs, K), np.asarray(add, np.float64)])
        kw = {} if knob is None else {knob: np.concatenate([np.tile(values, L), np.full(len(add), values[default])])}
        t = sweep(problem, opt, lr=lr, epochs=epochs, **kw)
        n = L * K
        shape = (L, K, -1)
        out[opt] = LRSweep(opt, lrs, knob, values, default, np.asarray(t.params.w[:n]).reshape(shape),
                           np.asarray(t.params.b[:n]).reshape(shape), np.asarray(t.loss[:n], np.float64).reshape(shape),
                           np.asarray(t.diverged_at[:n]).reshape(L, K))
        more[opt] = [jax.tree.map(lambda a, i=i: a[n + i], t) for i in range(len(add))]
    return out, more


def prefix(t: Trajectory, steps: int) -> Trajectory:
    """The first ``steps`` steps of one run: what ``run`` with that many steps returns (a full-batch
    run's path does not depend on its length)."""
    def cut(a, n):
        return None if a is None else jax.tree.map(lambda x: x[:n], a)

    d = int(t.diverged_at)
    return t._replace(params=cut(t.params, steps + 1), loss=t.loss[:steps + 1], batch_loss=t.batch_loss[:steps],
                      grad_norm=t.grad_norm[:steps], update_norm=t.update_norm[:steps],
                      first_moment=cut(t.first_moment, steps), second_moment=cut(t.second_moment, steps),
                      diverged_at=np.int32(d if d <= steps else -1), num_steps=np.int32(steps),
                      sharpness=cut(t.sharpness, steps), sharpness_hvps=cut(t.sharpness_hvps, steps))


def scan_from(sweeps: dict[str, LRSweep], epochs: int, theory=None) -> LRScan:
    """The learning-rate sweep figure's :class:`~jaxgd.LRScan`: each optimizer at its default knob
    after ``epochs`` steps; the theory's lines from ``theory`` (a quadratic's :class:`~jaxgd.curvature.Theory`)."""
    lrs = next(iter(sweeps.values())).lrs
    final = {k: s.loss[:, s.default, epochs] for k, s in sweeps.items()}
    div = {k: np.where(s.diverged_at[:, s.default] > epochs, -1, s.diverged_at[:, s.default]) for k, s in sweeps.items()}
    limit = None if theory is None else float(theory.stability_limit)
    best = None if theory is None else float(theory.optimal_lr)
    return LRScan(lrs, final, div, limit, best, epochs, None)


def lr_limit(optimizer: str, lam_max: float, beta: float = 0.9) -> float | None:
    """The largest stable learning rate on a quadratic with top eigenvalue ``lam_max`` (see
    :func:`jaxgd.curvature.sharpness_limit`): gd ``2/λ``, EMA heavy ball ``2(1+β)/((1−β)λ)``; None otherwise."""
    from jaxgd.curvature import sharpness_limit

    s = sharpness_limit(optimizer, 1.0, beta)
    return None if s is None or not lam_max > 0 or not np.isfinite(s) else s / lam_max


def whatif(sw: LRSweep, lam_max: float | None, points: int = WHATIF_POINTS) -> dict:
    """The what-if slider's data: ``points`` of the sweep's learning rates (evenly in log) × the
    knob's stops; paths ``(points, K', T+1)``, and the stability limit for each stop."""
    li = np.unique(np.linspace(0, len(sw.lrs) - 1, min(points, len(sw.lrs))).round().astype(int))
    if sw.knob == "beta":
        ki = np.array([int(np.argmin(np.abs(sw.values - v))) for v in WHATIF_BETAS])
    else:
        ki = np.arange(len(sw.values))
    lim = [None if lam_max is None else lr_limit(sw.optimizer, lam_max, float(sw.values[k]) if sw.knob == "beta"
                                                 else 0.0) for k in ki]
    return dict(optimizer=sw.optimizer, lrs=sw.lrs[li], knob=sw.knob, values=sw.values[ki],
                default=int(np.flatnonzero(ki == sw.default)[0]) if sw.default in ki else 0,
                w=sw.w[np.ix_(li, ki)], b=sw.b[np.ix_(li, ki)], loss=sw.loss[np.ix_(li, ki)],
                diverged_at=sw.diverged_at[np.ix_(li, ki)], limit=lim)


def phase(sw: LRSweep, lam_max: float | None) -> dict:
    """The lr × β phase diagram of heavy-ball momentum: the final loss ``(L, K)``, where each run
    diverged, and the theory's boundary ``lr = 2(1+β)/((1−β)λmax)`` for each β (None off a quadratic)."""
    final = sw.loss[:, :, -1]
    boundary = None if lam_max is None else [lr_limit("momentum", lam_max, float(v)) for v in sw.values]
    return dict(lrs=sw.lrs, betas=sw.values, final_loss=final, diverged_at=sw.diverged_at, boundary=boundary)


def seed_cloud(problem: Problem, modes, settings, seeds: int = SEEDS, spread_seeds: int = SPREAD_SEEDS,
               max_steps: int = CLOUD_STEPS) -> dict:
    """gd under each minibatch mode over ``seeds`` seeds (orders from ``jax.random``, drawn inside the
    compiled run) with the mode's ``(lr, epochs) = settings(mode)`` (epochs cut to fit in
    ``max_steps``), and the spread of the final point — the RMS distance to the seeds' mean — over
    ``spread_seeds`` seeds at each of :data:`SPREAD_LR_FACTORS` × that lr. One compiled sweep per mode.
    """
    from jaxgd.data import steps_per_epoch

    out = {}
    for md in modes:
        lr, epochs = settings(md)
        epochs = max(1, min(epochs, max_steps // steps_per_epoch(problem.num_examples, md.batch_size)))
        f = np.asarray(SPREAD_LR_FACTORS)
        lrs = np.concatenate([np.full(seeds, lr), np.repeat(lr * f, spread_seeds)])
        sds = np.concatenate([np.arange(seeds), np.tile(np.arange(spread_seeds), len(f))])
        t = sweep(problem, "gd", lr=lrs, epochs=epochs, batch_size=md.batch_size, sampling=md.sampling,
                  rng="jax", seed=sds, final_only=True)
        w, b = np.asarray(t.params.w[:, -1], np.float64), np.asarray(t.params.b[:, -1], np.float64)
        div = np.asarray(t.diverged_at)
        spread, lost = [], []
        for k in range(len(f)):
            s = slice(seeds + k * spread_seeds, seeds + (k + 1) * spread_seeds)
            ok = div[s] < 0
            ws, bs = w[s][ok], b[s][ok]
            lost.append(int((~ok).sum()))
            spread.append(float(np.sqrt(np.mean((ws - ws.mean()) ** 2 + (bs - bs.mean()) ** 2))) if ok.sum() > 1
                          else None)
        out[md.name] = dict(label=md.label, batch_size=md.batch_size, lr=lr, epochs=epochs, w=w[:seeds],
                            b=b[:seeds], diverged=div[:seeds] >= 0, spread_lrs=lr * f, spread=spread,
                            spread_diverged=lost)
    return out


def basins(problem: Problem, optimizers, settings, n: int = BASIN_GRID) -> dict | None:
    """For a problem with several known minima: per optimizer, the index of the minimum each of
    ``n × n`` starts on the plot's grid ends within ``1 %`` of the plot's span of (−1: none; −2:
    diverged), ``(n, n)`` indexed ``[i_w, j_b]``. One sweep over ``init`` per optimizer."""
    if len(problem.minima) < 2:
        return None
    w = np.linspace(*problem.w_range, n)
    b = np.linspace(*problem.b_range, n)
    W, B = (a.reshape(-1) for a in np.meshgrid(w, b, indexing="ij"))
    mins = np.array([list(m) for m in problem.minima], np.float64)
    tol = 0.01 * max(np.ptp(w), np.ptp(b))
    labels = {}
    for opt in optimizers:
        lr, steps = settings(opt)
        t = sweep(problem, opt, lr=lr, epochs=steps, init=(W, B), final_only=True)
        fw, fb = np.asarray(t.params.w[:, -1], np.float64), np.asarray(t.params.b[:, -1], np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.hypot(fw[:, None] - mins[:, 0], fb[:, None] - mins[:, 1])
        near = np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1)
        lab = np.where(np.take_along_axis(d, near[:, None], 1)[:, 0] < tol, near, -1)
        lab = np.where(np.asarray(t.diverged_at) >= 0, -2, lab)
        labels[opt] = lab.reshape(n, n).astype(np.int8)
    return dict(w=w, b=b, minima=mins, labels=labels, tol=tol)
