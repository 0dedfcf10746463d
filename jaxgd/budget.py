"""How long training work will take, said before it runs: :func:`seconds` and :func:`check`.

Work is a list of ``(lanes, steps, batch)``: ``lanes`` runs side by side (a sweep's), ``steps``
steps each, on batches of ``batch`` examples (None: the full data). Its cost is first bounded from
below by the flops alone (:func:`optimistic`: ``6·n·batch`` a lane-step at :data:`FAST_FLOPS`, at
least :data:`FAST_STEP`, a step at least :data:`FAST_LOOP`); only where that bound passes :data:`MINUTE` is it measured here
(:func:`probe`: a compiled scan of :data:`PROBE_STEPS` gradient steps over up to
:data:`PROBE_LANES` lanes), so everyday work never pays for a probe. :func:`check` refuses work
estimated past :data:`HOUR` unless the caller goes on.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp

from jaxgd._checks import ArgumentError
from jaxgd.problems import Problem

HOUR = 3600.0  # work estimated past this is refused unless the caller goes on
MINUTE = 60.0  # below this optimistic bound, no probe
FAST_FLOPS = 1e11  # flop/s a lane-step gets at best (the lower bound's speed)
FAST_STEP = 1e-8  # seconds a lane-step takes at least
FAST_LOOP = 1e-7  # seconds a step of the compiled loop takes at least, however few its lanes
PROBE_STEPS = 16
PROBE_LANES = 32
PROBE_NUMBERS = 10**7  # the probe's lanes hold at most this many parameters in all


def _batch(problem: Problem, batch) -> int:
    m = problem.num_examples
    return 1 if m is None else min(int(batch or m), m)


def optimistic(problem: Problem, work) -> float:
    """Seconds ``work`` takes at least: each lane-step ``6·n·batch`` flops at :data:`FAST_FLOPS`,
    never under :data:`FAST_STEP`, and each step of the lanes together never under :data:`FAST_LOOP`."""
    n = problem.num_params
    return sum(steps * max(FAST_LOOP, lanes * max(6 * n * _batch(problem, b) / FAST_FLOPS, FAST_STEP))
               for lanes, steps, b in work)


def probe(problem: Problem, batch=None, lanes: int = 1) -> float:
    """Seconds one lane-step takes here, measured: ``min(lanes, PROBE_LANES)`` copies of the start
    (fewer where they would pass :data:`PROBE_NUMBERS` numbers) take :data:`PROBE_STEPS` gradient
    steps on the first ``batch`` examples in one compiled scan; the fastest of three calls, divided
    by the lane-steps."""
    b = _batch(problem, batch)
    data = None if problem.data is None else jax.tree.map(lambda a: a[:b], problem.data)
    mask = None if problem.data is None else jnp.ones(b, bool)
    v = max(1, min(int(lanes), PROBE_LANES, PROBE_NUMBERS // max(problem.num_params, 1)))
    grad = jax.grad(lambda p: problem.loss_fn(p, data, mask))

    def steps(p):
        return jax.lax.fori_loop(0, PROBE_STEPS, lambda _, q: jax.tree.map(lambda x, g: x - 1e-30 * g, q, grad(q)), p)

    f = jax.jit(jax.vmap(steps))
    p = jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (v, *jnp.shape(a))), problem.init)
    jax.block_until_ready(f(p))
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(f(p))
        best = min(best, time.perf_counter() - t0)
    return max(best, 1e-9) / (v * PROBE_STEPS)


def seconds(problem: Problem, work) -> tuple[float, bool]:
    """``(seconds, measured)``: :func:`optimistic` where that is under :data:`MINUTE` (``measured``
    False), else each part's lane-steps times its :func:`probe`."""
    low = optimistic(problem, work)
    if low < MINUTE:
        return low, False
    measured = {}  # (batch, probe lanes) -> seconds a lane-step
    total = 0.0
    for lanes, steps, b in work:
        k = (_batch(problem, b), min(int(lanes), PROBE_LANES))
        if k not in measured:
            measured[k] = probe(problem, b, lanes)
        total += lanes * steps * measured[k]
    return total, True


def say_seconds(s: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.5 h"``, ``"2.1e+04 h"``."""
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:,.1f} h" if s < 3.6e7 \
        else f"{s / 3600:.2g} h"


def check(problem: Problem, work, name: str, *, go_on: bool = False, how: str = "pass go_on=True") -> str | None:
    """Refuse ``work`` estimated (:func:`seconds`) past :data:`HOUR` unless ``go_on``: an
    :class:`ArgumentError` named ``name`` that gives the estimate and ``how`` to go on. Returns the
    estimate's words where past the hour (and going on), else None."""
    return refuse(seconds(problem, work)[0], sum(lanes * steps for lanes, steps, _ in work), name, go_on=go_on, how=how)


def refuse(s: float, lane_steps: int, name: str, *, go_on: bool = False, how: str = "pass go_on=True") -> str | None:
    """:func:`check`'s verdict on work estimated at ``s`` seconds of ``lane_steps`` run-steps."""
    if s <= HOUR:
        return None
    words = f"about {say_seconds(s)} of work ({lane_steps:,} run-steps, estimated on this machine)"
    if not go_on:
        raise ArgumentError(name, f"asks for {words}: past an hour, {how}")
    return words
