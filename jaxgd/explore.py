"""The report's explorables, each number precomputed by compiled sweeps (the page only looks them up).

- :func:`lr_sweeps` — per optimizer a full-batch sweep over learning rates (× β for momentum and
  nesterov, × β₂ for Adam) with every path kept, all optimizers in one compiled call. It feeds the
  learning-rate sweep figure (the default β), the what-if sliders (a subset of the paths) and the
  lr × β phase diagram (momentum).
- :func:`seed_cloud` — gd under SGD and minibatch sampling over 1,000 seeds (final points), the
  spread of the final point against the learning rate and the batch size, and the lr × batch size
  phase diagram: two compiled calls (batches up to 8, and larger).
- :func:`basins` — on a landscape with several minima, a grid of starts (201² by default) per
  optimizer, coloured by the minimum each run ends at, with the steps it took to get there; one
  compiled call for every optimizer of one budget.

Every function returns NumPy arrays in plain dicts or NamedTuples; nothing here draws (the app's
report does). An advanced module, not in ``jaxgd.__all__``: ``from jaxgd import explore``; every
run goes through :func:`jaxgd.sweep`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxgd.curvature import sharpness_limit
from jaxgd.data import steps_per_epoch
from jaxgd.problems import Problem
from jaxgd.runs import LRScan, split, sweep

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


def lr_sweeps(problem: Problem, optimizers, lrs, epochs: int, extra: dict | None = None, *, go_on: bool = False):
    """Every optimizer's lr × knob values, full batch, from the default start, in one compiled call
    (:func:`jaxgd.sweep` with an optimizer column).

    ``extra``: ``{optimizer: [lr, ...]}`` — more runs at the knob's default, in the same call.
    Returns ``({optimizer: LRSweep}, {optimizer: [Trajectory of each extra run]})``. ``go_on``:
    :func:`jaxgd.sweep`'s (work past an hour is refused without it), as for :func:`seed_cloud` and :func:`basins`.
    """
    lrs = np.asarray(lrs, np.float64)
    names, lr, knobs, sizes, extras = [], [], {}, [], []  # the optimizer, lr and knob columns of one sweep
    for opt in optimizers:
        knob, values, default = _knob(opt)
        L, K = len(lrs), len(values)
        add = list((extra or {}).get(opt, ()))
        n = L * K + len(add)
        extras.append(range(len(names) + L * K, len(names) + n))
        names += [opt] * n
        lr.append(np.concatenate([np.repeat(lrs, K), np.asarray(add, np.float64)]))
        for k in ("beta", "b2"):  # a knob's column: this optimizer's values on its runs, 0.5 (ignored) on others
            v = np.concatenate([np.tile(values, L), np.full(len(add), values[default])]) if k == knob else np.full(n, .5)
            knobs.setdefault(k, []).append(v)
        sizes.append((L, K, len(add)))
    knobs = {k: np.concatenate(v) for k, v in knobs.items() if any(_knob(o)[0] == k for o in optimizers)}
    t = sweep(problem, names, np.concatenate(lr), epochs, go_on=go_on, **knobs)  # one program for every optimizer
    more = dict(zip(optimizers, (split(t, names, r) for r in extras)))
    out, at = {}, 0
    for opt, (L, K, n_add) in zip(optimizers, sizes):
        knob, values, default = _knob(opt)
        n = L * K
        part = jax.tree.map(lambda a, at=at, n=n, n_add=n_add: a[at:at + n + n_add], t)
        shape = (L, K, -1)
        out[opt] = LRSweep(opt, lrs, knob, values, default, part.params.w[:n].reshape(shape),
                           part.params.b[:n].reshape(shape), np.asarray(part.loss[:n], np.float64).reshape(shape),
                           part.diverged_at[:n].reshape(L, K))
        at += n + n_add
    return out, more


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
    s = sharpness_limit(optimizer, 1.0, beta)
    return None if s is None or not lam_max > 0 or not np.isfinite(s) else s / lam_max


def stop_at(lrs, lr: float | None) -> float | None:
    """Where ``lr`` falls among a slider's stops ``lrs`` (increasing), in stops: ``i + f`` for
    ``lrs[i] ≤ lr ≤ lrs[i+1]``, ``f`` linear in log lr; None for None or outside ``(lrs[0], lrs[-1])``."""
    if lr is None or not lrs[0] < lr < lrs[-1]:
        return None
    return float(np.interp(np.log(lr), np.log(lrs), np.arange(len(lrs))))


def whatif(sw: LRSweep, lam_max: float | None, points: int = WHATIF_POINTS) -> dict:
    """The what-if slider's data: ``points`` of the sweep's learning rates (evenly in log) × the
    knob's stops; paths ``(points, K', T+1)``, and the stability limit for each stop with where it
    falls among the lr slider's stops (:func:`stop_at`; the page's mark)."""
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
                diverged_at=sw.diverged_at[np.ix_(li, ki)], limit=lim, limit_at=[stop_at(sw.lrs[li], v) for v in lim])


def phase(sw: LRSweep, lam_max: float | None) -> dict:
    """The lr × β phase diagram of heavy-ball momentum: the final loss ``(L, K)``, where each run
    diverged, and the theory's boundary ``lr = 2(1+β)/((1−β)λmax)`` for each β (None off a quadratic)."""
    final = sw.loss[:, :, -1]
    boundary = None if lam_max is None else [lr_limit("momentum", lam_max, float(v)) for v in sw.values]
    return dict(lrs=sw.lrs, betas=sw.values, final_loss=final, diverged_at=sw.diverged_at, boundary=boundary)


SPREAD_BATCHES = (1, 2, 4, 8, 16, 32)  # the batch sizes of the spread-against-batch-size curve
BATCH_PHASE_LRS = (1e-3, 1.0)  # the lr range of the lr × batch size diagram (100 values, log-spaced)
BATCH_PHASE_POINTS = 100
BATCH_PHASE_MAX_SIZES = 64
ORDER_BYTES = 2**28  # the seed cloud's small-batch call splits by batch size past this many bytes of sample orders
SMALL_BATCH = 8  # runs with batches up to this size share one compiled call, larger ones another  # batch sizes 1 … m up to this many, else this many log-spaced ones


def phase_batches(m: int) -> np.ndarray:
    """The batch sizes of the lr × batch size diagram: every size 1 … m (up to
    :data:`BATCH_PHASE_MAX_SIZES` of them), else that many log-spaced sizes from 1 to m."""
    if m <= BATCH_PHASE_MAX_SIZES:
        return np.arange(1, m + 1)
    return np.unique(np.geomspace(1, m, BATCH_PHASE_MAX_SIZES).round().astype(int))


def seed_cloud(problem: Problem, modes, settings, seeds: int = SEEDS, spread_seeds: int = SPREAD_SEEDS,
               max_steps: int = CLOUD_STEPS, batch_phase: bool = False, *, go_on: bool = False):
    """gd under each minibatch mode over ``seeds`` seeds (the notebook's ``np.random`` orders, seeds
    0, 1, …, as ``run(..., rng="numpy", seed=i)``) with the mode's ``(lr, epochs) = settings(mode)`` (epochs cut so
    that every run, the batch-1 runs of the spread included, fits in ``max_steps``); the spread of the final point — the RMS distance to the seeds' mean — over
    ``spread_seeds`` seeds at each of :data:`SPREAD_LR_FACTORS` × that lr and at each of
    :data:`SPREAD_BATCHES` (≤ m) as batch size (with, per batch size, ``centre_by_batch``: the
    mean final W, b and loss of the seeds that did not diverge); and with ``batch_phase`` the lr × batch size
    diagram of SGD: gd's final loss after the most epochs of the modes (cut so that its batch-1 row
    takes at most ``max_steps`` steps, as the cloud's: its orders grow with steps × batch), over 100 learning rates
    × the batch sizes of :func:`phase_batches`. Two compiled calls of
    :func:`jaxgd.sweep` (batch size, epochs, sampling and seed columns): batches up to
    :data:`SMALL_BATCH`, and larger.

    Returns ``{mode name: cloud}``, or ``(that, batch phase)`` with ``batch_phase``.
    """
    m = problem.num_examples
    f = np.asarray(SPREAD_LR_FACTORS)
    sizes = np.array([s for s in SPREAD_BATCHES if s <= m])
    parts = []  # (lr, batch, epochs, replacement, seed) per segment, concatenated into one call
    info = []
    for md in modes:
        lr, epochs = settings(md)
        # every run of the cloud within max_steps, its batch-size spread's batch 1 too (the orders grow with the steps)
        epochs = max(1, min(epochs, max_steps // steps_per_epoch(m, min(md.batch_size, *sizes))))
        rep = md.sampling == "replacement"
        parts += [(np.full(seeds, lr), md.batch_size, epochs, rep, np.arange(seeds)),
                  (np.repeat(lr * f, spread_seeds), md.batch_size, epochs, rep, np.tile(np.arange(spread_seeds), len(f))),
                  (lr, np.repeat(sizes, spread_seeds), epochs, rep, np.tile(np.arange(spread_seeds), len(sizes)))]
        info.append((md, lr, epochs))
    if batch_phase:
        ph_epochs = max(1, min(max(e for _, _, e in info), max_steps // m))  # its batch-1 row within max_steps too
        lrs, bsz = np.geomspace(*BATCH_PHASE_LRS, BATCH_PHASE_POINTS), phase_batches(m)
        parts.append((np.repeat(lrs, len(bsz)), np.tile(bsz, len(lrs)), ph_epochs, False, 0))
    cols = [[], [], [], [], []]
    for p in parts:
        n = max(np.size(a) for a in p)
        for c, a in zip(cols, p):
            c.append(np.broadcast_to(a, (n,)))
    lr_a, bs_a, ep_a, rep_a, sd_a = (np.concatenate(c) for c in cols)
    w, b, loss = (np.empty(len(lr_a)) for _ in range(3))
    div, steps = np.empty(len(lr_a), np.int64), np.empty(len(lr_a), np.int64)
    small = bs_a <= SMALL_BATCH

    # every run is padded to the widest batch and the most steps of its call: two widths waste less than
    # one. One after the other: XLA already compiles each on two threads, and a third thread beside the
    # report's two only made a cold report slower (median 3.01 s against 2.72 s, five runs each). Where
    # the small call's padded orders would pass ORDER_BYTES (long budgets: batch-1 runs of 5,000 steps
    # beside batch-8 runs padded to them), one call per octave of batch sizes (1, 2, 3-4, 5-8) instead
    m_steps = ep_a * -(-m // bs_a)
    calls = [small, ~small]
    if small.any() and small.sum() * m_steps[small].max() * bs_a[small].max() * 5 > ORDER_BYTES:
        octave = np.ceil(np.log2(bs_a)).astype(int)
        calls = [small & (octave == k) for k in np.unique(octave[small])] + [~small]
    for sel in calls:
        if sel.any():
            t = sweep(problem, "gd", lr=lr_a[sel], batch_size=bs_a[sel], epochs=ep_a[sel], seed=sd_a[sel],
                      sampling=np.where(rep_a[sel], "replacement", "shuffle").tolist(), rng="numpy", final_only=True,
                      loss_every=1, go_on=go_on)
            w[sel], b[sel], loss[sel] = t.params.w[:, -1], t.params.b[:, -1], t.loss[:, -1]
            div[sel], steps[sel] = t.diverged_at, t.num_steps

    def spread(sl, groups, n):  # per group of n runs: spread, diverged, and the survivors' centre and mean final loss
        out, lost, centre = [], [], []
        for k in range(groups):
            s = slice(sl.start + k * n, sl.start + (k + 1) * n)
            ok = div[s] < 0
            ws, bs = w[s][ok], b[s][ok]
            lost.append(int((~ok).sum()))
            out.append(float(np.sqrt(np.mean((ws - ws.mean()) ** 2 + (bs - bs.mean()) ** 2))) if ok.sum() > 1 else None)
            centre.append([float(ws.mean()), float(bs.mean()), float(loss[s][ok].mean())] if ok.any() else [None] * 3)
        return out, lost, centre

    out, at = {}, 0
    for md, lr, epochs in info:
        cloud = slice(at, at + seeds)
        s_lr, lost_lr, _ = spread(slice(cloud.stop, None), len(f), spread_seeds)
        s_bs, lost_bs, c_bs = spread(slice(cloud.stop + len(f) * spread_seeds, None), len(sizes), spread_seeds)
        at = cloud.stop + (len(f) + len(sizes)) * spread_seeds
        out[md.name] = dict(label=md.label, batch_size=md.batch_size, lr=lr, epochs=epochs, w=w[cloud], b=b[cloud],
                            diverged=div[cloud] >= 0, spread_lrs=lr * f, spread=s_lr, spread_diverged=lost_lr,
                            spread_batches=sizes, spread_by_batch=s_bs, spread_by_batch_diverged=lost_bs,
                            centre_by_batch=c_bs, spread_seeds=spread_seeds, sampling=md.sampling)
    if not batch_phase:
        return out
    shape = (len(lrs), len(bsz))
    phase = dict(lrs=lrs, batch_sizes=bsz, epochs=ph_epochs, final_loss=loss[at:].reshape(shape),
                 diverged_at=div[at:].reshape(shape), steps=steps[at:].reshape(shape))
    return out, phase


def basins(problem: Problem, optimizers, settings, n: int = BASIN_GRID, *, go_on: bool = False) -> dict | None:
    """For a problem with several known minima: per optimizer, the index of the minimum each of
    ``n × n`` starts on the plot's grid ends within ``1 %`` of the plot's span of (−1: none; −2:
    diverged) and the steps it took to first come that close to that minimum (−1: none), both ``(n, n)`` indexed
    ``[i_w, j_b]``. One compiled call for every optimizer of one budget (:func:`jaxgd.sweep` with
    optimizer and start columns)."""
    if len(problem.minima) < 2:
        return None
    w = np.linspace(*problem.w_range, n)
    b = np.linspace(*problem.b_range, n)
    W, B = (a.reshape(-1) for a in np.meshgrid(w, b, indexing="ij"))
    mins = np.array([list(m) for m in problem.minima], np.float64)
    tol = 0.01 * max(np.ptp(w), np.ptp(b))
    by_steps = {}
    for opt in optimizers:
        lr, steps = settings(opt)
        by_steps.setdefault(steps, []).append((opt, lr))
    labels, reached = {}, {}
    for steps, members in by_steps.items():
        k = len(members)
        t = sweep(problem, np.repeat([o for o, _ in members], n * n), np.repeat([lr for _, lr in members], n * n), steps,
                  init=(np.tile(W, k), np.tile(B, k)), final_only=True, targets=mins, target_tol=tol, go_on=go_on)
        for k, (opt, _) in enumerate(members):
            part = slice(k * n * n, (k + 1) * n * n)
            fw, fb = t.params.w[part, -1].astype(np.float64), t.params.b[part, -1].astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                d = np.hypot(fw[:, None] - mins[:, 0], fb[:, None] - mins[:, 1])
            near = np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1)
            lab = np.where(np.take_along_axis(d, near[:, None], 1)[:, 0] < tol, near, -1)
            lab = np.where(t.diverged_at[part] >= 0, -2, lab)
            labels[opt] = lab.reshape(n, n).astype(np.int8)
            first = np.take_along_axis(t.reached_at[part], np.maximum(lab, 0)[:, None], 1)[:, 0]  # of its own minimum
            reached[opt] = np.where(lab >= 0, first, -1).reshape(n, n).astype(np.int32)
    return dict(w=w, b=b, minima=mins, labels=labels, steps=reached, tol=tol)


EXERCISE_FRACTION = 0.01  # "steps to 1 %": the loss has come 99 % of its way down to the minimum's


def steps_to(loss, floor: float, diverged_at, frac: float = EXERCISE_FRACTION) -> np.ndarray:
    """The first step ``k`` from which ``loss[..., j] − floor ≤ frac · (loss[..., 0] − floor)`` holds
    at every step ``j ≥ k`` to the end: the loss has come ``1 − frac`` of its way from the start down
    to ``floor``, the minimum's loss, and stays there (a heavy ball that only swings through does not
    count); −1 where the last step is not there, or the run diverged. ``loss`` ``(..., T+1)``,
    ``diverged_at`` ``(...)``. Measured above the minimum and relative to the start, so a minimum of
    0 (the notebook's noiseless line) and one at the noise level read alike (``loss ≤ 1.01·min``
    never holds on the way to a minimum of 0)."""
    loss, d = np.asarray(loss, np.float64), np.asarray(diverged_at)[..., None]
    n = loss.shape[-1]
    with np.errstate(invalid="ignore"):
        out = ~(loss - floor <= frac * (loss[..., :1] - floor)) | ((d >= 0) & (np.arange(n) >= d))
    last = n - 1 - np.argmax(out[..., ::-1], axis=-1)  # the last step outside (where there is one)
    return np.where(~out.any(-1), 0, np.where(last < n - 1, last + 1, -1))


def readouts(wf: dict, floor: float) -> dict:
    """The exercise cards' readouts of every stop of a what-if (:func:`whatif`), each ``(L', K')``:
    ``steps`` to 1 % (:func:`steps_to`), the final ``loss``, ``w``, ``b`` after the budget and
    ``diverged_at`` (−1: never). A diverged run's final values are NaN: past the divergence they are
    rounding noise (on the notebook's line an overflowing W swamps b's gradient), different in
    every compiled program."""
    div = wf["diverged_at"] >= 0
    final = {k: np.where(div, np.nan, wf[k][..., -1]) for k in ("loss", "w", "b")}
    return dict(steps=steps_to(wf["loss"], floor, wf["diverged_at"]), diverged_at=wf["diverged_at"], **final)


def _fastest(r: dict, k: int):
    """The stop of knob column ``k`` that gets to 1 % in the fewest steps (ties: the lower final loss); None if none does."""
    ok = np.flatnonzero(r["steps"][:, k] >= 0)
    return None if not len(ok) else int(ok[np.lexsort((r["loss"][ok, k], r["steps"][ok, k]))[0]])


def exercises(whatifs: list[dict] | None, cloud: dict | None, floor: float | None) -> dict | None:
    """The exercise mode's numbers: per what-if (:func:`whatif`) its :func:`readouts`, and the cards
    that this problem's sweeps can answer, each ``dict(id, optimizer, start=view, answer=view, ...)``;
    a view is a what-if stop ``dict(lr, knob)`` (indices) with its values (``lr_value``, ``knob_value``:
    None without a knob, ``limit``: the what-if's theory limit there) and readouts (``steps``,
    ``loss``, ``w``, ``b``, ``diverged_at``, and ``left``: the final loss's fraction of the start's
    height above ``floor``), or for card e ``dict(batch)``:

    - ``a`` the lr stop of gd (else the first optimizer) that gets to 1 % in the fewest steps;
    - ``b`` its smallest stop that still gets there, if not the smallest (``crawl``);
    - ``c`` its smallest stop that diverges (``below``: the stop before it; the start: card a's answer);
    - ``d`` heavy ball (momentum, else nesterov): its fastest stop at the default β (the start), then
      at the largest β stop (the answer);
    - ``e`` the seed cloud's spread against the batch size (:func:`seed_cloud`): per mode (``modes``)
      the batch sizes of the ``largest`` and the ``smallest`` spread, and those spreads.

    ``batch``: the cloud's readouts per batch size (``sizes``; per mode ``rows``). ``floor``: the
    minimum's loss; None (no known minimum), or no what-if: None."""
    if not whatifs or floor is None:
        return None
    R = [readouts(wf, floor) for wf in whatifs]
    names = [wf["optimizer"] for wf in whatifs]

    def view(o, lr, knob):
        wf, r, at = whatifs[o], R[o], (int(lr), int(knob))
        start = wf["loss"][at][0]
        return dict(lr=at[0], knob=at[1], lr_value=float(wf["lrs"][at[0]]), limit=wf["limit"][at[1]],
                    knob_value=float(wf["values"][at[1]]) if wf["knob"] else None,
                    left=float((r["loss"][at] - floor) / (start - floor)) if start != floor else 0.0,
                    **{k: r[k][at].item() for k in ("steps", "loss", "w", "b", "diverged_at")})

    o = names.index("gd") if "gd" in names else 0
    k0, cards = whatifs[o]["default"], []
    card = lambda i, o, start, answer, **more: cards.append(dict(  # noqa: E731
        id=i, optimizer=names[o], start=view(o, *start), answer=view(o, *answer), **{k: view(o, *v) for k, v in more.items()}))
    best = _fastest(R[o], k0)
    if best is not None:
        card("a", o, (0, k0), (best, k0))
        if (first := np.flatnonzero(R[o]["steps"][:, k0] >= 0)[0]) > 0:  # else even the smallest lr gets there
            card("b", o, (0, k0), (first, k0), crawl=(0, k0))
    div = np.flatnonzero(R[o]["diverged_at"][:, k0] >= 0)
    if len(div) and div[0] > 0:
        card("c", o, (best or 0, k0), (div[0], k0), below=(div[0] - 1, k0))
    hb = next((i for i, n in enumerate(names) if n in ("momentum", "nesterov")), None)
    if hb is not None:
        wf = whatifs[hb]
        top, fast = int(np.argmax(wf["values"])), _fastest(R[hb], wf["default"])
        if fast is not None and top != wf["default"]:
            card("d", hb, (fast, wf["default"]), (fast, top))
    batch = None
    if cloud:
        sizes = [int(s) for s in next(iter(cloud.values()))["spread_batches"]]
        rows = [dict(mode=k, sampling=c["sampling"], lr=c["lr"], epochs=c["epochs"], seeds=c["spread_seeds"],
                     spread=c["spread_by_batch"], diverged=c["spread_by_batch_diverged"],
                     **{key: [v[j] for v in c["centre_by_batch"]] for j, key in enumerate(("w", "b", "loss"))}) for k, c in cloud.items()]
        batch, ext = dict(sizes=sizes, rows=rows), []
        for row in rows:
            sp = np.array([np.nan if v is None else v for v in row["spread"]])
            if np.isfinite(sp).any():
                hi, lo = int(np.nanargmax(sp)), int(np.nanargmin(sp))
                ext.append(dict(mode=row["mode"], sampling=row["sampling"], lr=row["lr"], epochs=row["epochs"],
                                largest=sizes[hi], smallest=sizes[lo], spread_largest=sp[hi], spread_smallest=sp[lo]))
        if len(sizes) > 1 and ext:
            cards.append(dict(id="e", optimizer="gd", start=dict(batch=sizes[0]), answer=dict(batch=ext[0]["largest"]),
                              modes=ext, seeds=rows[0]["seeds"]))
    return dict(fraction=EXERCISE_FRACTION, floor=float(floor), steps=int(whatifs[0]["loss"].shape[-1] - 1),
                optimizers=names, readouts=R, cards=cards, batch=batch)
