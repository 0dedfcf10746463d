"""Text summaries: the notebook's printed numbers recomputed, and a table of every run."""

from __future__ import annotations

import numpy as np

from jaxgd.app import presets
from jaxgd.engine import Trajectory
from jaxgd.model import Params, mse
from jaxgd.plots.common import number
from jaxgd.problems import Problem, notebook
from jaxgd.runs import run
from jaxgd.surface import grad_check, loss_surface


def notebook_seed1_init() -> Params:
    """The notebook's ``initialize_params(seed=1)``: ``np.random.seed(1)``, W = 4·randn(), b = 4·randn()."""
    rs = np.random.RandomState(1)
    return Params(4 * rs.randn(), 4 * rs.randn())


def run_preset(problem: Problem, optimizer: str, mode: presets.Mode) -> tuple[float, int, Trajectory]:
    """``(lr, epochs, trajectory)`` of ``run`` with a mode's sampling and its preset lr and epochs."""
    lr, epochs = presets.settings(optimizer, mode.name)
    return lr, epochs, run(problem, optimizer, lr=lr, epochs=epochs, batch_size=mode.batch_size,
                           sampling=mode.sampling, rng=mode.rng, seed=mode.seed)


def notebook_numbers(dtype: str = "float64") -> list[str]:
    """Lines reproducing each number the notebook printed, computed by jaxgd."""
    p = notebook(dtype=dtype)
    x, y = p.data
    g = np.linspace(-8, 8, 101)
    S = loss_surface(p, g, g)
    p1 = notebook_seed1_init()
    one = run(p, "gd", lr=1e-4, epochs=1, init=p1)
    lines = [
        f"The notebook's numbers, recomputed by jaxgd ({dtype}):",
        f"  loss surface over linspace(-8, 8, 101)²: shape {tuple(S.shape)}, S[100, 100] = {float(S[100, 100])!r}"
        "  (notebook: 337.0)",
        f"  mse at the default start W=-4, b=-7: {float(mse(Params(-4.0, -7.0), x, y))!r}",
        f"  mse at W=1.6, b=-0.6: {float(mse(Params(1.6, -0.6), x, y))!r}  (notebook: 14.346666666666668)",
        f"  initialize_params(seed=1): W = {p1.w!r}, b = {p1.b!r}, mse = {float(mse(p1, x, y))!r}"
        "  (notebook: 204.96590137022957)",
        f"  one gd step at lr 1e-4 from there: W = {float(one.final.w)!r}, b = {float(one.final.b)!r}"
        "  (notebook: 6.489585993464901, -2.4459362494693813)",
    ]
    refs = {"full": "2.0, 1.7842334540943074", "sgd": "1.9310482368920623, 1.7996401386377476",
            "minibatch": "2.527263422032023, 1.0189900205136884"}
    for mode in presets.MODES:
        lr, ep, t = run_preset(p, "gd", mode)
        lines.append(f"  {mode.label}, lr {lr:g}, {ep} epochs = {t.steps} steps: W = {float(t.final.w)!r}, "
                     f"b = {float(t.final.b)!r}  (notebook: {refs[mode.name]})")
    gc = grad_check(p, g, g)
    lines.append(f"  jax.grad vs analytic gradient on the 101² grid: max abs error {gc.max_abs_error:.2e}, "
                 f"max rel error {gc.max_rel_error:.2e}")
    return lines


def optimizer_table(optimizers=None) -> list[str]:
    """A table of every optimizer × sampling mode with the preset settings: final W, b, loss."""
    p = notebook()
    optimizers = optimizers or ("gd", "momentum", "nesterov", "rmsprop", "adam")
    head = f"{'optimizer':<10} {'mode':<20} {'lr':>6} {'steps':>6} {'W':>12} {'b':>12} {'loss':>11}  status"
    lines = ["Every optimizer × sampling mode from (-4, -7) (minimum at W=2, b=3):", head, "-" * len(head)]
    for opt in optimizers:
        for mode in presets.MODES:
            lr, _, t = run_preset(p, opt, mode)
            d = int(t.diverged_at)
            lines.append(f"{opt:<10} {mode.label:<20} {lr:>6g} {t.steps:>6} {float(t.final.w):>12.6f} "
                         f"{float(t.final.b):>12.6f} {float(t.loss[-1]):>11.3e}  "
                         f"{'ok' if d < 0 else f'diverged at step {d}'}")
    return lines


def run_status(traj, minima=(), span: float | None = None, min_loss: float | None = None) -> tuple[str, str]:
    """``(state, why)`` of a run for people: "diverged", "did not converge" or "converged".

    Diverged: the engine's rule (``diverged_at``). Did not converge: the final loss is above the
    start's, or — where the minima are known — the final point is farther than 1 % of ``span``
    (the plot's width) from every minimum, or (``min_loss`` known) less than 99 % of the loss
    above ``min_loss`` was removed; with neither known (the saddle: no minimum), it did not converge
    either, as there is nothing to converge to. Else converged.
    """
    d = int(traj.diverged_at)
    if d >= 0:
        return "diverged", f"diverged at step {d}"
    loss = np.asarray(traj.loss, np.float64)
    first, last = float(loss[0]), float(loss[-1])
    if last > first:
        return "did not converge", f"the loss rose from {number(first)} to {number(last)}"
    if minima and span:
        w, b = float(np.asarray(traj.params.w)[-1]), float(np.asarray(traj.params.b)[-1])
        dist = min(float(np.hypot(w - m[0], b - m[1])) for m in minima)
        if dist > 0.01 * span:
            return "did not converge", f"still {number(dist, 4)} from the nearest minimum"
    elif min_loss is not None and last - min_loss > 0.01 * (first - min_loss):
        return "did not converge", f"{100 * (last - min_loss) / (first - min_loss):.0f} % of the loss above the minimum is left"
    elif min_loss is None:
        return "did not converge", f"there is no minimum to reach (the loss fell to {number(last)})"
    return "converged", "ended near a minimum"
