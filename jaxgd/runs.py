"""Runs and sweeps: arguments checked once into a record, then handed to the engine.

``run(...) = run_checked(check_run_args(...))``: the check builds a :class:`RunConfig` (the
problem, the resolved optimizer, the step count, the starting point, the sample order's recipe)
and ``run_checked`` compiles :func:`jaxgd.engine.one_run` for it. ``sweep`` checks its arrays,
broadcasts them to ``R`` runs and calls ``jit(vmap(one_run))``, sharded over all JAX devices.
``run_many`` (checked runs of any optimizers, lengths and batch sizes), ``sweep_union`` (full-batch
sweeps of several optimizers) and ``sweep_batches`` (runs that differ in batch size) put more
runs into that one program. Compiled calls go through :func:`jaxgd.engine.compiled_call` (plain
calls unless an application, such as the ``jaxgd`` command's disk cache, installs a hook).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd import _checks, engine, optim
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.data import RNGS, SAMPLINGS, Draw, Order, numpy_order, order_key, sample_order, steps_per_epoch
from jaxgd.engine import Trajectory
from jaxgd.model import Params
from jaxgd.problems import Problem, check_problem_dtype


class RunConfig(NamedTuple):
    """A checked run: everything :func:`run_checked` needs, in canonical form.

    ``steps`` is ``T``; ``init`` the starting point as arrays of the problem's dtype; ``order``
    an explicit :class:`Order` or None (then drawn from ``sampling``, ``rng``, ``seed``).
    """

    problem: Problem
    optimizer: str
    spec: optim.Spec
    epochs: int
    batch_size: int | None
    steps: int
    init: Any
    sampling: str
    rng: str
    seed: int
    order: Order | None = None
    sharpness: tuple = ()  # (every, iters, tol) when measured, else ()
    loss_every: int = 1  # the full-data loss at every this many steps (see check_loss_every)

    def with_lr(self, lr) -> "RunConfig":
        """The same run at another learning rate or schedule (e.g. one built from ``steps``)."""
        return self._replace(spec=optim.with_lr(self.spec, _check_lr(lr)))


def _check_problem(problem) -> Problem:
    """A :class:`Problem` whose dtype JAX can compute in now (a float64 problem needs x64 still on)."""
    if not isinstance(problem, Problem):
        raise ArgumentTypeError("problem", f"must be a jaxgd.Problem (e.g. jaxgd.notebook()), got {type(problem).__name__}")
    return check_problem_dtype(problem)


def _check_lr_in_dtype(lr, dtype):
    """A number ``lr`` that stays a positive finite number in ``dtype`` (1e-50 is 0 in float32)."""
    if callable(lr):
        return lr
    a = np.asarray(lr, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        c = a.astype(np.dtype(dtype))
    bad = ~(np.isfinite(c) & (c > 0))
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        v, r = float(a.reshape(-1)[i]), float(c.reshape(-1)[i])
        fi = np.finfo(np.dtype(dtype))
        at = f" at index {i}" if a.ndim else ""
        raise ArgumentError("lr", f"{v!r}{at} is {r!r} in {np.dtype(dtype).name}: a learning rate must lie between "
                                  f"{float(fi.smallest_subnormal):.3g} and {float(fi.max):.3g} in that dtype")
    return lr


def _check_lr(lr):
    """A finite number > 0, or a schedule: a function of the step whose value at step 0 is a finite number >= 0."""
    if not callable(lr):
        return _checks.check_positive_number("lr", lr)
    try:
        v = float(jnp.asarray(lr(0)))
    except Exception as e:  # a schedule that cannot be called on a step count
        raise ArgumentTypeError("lr", f"is callable but not a schedule of the step count: calling lr(0) raised {e!r}") from None
    if not (v >= 0 and v < float("inf")):
        raise ArgumentError("lr", f"schedule must give a finite learning rate >= 0, got lr(0) = {v!r}")
    return lr


def check_batch_size(problem: Problem, batch_size) -> int | None:
    """None (full batch), or an integer in ``[1, m]``; refused for problems without data."""
    if batch_size is None:
        return None
    m = problem.num_examples
    if m is None:
        raise ArgumentError("batch_size", f"does not apply to problem {problem.name!r}, which has no data; leave it None")
    return _checks.check_int("batch_size", batch_size, 1, m)


def check_sharpness(every, iters, tol) -> tuple:
    """``(every, iters, tol)`` checked: ``every`` an integer ≥ 0 (0: never), ``iters`` in
    [1, 10⁴], ``tol`` in (0, 1); ``()`` when ``every`` is 0."""
    every = _checks.check_int("sharpness_every", every, 0)
    iters = _checks.check_int("sharpness_iters", iters, 1, 10_000)
    tol = _checks.check_number("sharpness_tol", tol, low=0, low_open=True, high=1, high_open=True)
    return (every, iters, tol) if every else ()


def check_run_args(problem, optimizer="gd", lr=0.05, epochs=20, batch_size=None, init=None, sampling="shuffle",
                   rng="jax", seed=0, hyper=None, order=None, sharpness_every=0, sharpness_iters=50,
                   sharpness_tol=1e-4, loss_every=None) -> RunConfig:
    """Validate :func:`run`'s arguments into a :class:`RunConfig`; raises
    :class:`~jaxgd._checks.ArgumentError` / ``ArgumentTypeError`` naming the argument."""
    problem = _check_problem(problem)
    lr = _check_lr(lr)
    epochs = _checks.check_int("epochs", epochs, 1)
    sampling = _checks.check_choice("sampling", sampling, SAMPLINGS)
    rng = _checks.check_choice("rng", rng, RNGS)
    seed = _checks.check_seed(seed)
    lr = _check_lr_in_dtype(lr, problem.dtype)
    init = _checks.check_params("init", problem.init if init is None else init, problem.init, problem.dtype)
    spec = optim.resolve(optimizer, lr, dict(hyper or {}))
    batch_size = check_batch_size(problem, batch_size)
    steps = epochs if batch_size is None else epochs * steps_per_epoch(problem.num_examples, batch_size)
    if order is not None:
        order = _check_order(order, problem.num_examples, batch_size)
        steps = int(order.idx.shape[0])
    sharp = check_sharpness(sharpness_every, sharpness_iters, sharpness_tol)
    check_steps("epochs" if order is None else "order", steps, problem.num_params)
    every = check_loss_every(loss_every, problem.num_examples, batch_size)
    return RunConfig(problem, optimizer, spec, epochs, batch_size, steps, init, sampling, rng, seed, order, sharp,
                     every)


LOSS_BUDGET = 100  # auto loss_every: the full-data loss costs at most this many batches per step, amortised


def check_loss_every(loss_every, num_examples: int | None, batch_size: int | None) -> int:
    """``loss_every``: an integer ≥ 1, or None for automatic — 1 for full batch, for a landscape or
    whenever the data are at most ``LOSS_BUDGET`` batches, else ``num_examples // (LOSS_BUDGET ·
    batch_size)``, so that the full-data losses cost about as much as ``LOSS_BUDGET`` batches per
    step and a run costs O(T·B), not O(T·m)."""
    if loss_every is None:
        if batch_size is None or num_examples is None:
            return 1
        return max(1, num_examples // (LOSS_BUDGET * batch_size))
    return _checks.check_int("loss_every", loss_every, 1, MAX_STEPS)


MAX_STEPS = 2**31 - 1  # the step counter is an int32


def check_steps(name: str, steps: int, num_params: int, runs: int = 1, per_step: bool = True) -> None:
    """A run of ``steps`` steps must count them in int32 and its trajectory must fit in memory:
    every point and each step's moments, about ``8 · (steps + 1) · (3 · num_params + 8)`` bytes a
    run (``per_step=False``, a sweep's ``final_only``: one point, ``8 · (3 · num_params + 8)``)."""
    if steps > MAX_STEPS:
        raise ArgumentError(name, f"asks for {steps:,} steps; a run takes at most {MAX_STEPS:,}")
    points = steps + 1 if per_step else 1
    what = (f"{steps:,} steps of {num_params:,} parameters" if per_step else f"{num_params:,} parameters") + (
        f" in {runs:,} runs" if runs > 1 else "")
    _checks.check_fits(name, 8 * runs * points * (3 * num_params + 8), what)


def _check_order(order, m, batch_size) -> Order:
    if batch_size is None:
        raise ArgumentError("order", "needs batch_size: a full-batch run has no sample order")
    idx, mask = np.asarray(order[0]), np.asarray(order[1], bool)
    if idx.ndim != 2 or idx.shape[1] != batch_size or mask.shape != idx.shape:
        raise ArgumentError("order", f"must hold idx and mask of shape (T, {batch_size}), got {idx.shape} and {mask.shape}")
    if idx.shape[0] == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ArgumentError("order", "must hold a non-empty integer array idx")
    if np.any((idx < 0) | (idx >= m)) or not np.all(np.any(mask, axis=1)):
        raise ArgumentError("order", f"idx must lie in [0, {m}) and every step must have an unmasked point")
    return Order(idx.astype(np.int32), mask)


def _hyper_arrays(spec: optim.Spec, dtype) -> dict:
    return {k: np.asarray(v, dtype) for k, v in spec.hyper.items()}


def _sharpness_fields(sharp: tuple, loss_every: int = 1) -> dict:
    return dict(zip(("sharpness_every", "sharpness_iters", "sharpness_tol"), sharp), loss_every=loss_every)


def _epoch_static(problem: Problem, kind: tuple, batch_size, epochs: int, sampling: str, **more) -> engine.Static:
    """The engine's configuration for a run scanned epoch by epoch (full batch: an epoch is one step)."""
    if batch_size is None:
        return engine.Static(problem.loss_fn, kind, None, 1, epochs, **more)
    spe = steps_per_epoch(problem.num_examples, batch_size)
    return engine.Static(problem.loss_fn, kind, batch_size, spe, epochs, sampling, **more)


def _numpy_source(static: engine.Static, m: int, seed: int) -> Order:
    """The notebook's NumPy order for a run of ``static``, as ``(epochs, steps per epoch, B)``."""
    o = numpy_order(seed, m, static.batch_size, static.blocks, static.sampling)
    return Order(*(np.asarray(a).reshape(static.blocks, static.block_steps, static.batch_size) for a in o))


def _plan(cfg: RunConfig):
    """The engine's static configuration and the run's order source for a checked run."""
    p = cfg.problem
    more = _sharpness_fields(cfg.sharpness, cfg.loss_every)
    if cfg.order is not None:  # an explicit order: blocks of one step
        source = Order(*(a[:, None] for a in cfg.order))
        return engine.Static(p.loss_fn, cfg.spec.kind, cfg.batch_size, 1, cfg.steps, **more), source
    static = _epoch_static(p, cfg.spec.kind, cfg.batch_size, cfg.epochs, cfg.sampling, **more)
    if cfg.batch_size is None:
        return static, None
    if cfg.rng == "numpy":
        return static, _numpy_source(static, p.num_examples, cfg.seed)
    return static, engine.compiled_call(_order_key, "order_key", (), np.uint32(cfg.seed))


_order_key = jax.jit(order_key)  # one compiled call, not one per random primitive
_order_keys = jax.jit(jax.vmap(order_key))


def run_checked(cfg: RunConfig, *, chunk: int | None = None, callback=None) -> Trajectory:
    """Run a checked :class:`RunConfig` (see :func:`run` for ``chunk`` and ``callback``)."""
    if chunk is not None:
        chunk = _checks.check_int("chunk", chunk, 1)
    if callback is not None and not callable(callback):
        raise ArgumentTypeError("callback", f"must be a function (steps_done, steps_total), got {callback!r}")
    static, source = _plan(cfg)
    hyper = _hyper_arrays(cfg.spec, cfg.problem.dtype)
    data = cfg.problem.data
    if chunk is not None and chunk < cfg.steps:
        blocks = max(1, -(-chunk // static.block_steps))
        return engine.run_chunked(static, data, hyper, cfg.init, source, blocks, callback)
    out = engine.compiled_call(engine.run_compiled, "run", (static,), data, hyper, cfg.init, source)
    if callback is not None:
        callback(cfg.steps, cfg.steps)
    return out


def run(
    problem: Problem,
    optimizer: str = "gd",
    lr: float = 0.05,
    epochs: int = 20,
    batch_size: int | None = None,
    init=None,
    sampling: str = "shuffle",
    rng: str = "jax",
    seed: int = 0,
    *,
    order: Order | None = None,
    chunk: int | None = None,
    callback=None,
    sharpness_every: int = 0,
    sharpness_iters: int = 50,
    sharpness_tol: float = 1e-4,
    loss_every: int | None = None,
    **hyper,
) -> Trajectory:
    """Run ``optimizer`` on ``problem`` and return its :class:`~jaxgd.Trajectory`.

    Args:
      problem: a :class:`~jaxgd.Problem`, e.g. ``jaxgd.notebook()`` or ``jaxgd.model_problem(...)``.
      optimizer: "gd", "momentum", "nesterov", "rmsprop", "adam", "newton", "lbfgs" (see
        :mod:`jaxgd.optim`), or "optax:NAME" for any optax optimizer with ``lr`` as its learning rate.
      lr: learning rate, a finite number > 0 — or a schedule, a function of the step count
        (``optax.cosine_decay_schedule(...)`` and the like; step 0 first). A schedule is static:
        a new schedule object compiles anew.
      epochs: passes over the data (an integer ≥ 1); without minibatches, one step each.
      batch_size: None for full batch; 1 for SGD; k for minibatches of k. An epoch is
        ``ceil(m / batch_size)`` steps.
      init: the starting point, a pytree like ``problem.init`` (for two parameters also a pair
        ``(w, b)``); default ``problem.init`` (the notebook's (-4, -7)).
      sampling: "shuffle" — a permutation per epoch cut into consecutive batches, the ragged
        last one masked; "replacement" — each step draws ``batch_size`` indices uniformly.
      rng: "jax" (``jax.random`` from ``seed``) or "numpy" (the notebook's ``np.random``
        stream after ``np.random.seed(seed)``).
      seed: an integer in ``[0, 2**32)``. Every optimizer with the same seed sees the same order.
      order: an explicit :class:`~jaxgd.Order` (``idx``, ``mask`` of shape ``(T, batch_size)``)
        to use instead of drawing one; needs ``batch_size``, and sets ``T``.
      chunk: scan about this many steps per compiled call instead of all at once (rounded up to
        whole epochs for minibatch runs), calling ``callback(steps_done, steps_total)`` after
        each chunk (for a progress bar). The result is bit for bit that of one scan.
      sharpness_every: record the sharpness — the top eigenvalue of the full-data loss's Hessian —
        at every step divisible by this (0: never) in ``Trajectory.sharpness``, inside the same
        scan: Lanczos on Hessian-vector products (:func:`jaxgd.spectrum.top_eigenpairs`), at most
        ``sharpness_iters`` of them per measurement, to a residual ‖Hv − λv‖ of ``sharpness_tol``·λ
        (the eigenvalue's error is about residual²/gap: 1e-4 gives it to about 1e-8 relative),
        warm-started from the previous measurement's eigenvector.
      loss_every: compute the full-data loss (``Trajectory.loss``) at every this many steps and at
        the last point, NaN between (each costs a pass over all m examples; a batch step costs B).
        None (default): automatic — every step, except with batches on data of more than 100
        batches, where it is ``m // (100·batch_size)`` so a run costs O(T·B), not O(T·m). Between
        measurements the divergence rule sees only the parameters.
      **hyper: the optimizer's hyperparameters (beta; decay, eps; b1, b2, eps; or optax's).

    Returns a Trajectory of ``T + 1`` points. A run that diverges is not an error: see
    ``Trajectory.diverged_at``.
    """
    cfg = check_run_args(problem, optimizer, lr, epochs, batch_size, init, sampling, rng, seed, hyper, order,
                         sharpness_every, sharpness_iters, sharpness_tol, loss_every)
    return run_checked(cfg, chunk=chunk, callback=callback)


def truncate(t: Trajectory, steps: int) -> Trajectory:
    """The first ``steps`` steps of one run (host arrays): what the run with that many steps returns,
    for a run whose path does not depend on its length (full batch, or an order that extends)."""
    def cut(a, n):
        return None if a is None else jax.tree.map(lambda x: x[:n], a)

    d = int(t.diverged_at)
    return t._replace(params=cut(t.params, steps + 1), loss=t.loss[:steps + 1], batch_loss=t.batch_loss[:steps],
                      grad_norm=t.grad_norm[:steps], update_norm=t.update_norm[:steps],
                      first_moment=cut(t.first_moment, steps), second_moment=cut(t.second_moment, steps),
                      diverged_at=np.int32(d if d <= steps else -1), num_steps=np.int32(steps),
                      sharpness=cut(t.sharpness, steps), sharpness_hvps=cut(t.sharpness_hvps, steps),
                      reached_at=None if t.reached_at is None else
                      np.int32(t.reached_at if t.reached_at <= steps else -1))


def run_many(cfgs, final_only: bool = False) -> list[Trajectory]:
    """Several checked runs (:class:`RunConfig`, e.g. from :func:`check_run_args`) in one compiled call.

    ``jit(vmap(one_run))`` over the union of their optimizers (:func:`jaxgd.optim.union`): each run
    is padded to the longest (:attr:`jaxgd.engine.Static.stop`) and, with minibatches, its order
    to the largest batch (masked) — so runs of different optimizers, lengths and batch sizes cost
    one program. The runs must share the problem, ``loss_every`` and the sharpness settings, and
    be all full batch or all minibatch (an order drawn with ``rng="jax"`` is drawn before the run).
    Returns each run's :class:`~jaxgd.Trajectory` as host (NumPy) arrays — ``run_checked``'s
    numbers, up to rounding: one program computes them all (``final_only`` as in :func:`sweep`).
    """
    cfgs = list(cfgs)
    if not cfgs or not all(isinstance(c, RunConfig) for c in cfgs):
        raise ArgumentTypeError("cfgs", "must be a non-empty sequence of RunConfig (from check_run_args)")
    c0 = cfgs[0]
    for name, same in (("problem", lambda c: c.problem is c0.problem),
                       ("full batch or minibatch", lambda c: (c.batch_size is None) == (c0.batch_size is None)),
                       ("loss_every", lambda c: c.loss_every == c0.loss_every),
                       ("sharpness", lambda c: c.sharpness == c0.sharpness)):
        if not all(same(c) for c in cfgs):
            raise ArgumentError("cfgs", f"runs in one call must share their {name}")
    problem, dtype, R = c0.problem, c0.problem.dtype, len(cfgs)
    kinds = list(dict.fromkeys(c.spec.kind for c in cfgs))
    which = np.array([kinds.index(c.spec.kind) for c in cfgs], np.int32)
    hyper = {"which": which, "steps": np.array([c.steps for c in cfgs], np.int32)}
    for i, k in enumerate(kinds):
        first = cfgs[int(np.flatnonzero(which == i)[0])].spec.hyper
        for name, v in first.items():
            hyper[f"{i}.{name}"] = np.asarray([c.spec.hyper[name] if w == i else v for c, w in zip(cfgs, which)], dtype)
    init = jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *(c.init for c in cfgs))
    T = max(c.steps for c in cfgs)
    more = dict(final_only=final_only, stop=True, **_sharpness_fields(c0.sharpness, c0.loss_every))
    kind = optim.union_kind(kinds)
    if c0.batch_size is None:
        static, source = engine.Static(problem.loss_fn, kind, None, 1, T, **more), None
    else:  # each run's order, padded to (T, B): masked columns, and empty steps past the run's end (skipped)
        B = max(c.batch_size for c in cfgs)
        idx, mask = np.zeros((R, T, B), np.int32), np.zeros((R, T, B), bool)
        for r, c in enumerate(cfgs):
            o = c.order if c.order is not None else sample_order(problem.num_examples, c.batch_size, c.epochs,
                                                                 c.sampling, c.rng, c.seed)
            idx[r, :c.steps, :c.batch_size], mask[r, :c.steps, :c.batch_size] = np.asarray(o[0]), np.asarray(o[1])
        static, source = engine.Static(problem.loss_fn, kind, B, 1, T, **more), Order(idx[:, :, None], mask[:, :, None])
    check_steps("cfgs", T, problem.num_params, R, per_step=not final_only)
    out = _call(static, problem.data, hyper, init, source, R)
    runs = []
    for r, c in enumerate(cfgs):
        t = own_moments(jax.tree.map(lambda a, r=r: a[r], out), c.spec, c.init)
        runs.append(t if final_only else truncate(t, c.steps))
    return runs


def own_moments(t: Trajectory, spec: optim.Spec, init) -> Trajectory:
    """A run of a union sweep with only the moments its own optimizer keeps (the others None)."""
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), init)
    first, second = jax.eval_shape(lambda p: optim.moments(optim.build(spec.kind, spec.hyper).init(p)), shapes)
    return t._replace(first_moment=t.first_moment if first is not None else None,
                      second_moment=t.second_moment if second is not None else None)


def _call(static: engine.Static, data, hyper, init, source, R: int) -> Trajectory:
    """``jit(vmap(one_run))`` on ``R`` runs, sharded over the devices; host (NumPy) arrays back."""
    out = engine.compiled_call(engine.sweep_compiled, "sweep", (static,), data, *_shard((hyper, init, source), R))
    return jax.tree.map(lambda a: np.asarray(a)[:R], out)


def _check_sweep_hyper(optimizer, lr_a: np.ndarray, hyper: dict) -> tuple[optim.Spec, dict]:
    """A sweep's optimizer resolved with each hyperparameter's first value, and its numeric
    hyperparameters as checked 1-D arrays (every element in the built-in's range; bools, strings
    and None stay static, as in :func:`run`)."""
    static_h = {k: v for k, v in hyper.items() if isinstance(v, (bool, str)) or v is None}
    table = optim.BUILTIN.get(optimizer, (None, {}))[1] if isinstance(optimizer, str) else {}
    numeric = {}
    for k, v in hyper.items():  # every element in its range; names and kinds checked by resolve below
        if k not in static_h:
            lo, lo_open, hi, hi_open = table[k][1:] if k in table else (None, False, None, False)
            numeric[k] = _checks.check_array(k, v, low=lo, low_open=lo_open, high=hi, high_open=hi_open)
    spec = optim.resolve(optimizer, float(lr_a.reshape(-1)[0]),
                         {**{k: v.reshape(-1)[0].item() for k, v in numeric.items()}, **static_h})
    return spec, numeric


def sweep_union(problem: Problem, groups, epochs: int, final_only: bool = False, targets=(),
                target_tol: float = 0.0) -> Trajectory:
    """Full-batch sweeps of several optimizers in one compiled call (:func:`jaxgd.optim.union`):
    ``groups`` is a sequence of ``(optimizer, {name: values})`` or ``(optimizer, {name: values},
    init)`` with ``lr`` and any of the optimizer's numeric hyperparameters as 1-D arrays of that
    group's runs (scalars broadcast), and ``init`` the group's starts (each leaf with a leading
    axis of runs; default the problem's start). ``targets``, ``target_tol``: points to record the
    first visit of (:attr:`jaxgd.engine.Static.targets`). Returns one :class:`~jaxgd.Trajectory`
    (host arrays) whose leading axis holds the groups' runs in order; each run is :func:`sweep`'s,
    up to rounding.
    """
    problem = _check_problem(problem)
    epochs = _checks.check_int("epochs", epochs, 1)
    dtype, kinds, members, which, starts = problem.dtype, [], [], [], []
    for i, (opt, values, *start) in enumerate(groups):
        values = dict(values)
        lr_a = _checks.check_array("lr", values.pop("lr", 0.05), low=0, low_open=True)
        spec, arrays = _check_sweep_hyper(opt, lr_a, values)
        arrays["lr"] = lr_a
        inits = _init_arrays(problem, start[0] if start else None)
        n = int(np.prod(np.broadcast_shapes(*(a.shape for a in arrays.values()),
                                            *(a.shape[:1] for a, batched in inits.values() if batched))))
        starts.append([np.asarray(np.broadcast_to(a, (n, *a.shape[1:])) if batched else np.broadcast_to(a, (n, *a.shape)),
                                  dtype) for a, batched in inits.values()])
        _check_lr_in_dtype(lr_a, dtype)
        kinds.append(spec.kind)
        members.append((len(which), n, {k: np.broadcast_to(arrays.get(k, v), (n,)) for k, v in spec.hyper.items()}))
        which.extend([i] * n)
    R = len(which)
    flat = {"which": np.asarray(which, np.int32)}
    for i, (at, n, values) in enumerate(members):  # a member's values on its runs, its first value elsewhere
        for name, a in values.items():
            full = np.full(R, a[0], dtype)
            full[at:at + n] = a
            flat[f"{i}.{name}"] = full
    check_steps("epochs", epochs, problem.num_params, R, per_step=not final_only)
    init = jax.tree.unflatten(jax.tree.structure(problem.init), [np.concatenate(a) for a in zip(*starts)])
    static = engine.Static(problem.loss_fn, optim.union_kind(kinds), None, 1, epochs, final_only=final_only,
                           targets=tuple(tuple(float(v) for v in p) for p in targets), target_tol=float(target_tol))
    return _call(static, problem.data, flat, init, None, R)


def sweep_batches(problem: Problem, optimizer: str = "gd", lr=0.05, batch_size=1, epochs=1, sampling="shuffle",
                  rng: str = "jax", seed=0, loss_every: int = 1, **hyper) -> Trajectory:
    """Runs that differ in batch size, epochs and sampling, in one compiled call; their final points.

    ``lr``, ``batch_size``, ``epochs``, ``seed`` and numeric hyperparameters may be 1-D arrays
    (one value per run, broadcast together); ``sampling`` a string or one per run. Every run is
    padded to the largest batch (masked lanes) and the most steps (skipped steps). Run ``i`` ends
    where ``run(problem, optimizer, lr[i], epochs[i], batch_size[i], sampling=sampling[i], rng=rng,
    seed=seed[i])`` ends, up to rounding. Returns a Trajectory as :func:`sweep` with
    ``final_only=True`` (host arrays; ``num_steps`` is each run's own count).

    ``rng="jax"``: each run draws its epochs' orders inside the scan (:class:`~jaxgd.data.Draw`;
    the padded epoch has ``ceil(m / smallest batch)`` steps). ``rng="numpy"``: the notebook's
    streams, drawn on the host (one ``RandomState`` per seed) and handed in as one padded order
    ``(R, T, largest batch)`` — no random numbers in the compiled program, which then compiles
    about three times faster. ``loss_every``: the full-data loss (for the divergence rule) at
    every this many padded steps, and at the end.
    """
    problem = _check_problem(problem)
    m = problem.num_examples
    if m is None:
        raise ArgumentError("problem", f"{problem.name!r} has no data: batch sizes do not apply")
    arrays = {"lr": _checks.check_array("lr", lr, low=0, low_open=True),
              "batch_size": _checks.check_array("batch_size", batch_size, low=1, high=m, integer=True),
              "epochs": _checks.check_array("epochs", epochs, low=1, integer=True),
              "seed": _checks.check_array("seed", seed, low=0, high=2**32 - 1, integer=True)}
    _check_lr_in_dtype(arrays["lr"], problem.dtype)
    names = [sampling] if isinstance(sampling, str) else list(sampling)
    for s in names:
        _checks.check_choice("sampling", s, SAMPLINGS)
    arrays["replace"] = np.asarray([s == "replacement" for s in names]).reshape(np.shape(sampling))
    rng = _checks.check_choice("rng", rng, RNGS)
    spec, numeric = _check_sweep_hyper(optimizer, arrays["lr"], hyper)
    arrays.update(numeric)
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        listed = ", ".join(f"{k} {a.shape}" for k, a in arrays.items() if a.shape)
        raise ArgumentError("sweep arrays", f"must have one common length (or be scalars), got {listed}") from None
    R = int(np.prod(shape))
    b = {k: np.broadcast_to(a, shape).reshape(R) for k, a in arrays.items()}
    B, E = int(b["batch_size"].max()), int(b["epochs"].max())
    S = steps_per_epoch(m, int(b["batch_size"].min()))
    check_steps("epochs", E * S, problem.num_params, R, per_step=False)
    dtype = problem.dtype
    h = {"lr": b["lr"].astype(dtype), **{k: b[k].astype(dtype) for k in numeric}}
    for k, v in spec.hyper.items():
        h.setdefault(k, np.full(R, v, dtype))
    init = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (R, *np.shape(a))), problem.init)
    every = _checks.check_int("loss_every", loss_every, 1, MAX_STEPS)
    if rng == "numpy":
        idx, mask = _numpy_orders(m, b["seed"], b["batch_size"], b["epochs"], b["replace"])
        static = engine.Static(problem.loss_fn, spec.kind, B, 1, idx.shape[1], final_only=True, stop=True,
                               loss_every=every)
        return _call(static, problem.data, h, init, Order(idx[:, :, None], mask[:, :, None]), R)
    source = Draw(b["seed"].astype(np.uint32), b["batch_size"].astype(np.int32),
                  b["epochs"].astype(np.int32), b["replace"])
    static = engine.Static(problem.loss_fn, spec.kind, B, S, E, final_only=True, stop=True, loss_every=every)
    return _call(static, problem.data, h, init, source, R)


def _numpy_orders(m: int, seeds, sizes, epochs, replace) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~jaxgd.data.numpy_order` of every run, padded into ``(R, T, B)`` (T, B: the most steps
    and the largest batch; padding masked, a padded step empty). Each seed's stream is drawn once:
    its permutations (shuffle) do not depend on the batch size, and its draws (replacement) for a
    shorter run are the first of a longer one's."""
    spe = -(-m // sizes)
    steps = epochs * spe
    R, T, B = len(sizes), int(steps.max()), int(sizes.max())
    idx, mask = np.zeros((R, T, B), np.int32), np.zeros((R, T, B), bool)
    perms, draws = {}, {}

    def longest(sel, need):  # per distinct seed among ``sel``, the most of ``need``
        u, inv = np.unique(seeds[sel], return_inverse=True)
        most = np.zeros(len(u), np.int64)
        np.maximum.at(most, inv, need[sel])
        return zip(u.tolist(), most.tolist())

    rs = np.random.RandomState(0)  # reseeded per seed: the stream of RandomState(seed), made 100× faster
    for s, ep in longest(~replace, epochs):
        rs.seed(s)
        perms[s] = np.stack([rs.permutation(m) for _ in range(ep)])
    for s, n in longest(replace, steps * sizes):
        rs.seed(s)
        draws[s] = rs.randint(0, m, size=n).astype(np.int32)
    for key in set(zip(sizes.tolist(), epochs.tolist(), replace.tolist())):
        bs, ep, rep = key
        rows = np.flatnonzero((sizes == bs) & (epochs == ep) & (replace == rep))
        n_steps = ep * -(-m // bs)
        if rep:
            block = np.stack([draws[s][:n_steps * bs] for s in seeds[rows]]).reshape(len(rows), n_steps, bs)
            idx[rows, :n_steps, :bs], mask[rows, :n_steps, :bs] = block, True
        else:  # each epoch's permutation cut into batches, the ragged last one padded (as data._cut)
            p = np.zeros((len(rows), ep, n_steps // ep * bs), np.int32)
            p[:, :, :m] = np.stack([perms[s][:ep] for s in seeds[rows]])
            on = np.zeros(p.shape[1:], bool)
            on[:, :m] = True
            idx[rows, :n_steps, :bs] = p.reshape(len(rows), n_steps, bs)
            mask[rows, :n_steps, :bs] = on.reshape(n_steps, bs)
    return idx, mask


# ----------------------------------------------------------------------------- sweeps


def _init_arrays(problem: Problem, init) -> dict:
    """The starting points of a sweep as ``{leaf path: array}``: each leaf has the shape of the
    problem's leaf, or one more leading axis (one value per run)."""
    like = problem.init
    if init is None:
        init = like
    elif isinstance(like, Params) and not isinstance(init, Params):
        try:
            init = Params(*init)
        except TypeError:
            raise ArgumentError("init", f"must be a pair (w, b) of numbers or 1-D arrays, got {init!r}") from None
    if jax.tree.structure(init) != jax.tree.structure(like):
        raise ArgumentTypeError("init", f"must be a pytree shaped like the problem's parameters "
                                        f"({jax.tree.structure(like)}), got {jax.tree.structure(init)}")
    out = {}
    for (path, v), base in zip(jax.tree_util.tree_leaves_with_path(init), jax.tree.leaves(like)):
        where = jax.tree_util.keystr(path)
        a = np.asarray(v)
        if a.dtype.kind not in "iuf":
            raise ArgumentTypeError("init", f"must hold real numbers, got dtype {a.dtype} at {where}")
        if a.shape != np.shape(base) and a.shape[1:] != np.shape(base):
            raise ArgumentError("init", f"must have shape {np.shape(base)} (or (R, *that)) at {where}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ArgumentError("init", f"must be finite, got a non-finite value at {where}")
        if a.shape != np.shape(base) and a.shape[0] == 0:
            raise ArgumentError("init", f"must not be empty at {where}")
        out["init" + where] = (a, a.shape != np.shape(base))
    return out


def sweep(
    problem: Problem,
    optimizer: str = "gd",
    lr=0.05,
    epochs: int = 20,
    batch_size: int | None = None,
    init=None,
    sampling: str = "shuffle",
    rng: str = "jax",
    seed=0,
    final_only: bool = False,
    *,
    sharpness_every: int = 0,
    sharpness_iters: int = 50,
    sharpness_tol: float = 1e-4,
    loss_every: int | None = None,
    **hyper,
) -> Trajectory:
    """Run ``R`` configurations at once: the arguments of :func:`run`, but ``lr``, ``seed``, the
    numeric hyperparameters and the leaves of ``init`` may carry one value per run (a 1-D array
    for a number; a leading axis for a leaf of ``init``; ``init=(w_array, b_array)`` for two
    parameters). They broadcast against each other to ``R`` runs.

    Returns a :class:`~jaxgd.Trajectory` whose arrays have a leading axis of ``R``; run ``i``
    equals ``run`` with run ``i``'s arguments. With ``final_only=True`` every step axis keeps only
    its last entry (length 1: the final point, its loss, the last step's records), with the per-run
    ``diverged_at`` and ``num_steps`` — so 10⁴ runs × 10⁴ steps fit in memory. On several JAX
    devices the runs are sharded over all of them (``R`` is padded to a multiple of the device
    count and trimmed). ``sharpness_every`` records each run's sharpness curve as in :func:`run`,
    all in the one compiled call; ``loss_every`` is :func:`run`'s.
    """
    problem = _check_problem(problem)
    epochs = _checks.check_int("epochs", epochs, 1)
    sampling = _checks.check_choice("sampling", sampling, SAMPLINGS)
    rng = _checks.check_choice("rng", rng, RNGS)
    if not isinstance(final_only, bool):
        raise ArgumentTypeError("final_only", f"must be True or False, got {final_only!r}")
    lr_a = _checks.check_array("lr", lr, low=0, low_open=True)
    _check_lr_in_dtype(lr_a, problem.dtype)
    seed_a = _checks.check_array("seed", seed, low=0, high=2**32 - 1, integer=True)
    inits = _init_arrays(problem, init)
    spec, numeric = _check_sweep_hyper(optimizer, lr_a, hyper)
    batch_size = check_batch_size(problem, batch_size)
    more = dict(final_only=final_only, **_sharpness_fields(
        check_sharpness(sharpness_every, sharpness_iters, sharpness_tol),
        check_loss_every(loss_every, problem.num_examples, batch_size)))

    per_run = {"lr": lr_a, "seed": seed_a, **numeric}
    shapes = {k: a.shape for k, a in per_run.items()} | {k: a.shape[:1] for k, (a, b) in inits.items() if b}
    try:
        shape = np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items() if s)
        raise ArgumentError("sweep arrays", f"must have one common length (or be scalars), got {listed}") from None
    R = int(np.prod(shape))
    b = {k: np.broadcast_to(a, shape).reshape(R) for k, a in per_run.items()}
    spe = 1 if batch_size is None else steps_per_epoch(problem.num_examples, batch_size)
    check_steps("epochs", epochs * spe, problem.num_params, R, per_step=not final_only)

    dtype = problem.dtype
    # host arrays: the compiled call moves them to the device (no eager programs per argument)
    hyper_arr = {k: np.asarray(v, dtype) for k, v in {"lr": b["lr"], **{k: b[k] for k in numeric}}.items()}
    for k, v in spec.hyper.items():  # defaults of hyperparameters not given
        hyper_arr.setdefault(k, np.full((R,), v, dtype))
    leaves = [np.asarray(np.broadcast_to(a, (R, *a.shape[1:])) if batched else np.broadcast_to(a, (R, *a.shape)), dtype)
              for a, batched in inits.values()]
    p0 = jax.tree.unflatten(jax.tree.structure(problem.init), leaves)

    static = _epoch_static(problem, spec.kind, batch_size, epochs, sampling, **more)
    if batch_size is None:
        source = None
    elif rng == "jax":
        source = engine.compiled_call(_order_keys, "order_keys", (), b["seed"].astype(np.uint32))
    else:  # one NumPy order per distinct seed
        uniq, inv = np.unique(b["seed"], return_inverse=True)
        orders = [_numpy_source(static, problem.num_examples, int(s)) for s in uniq]
        source = Order(*(np.stack([o[i] for o in orders])[inv] for i in (0, 1)))
    args = _shard((hyper_arr, p0, source), R)
    out = engine.compiled_call(engine.sweep_compiled, "sweep", (static,), problem.data, *args)
    return jax.tree.map(lambda a: a[:R], out)


def _shard(tree, R: int):
    """Pad the leading (runs) axis to a multiple of the device count and shard it over all devices."""
    devices = jax.devices()
    n = len(devices)
    if n == 1:
        return tree
    pad = -R % n
    if pad:
        tree = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]), tree)
    sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
    return jax.device_put(tree, sharding)


class LRScan(NamedTuple):
    """Final loss against learning rate, one sweep per optimizer (arrays of shape ``(len(lrs),)``)."""

    lrs: np.ndarray
    final_loss: dict
    diverged_at: dict
    stability_limit: float | None  # 2/λmax of the Hessian, for full-batch gd on a quadratic loss
    optimal_lr: float | None  # 2/(λmin + λmax): full-batch gd's fastest rate on a quadratic loss
    epochs: int
    batch_size: int | None

    def best(self, optimizer: str) -> tuple[float, float] | None:
        """``(lr, final loss)`` of the optimizer's lowest final loss among runs that stayed sane; None if all diverged."""
        loss = self.final_loss[optimizer]
        ok = (self.diverged_at[optimizer] < 0) & np.isfinite(loss)
        if not ok.any():
            return None
        i = int(np.flatnonzero(ok)[np.argmin(loss[ok])])
        return float(self.lrs[i]), float(loss[i])


def lr_scan(problem: Problem, optimizers, lrs, epochs: int = 100, batch_size=None, sampling="shuffle",
            rng="jax", seed=0) -> LRScan:
    """``sweep(..., final_only=True)`` over ``lrs`` for each optimizer (one compiled call each).
    ``optimizers``: a sequence of names, or one name as a string."""
    from jaxgd.curvature import theory

    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    try:
        optimizers = tuple(optimizers)
    except TypeError:
        raise ArgumentTypeError("optimizers", f"must be an optimizer name or a sequence of them, "
                                              f"got {optimizers!r}") from None
    if not optimizers:
        raise ArgumentError("optimizers", "must name at least one optimizer, got none")
    lrs = _checks.check_array("lrs", lrs, low=0, low_open=True).astype(np.float64).reshape(-1)
    final, div = {}, {}
    for opt in optimizers:
        f = sweep(problem, opt, lr=lrs, epochs=epochs, batch_size=batch_size, sampling=sampling, rng=rng, seed=seed,
                  final_only=True)
        final[opt] = np.asarray(f.loss[:, -1], dtype=np.float64)
        div[opt] = np.asarray(f.diverged_at)
    limit = best = None
    if problem.quadratic:  # its Hessian is the same everywhere, so these hold from any start
        th = theory(problem)
        limit, best = float(th.stability_limit), float(th.optimal_lr)
    return LRScan(lrs, final, div, limit, best, epochs, batch_size)


def divergence_boundary(lrs, diverged_at) -> float | None:
    """The smallest learning rate of the sweep whose run diverged, or None."""
    d = np.asarray(diverged_at) >= 0
    return float(np.min(np.asarray(lrs)[d])) if d.any() else None
