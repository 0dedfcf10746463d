"""The statistics of a fair comparison of optimizers, from a grid's arrays (NumPy only, pure functions).

Conventions everywhere: a lower score is better (a loss, a cost); a non-finite score (NaN from a
diverged run, ±inf) is a failure and counts as ``+inf``, so it loses to every finite score and a
statistic that depends on it may be ``inf`` itself, never a made-up number. Costs are counted in
gradient evaluations.

- :func:`sensitivity`: median and quartiles over seeds (the lr-sensitivity curve, DeepOBS).
- :func:`time_to_target`: evaluations until a target with the k-of-n rule (AlgoPerf: 3 of 5).
- :func:`performance_profile`, :func:`profile_area`, :func:`bootstrap_area`: Dolan & Moré (2002)
  profiles, their area up to τ = 4 (AlgoPerf's score, Dahl et al. 2023) and its bootstrap interval.
- :func:`expected_best`: the expected best score of a random search of b grid points (Dodge et al.
  2019, "Show your work"), exact from order statistics.
- :func:`best_in_window`, :func:`lr_windows`, :func:`ranking_stability`, :func:`kendall_tau`: whether
  the ranking survives shrinking or shifting the lr search space (Choi et al. 2019).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np

from jaxgd._checks import ArgumentError, check_int, check_number, check_seed


def _failed_as_inf(x) -> np.ndarray:
    """``x`` as float64 with every non-finite value (NaN, ±inf) replaced by ``+inf``."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x), x, np.inf)


def _quantile(s: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` along the last axis of ``s`` (sorted ascending, ``+inf`` allowed) with
    NumPy's default linear interpolation; a point between a finite value and ``inf`` is ``inf``
    (``np.quantile`` gives NaN there: ``inf · 0``)."""
    n = s.shape[-1]
    pos = q * (n - 1)
    lo, frac = int(np.floor(pos)), pos - np.floor(pos)
    a, b = s[..., lo], s[..., min(lo + 1, n - 1)]
    if frac == 0:
        return a
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(b), np.inf, a + frac * (b - a))


def sensitivity(final, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(median, q1, q3)`` of final scores over the seeds ``axis`` (the lr-sensitivity curve's
    line and band). Diverged seeds (NaN, ±inf) count as ``+inf``: when more than half of them
    diverge the median is ``inf`` (more than a quarter: ``q3``). Quartiles interpolate linearly
    as ``np.quantile`` does. Shapes: ``final`` with the seeds axis removed."""
    x = _failed_as_inf(final)
    if x.ndim == 0 or x.shape[axis] == 0:
        raise ArgumentError("final", f"must have at least one seed along axis {axis}, got shape {x.shape}")
    s = np.sort(np.moveaxis(x, axis, -1), axis=-1)
    return _quantile(s, 0.5), _quantile(s, 0.25), _quantile(s, 0.75)


def _check_evals(evals, m: int) -> np.ndarray:
    e = np.asarray(evals, dtype=np.float64)
    if e.shape != (m,):
        raise ArgumentError("evals", f"must have shape ({m},) (one count per measured point of the curves), got {e.shape}")
    if not (np.isfinite(e).all() and (e >= 0).all() and (np.diff(e) >= 0).all()):
        raise ArgumentError("evals", "must hold finite, non-negative, nondecreasing counts of gradient evaluations")
    return e


def first_reach(curves, evals, target) -> np.ndarray:
    """Each curve's cost to reach ``target``: ``evals`` at its first point with loss ≤ ``target``,
    ``inf`` if none. ``curves`` ``(..., M)``, ``evals`` ``(M,)``, ``target`` broadcast against
    ``(...)``; returns ``(...)``. A NaN loss never reaches the target."""
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim < 1 or c.shape[-1] == 0:
        raise ArgumentError("curves", f"must have a last axis of measured points, got shape {c.shape}")
    e = _check_evals(evals, c.shape[-1])
    t = np.asarray(target, dtype=np.float64)
    if np.isnan(t).any():
        raise ArgumentError("target", "must not be NaN")
    with np.errstate(invalid="ignore"):
        reach = c <= t[..., None]
    return np.where(reach.any(-1), e[np.argmax(reach, axis=-1)], np.inf)


def time_to_target(curves, evals, target, k: int) -> np.ndarray:
    """Gradient evaluations to reach ``target`` under the k-of-n rule (AlgoPerf's 3 of 5).

    ``curves`` ``(..., n, M)``: the loss at ``M`` measured points of ``n`` seeds; ``evals`` ``(M,)``:
    the cumulative gradient evaluations at those points (nondecreasing); ``target``: a number or an
    array broadcast against ``(...)``. A seed's time is ``evals`` at its first point with loss ≤
    ``target`` (``inf`` if never, NaN losses included); the result is the ``k``-th smallest time over
    the ``n`` seeds, ``inf`` when fewer than ``k`` reach it. Returns ``(...)``; ``k`` must be in [1, n].
    """
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim < 2:
        raise ArgumentError("curves", f"must have shape (..., n seeds, M points), got {c.shape}")
    k = check_int("k", k, 1, c.shape[-2])
    t = np.asarray(target, dtype=np.float64)
    times = first_reach(c, evals, t[..., None])
    return np.sort(times, axis=-1)[..., k - 1]


def _ratios(costs) -> np.ndarray:
    """``(S, P)`` costs -> performance ratios ``cost / min over solvers``; ``inf`` for a failure and
    for every solver on a problem nobody solves; ``0/0`` (a zero cost at the best) is 1."""
    c = _failed_as_inf(costs)
    if c.ndim != 2 or 0 in c.shape:
        raise ArgumentError("costs", f"must have shape (solvers, problems), both non-empty, got {c.shape}")
    if (c < 0).any():
        raise ArgumentError("costs", "must be non-negative (gradient evaluations); inf or NaN marks a failure")
    best = c.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = c / best
    r = np.where(c == best, 1.0, r)  # 0/0 and the best itself
    return np.where(np.isfinite(best) & np.isfinite(c), r, np.inf)


def performance_profile(costs, taus) -> np.ndarray:
    """Dolan & Moré (2002) performance profiles: ``rho[s, i]`` = the share of problems on which
    solver ``s`` is within ``taus[i]`` × the best solver's cost (ratio ≤ τ).

    ``costs`` ``(S, P)``, solvers × problems, non-negative (``inf``/NaN = failure; a problem no
    solver solves counts as failed for all). Returns ``(S, len(taus))``.
    """
    r = _ratios(costs)
    tau = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if tau.ndim != 1 or np.isnan(tau).any():
        raise ArgumentError("taus", f"must be a number or a 1-D array of numbers, got shape {tau.shape}")
    return (r[:, None, :] <= tau[None, :, None]).mean(axis=-1)


def _area_terms(costs, tau_max: float) -> np.ndarray:
    """``(S, P)``: each problem's share of the area, ``∫₁^τmax [ratio ≤ τ] dτ / (τmax − 1)``."""
    tau_max = check_number("tau_max", tau_max, low=1, low_open=True)
    r = _ratios(costs)
    with np.errstate(invalid="ignore"):
        return np.clip((tau_max - r) / (tau_max - 1), 0.0, 1.0)


def profile_area(costs, tau_max: float = 4.0) -> np.ndarray:
    """The normalised area under each solver's performance profile, ``(1/(τmax − 1)) ∫₁^τmax
    rho_s(τ) dτ`` (AlgoPerf's benchmark score, Dahl et al. 2023), exact for the step function:
    each problem adds ``max(0, τmax − ratio) / (τmax − 1)`` over the number of problems. In [0, 1];
    1 = fastest on every problem. ``costs`` ``(S, P)`` as in :func:`performance_profile`; returns ``(S,)``."""
    return _area_terms(costs, tau_max).mean(axis=-1)


def bootstrap_area(costs, tau_max: float = 4.0, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval ``(low, high)``, each ``(S,)``, of :func:`profile_area`:
    the problems are resampled with replacement ``n_boot`` times (all solvers keep the same
    resample, so the ratios stay paired), from ``np.random.default_rng(seed)``."""
    n_boot = check_int("n_boot", n_boot, 1)
    level = check_number("level", level, low=0, low_open=True, high=1, high_open=True)
    terms = _area_terms(costs, tau_max)
    p = terms.shape[1]
    counts = np.random.default_rng(check_seed(seed)).multinomial(p, np.full(p, 1.0 / p), size=n_boot)  # (B, P)
    areas = terms @ counts.T / p  # (S, B)
    a = (1 - level) / 2
    return np.quantile(areas, a, axis=-1), np.quantile(areas, 1 - a, axis=-1)


def expected_best(scores, budgets, failed: float = np.inf) -> np.ndarray:
    """The expected best (minimum) score of a random search that tries ``b`` grid points drawn
    uniformly without replacement, for each ``b`` in ``budgets`` (Dodge et al. 2019, "Show your
    work": expected validation performance), exact from order statistics: with the scores sorted
    ``x₍₁₎ ≤ … ≤ x₍N₎``, ``P(min = x₍ᵢ₎) = C(N−i, b−1) / C(N, b)``.

    ``scores`` ``(..., N)``; non-finite scores count as ``failed`` (``+inf`` by default, so the
    expectation is ``inf`` while a budget can draw only failures; pass e.g. the initial loss to
    count a diverged run as no progress). ``budgets``: integers in [1, N]. Returns ``(..., len(budgets))``.
    """
    failed = float(failed)
    if np.isnan(failed):
        raise ArgumentError("failed", "must be a number or inf, got nan")
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] == 0:
        raise ArgumentError("scores", f"must have a non-empty last axis of grid points, got shape {x.shape}")
    x = np.sort(np.where(np.isfinite(x), x, failed), axis=-1)
    n = x.shape[-1]
    b = np.atleast_1d(np.asarray(budgets))
    whole = b.dtype.kind in "iu" or (b.dtype.kind == "f" and np.isfinite(b).all() and (b == np.round(b)).all())
    if b.ndim != 1 or not whole or (b < 1).any() or (b > n).any():
        raise ArgumentError("budgets", f"must be integers in [1, {n}] (the number of grid points), got {budgets!r}")
    b = b.astype(np.int64)
    i = np.arange(n)  # 0-based rank
    # w[b, i] = C(N-1-i, b-1) / C(N, b): w[b, 0] = b/N, w[b, i+1] = w[b, i] · (N-i-b)/(N-1-i)
    step = np.clip((n - i[None, :-1] - b[:, None]) / np.maximum(n - 1 - i[None, :-1], 1), 0.0, None)
    w = (b[:, None] / n) * np.concatenate([np.ones((len(b), 1)), np.cumprod(step, axis=-1)], axis=-1)  # (len(b), N)
    pos = w > 0
    with np.errstate(invalid="ignore"):
        terms = np.where(pos, w * x[..., None, :], 0.0)  # (..., len(b), N)
    return terms.sum(axis=-1)


class Best(NamedTuple):
    """The best score in an lr window: ``score`` (``inf`` if every run there failed), the ``lr``
    it was found at (NaN if every run failed) and its ``index`` into the scores array."""

    score: float
    lr: float
    index: tuple


def _check_lrs(lrs, n: int, name: str = "lrs") -> np.ndarray:
    lr = np.asarray(lrs, dtype=np.float64)
    if lr.shape != (n,) or not (np.isfinite(lr).all() and (lr > 0).all()):
        raise ArgumentError(name, f"must be {n} finite positive learning rates (the scores' first axis), got shape {lr.shape}")
    return lr


def best_in_window(final, lrs, lo: float, hi: float, *, empty_ok: bool = False) -> Best:
    """The best score over the learning rates in ``[lo, hi]`` (both ends included).

    ``final`` ``(L, ...)``: one optimizer's scores (e.g. the median over seeds), lr first; the
    other axes (a second hyperparameter) are searched too, as a tuner would. ``lrs`` ``(L,)``.
    A window holding no lr of the grid is refused, or with ``empty_ok`` gives
    ``Best(inf, nan, ())`` (nothing to tune there counts as a failure).
    """
    x = _failed_as_inf(final)
    if x.ndim < 1:
        raise ArgumentError("final", "must have the learning rates as its first axis, got a scalar")
    lr = _check_lrs(lrs, x.shape[0])
    lo = check_number("lo", lo, low=0, low_open=True)
    hi = check_number("hi", hi, low=lo, allowed=f"a finite number >= lo ({lo:.4g})")
    inside = (lr >= lo * (1 - 1e-12)) & (lr <= hi * (1 + 1e-12))
    if not inside.any():
        if empty_ok:
            return Best(float("inf"), float("nan"), ())
        raise ArgumentError("lo and hi", f"hold no learning rate of the grid: [{lo:.4g}, {hi:.4g}] against "
                                         f"[{lr.min():.4g}, {lr.max():.4g}]")
    masked = np.where(inside.reshape((-1,) + (1,) * (x.ndim - 1)), x, np.inf)
    idx = np.unravel_index(int(np.argmin(masked)), x.shape)
    score = float(masked[idx])
    return Best(score, float(lr[idx[0]]) if np.isfinite(score) else float("nan"), tuple(int(i) for i in idx))


def lr_windows(lrs, width: float = 0.5) -> dict[str, tuple[float, float]]:
    """Shrunk and shifted lr search spaces over a log-spaced grid: ``full``; ``middle`` (the
    central ``width`` of the range in log space); ``low`` and ``high`` (the lower and upper
    ``width``: the range shifted down and up); ``narrow`` (the central ``width²``). Each is ``(lo, hi)``."""
    width = check_number("width", width, low=0, low_open=True, high=1)
    lr = np.log(np.asarray(lrs, dtype=np.float64))
    a, z = float(lr.min()), float(lr.max())
    span = z - a

    def win(start, frac):
        return float(np.exp(a + start * span)), float(np.exp(a + (start + frac) * span))

    return {"full": win(0, 1), "middle": win((1 - width) / 2, width), "low": win(0, width),
            "high": win(1 - width, width), "narrow": win((1 - width**2) / 2, width**2)}


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """``sign(x_i − x_j)`` for every pair, with ``inf`` tied to ``inf``."""
    return (x[:, None] > x[None, :]).astype(np.int64) - (x[:, None] < x[None, :])


def kendall_tau(x, y) -> float:
    """Kendall's τ-b between two score (or rank) vectors of equal length (ties corrected:
    ``(concordant − discordant) / sqrt((n₀ − tiesₓ)(n₀ − ties_y))``); ``inf`` ties with ``inf``.
    NaN when either vector is all ties (or has fewer than 2 entries)."""
    x, y = _failed_as_inf(x), _failed_as_inf(y)
    if x.shape != y.shape or x.ndim != 1:
        raise ArgumentError("x and y", f"must be 1-D of the same length, got {x.shape} and {y.shape}")
    iu = np.triu_indices(len(x), 1)
    sx, sy = _pair_signs(x)[iu], _pair_signs(y)[iu]
    den = np.sqrt(float(np.count_nonzero(sx)) * float(np.count_nonzero(sy)))
    return float((sx * sy).sum() / den) if den > 0 else float("nan")


def _ranking(names: Sequence[str], scores: np.ndarray) -> list[str]:
    """Names best first; ties keep the given order."""
    return [names[i] for i in np.argsort(scores, kind="stable")]


def ranking_stability(final_by_opt: Mapping[str, np.ndarray], lrs,
                      windows: Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]] | None = None) -> dict:
    """Whether the optimizers' ranking survives a change of the lr search space (Choi et al. 2019).

    ``final_by_opt``: optimizer name -> ``(L, ...)`` final scores (median over seeds; lr first,
    other hyperparameter axes taken at their best). ``lrs``: ``(L,)`` shared, or a dict name ->
    ``(L_name,)``. ``windows``: label -> ``(lo, hi)`` (or a sequence of pairs, labelled by
    position); default :func:`lr_windows` of all the lrs. The reference is the full grid. An
    optimizer whose own grid has no lr in a window scores ``inf`` there (nothing to tune).

    Returns a plain dict: ``optimizers`` (names), ``full`` and ``windows`` (label -> a dict of
    ``lo``, ``hi``, ``best`` (name -> score, ``inf`` where every run failed), ``lr`` (name -> the
    lr of the best, NaN if none), ``ranking`` (names, best first; ties in the given order),
    ``winner`` (``ranking[0]``, None if all failed), ``kendall_tau`` (τ-b against the full grid's
    scores; NaN if either is all ties) and ``winner_changed``).
    """
    names = list(final_by_opt)
    if not names:
        raise ArgumentError("final_by_opt", "must name at least one optimizer")
    lrs_by = {n: lrs[n] for n in names} if isinstance(lrs, Mapping) else {n: lrs for n in names}
    all_lr = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in lrs_by.values()])
    if windows is None:
        windows = lr_windows(all_lr)
    elif not isinstance(windows, Mapping):
        windows = {str(i): w for i, w in enumerate(windows)}

    def rank(lo, hi):
        best = {n: best_in_window(final_by_opt[n], lrs_by[n], lo, hi, empty_ok=True) for n in names}
        scores = np.array([best[n].score for n in names])
        order = _ranking(names, scores)
        return dict(lo=float(lo), hi=float(hi), best={n: best[n].score for n in names},
                    lr={n: best[n].lr for n in names}, ranking=order,
                    winner=order[0] if np.isfinite(scores).any() else None), scores

    full, ref = rank(float(all_lr.min()), float(all_lr.max()))
    full.update(kendall_tau=kendall_tau(ref, ref), winner_changed=False)
    out = {}
    for label, (lo, hi) in windows.items():
        w, scores = rank(lo, hi)
        w.update(kendall_tau=kendall_tau(ref, scores), winner_changed=w["winner"] != full["winner"])
        out[str(label)] = w
    return dict(optimizers=names, full=full, windows=out)
