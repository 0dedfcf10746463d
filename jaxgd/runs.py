"""Runs and sweeps: arguments checked once into a record, then handed to the engine.

``run(...) = run_checked(check_run_args(...))``: the check builds a :class:`RunConfig` (the
problem, the resolved optimizer, the step count, the starting point, the sample order's recipe)
and ``run_checked`` compiles :func:`jaxgd.engine.one_run` for it. ``sweep`` is the one door for
many runs: its arguments are per-run columns (optimizers, learning rates and hyperparameters,
epochs, batch sizes, samplings, seeds, starts) that :func:`stack` checks, broadcasts, casts, pads
and shards into a :class:`Batch` for ``jit(vmap(one_run))``, and :func:`split` cuts back into
runs. ``lr_scan`` is a sweep over learning rates per optimizer. Compiled calls go through
:func:`jaxgd.engine.compiled_call` (plain calls unless an application, such as the ``jaxgd``
command's disk cache, installs a hook).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd import _checks, budget, engine, optim, pool, progress as progress_bar, spectrum
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.curvature import theory
from jaxgd.data import RNGS, SAMPLINGS, Draw, Order, numpy_order, numpy_orders, order_key, run_key, steps_per_epoch
from jaxgd.engine import Trajectory
from jaxgd.model import Params
from jaxgd.problems import Problem, check_problem_dtype


class RunConfig(NamedTuple):
    """A checked run: everything :func:`run_checked` needs, in canonical form.

    ``steps`` is ``T``; ``init`` the starting point as arrays of the problem's dtype; ``order``
    an explicit :class:`Order` or None (then drawn from ``sampling``, ``rng``, ``seed``).
    """

    problem: Problem
    optimizer: Any  # a name, a factory or a transformation, as given (see jaxgd.optim.resolve)
    spec: optim.Spec
    epochs: int
    batch_size: int | None
    steps: int
    init: Any
    sampling: str
    rng: str
    seed: int
    order: Order | None = None
    sharpness: tuple = ()  # (every, iters, tol[, k, examples, leaf]) when measured (see check_sharpness), else ()
    loss_every: int = 1  # the full-data loss at every this many steps (see check_loss_every)
    sharpness_of: str = "hessian"  # or "preconditioned" (see check_sharpness_of)

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
    if lr is None or callable(lr):
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
    """A finite number > 0, or a schedule: a function of the step whose value at step 0 is a finite number >= 0;
    None (the optimizer's default: see :func:`jaxgd.optim.resolve`) stays None."""
    if lr is None:
        return None
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


def check_sharpness(every, iters, tol, k=None, problem: Problem | None = None, examples=None, leaf=None) -> tuple:
    """``(every, iters, tol)`` checked: ``every`` an integer ≥ 0 (0: never), ``iters`` in
    [1, 10⁴], ``tol`` in (0, 1); ``()`` when ``every`` is 0. With any of ``k`` (``sharpness_k``: the
    top k eigenvalues, an integer in [1, min(iters, n)], ``n`` the parameters measured), ``examples``
    (``sharpness_examples``: the fixed subset of the examples the sharpness is measured on, a non-empty
    1-D array of indices in [0, m)) and ``leaf`` (``sharpness_leaf``: one leaf of the parameters, an
    index or a path as :func:`jaxgd.spectrum.leaf_index` takes; its diagonal block of the Hessian) —
    each only with ``every`` ≥ 1, checked against ``problem`` — ``(every, iters, tol, k or 0, the
    indices as a tuple or None, the leaf's (offset, size) in the flattened parameters or None)``."""
    every = _checks.check_int("sharpness_every", every, 0)
    iters = _checks.check_int("sharpness_iters", iters, 1, 10_000)
    tol = _checks.check_number("sharpness_tol", tol, low=0, low_open=True, high=1, high_open=True)
    given = [name for name, v in (("sharpness_k", k), ("sharpness_examples", examples), ("sharpness_leaf", leaf))
             if v is not None]
    if not given:
        return (every, iters, tol) if every else ()
    if not every:
        raise ArgumentError(given[0], "needs sharpness_every ≥ 1 (the steps at which the sharpness is measured)")
    if examples is not None:
        m = problem.num_examples
        if m is None:
            raise ArgumentError("sharpness_examples", f"does not apply to problem {problem.name!r}, which has no data")
        idx = np.asarray(examples)
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= m:
            raise ArgumentError("sharpness_examples", f"must be a non-empty 1-D array of example indices in [0, {m}), "
                                                      f"got {idx.dtype} of shape {idx.shape}"
                                                      + (f" from {idx.min()} to {idx.max()}" if idx.size else ""))
        examples = tuple(int(i) for i in idx)
    sizes = [int(np.size(a)) for a in jax.tree.leaves(problem.init)]
    if leaf is not None:
        try:
            i = spectrum.leaf_index(problem.init, leaf)
        except (ArgumentError, ArgumentTypeError) as e:
            raise type(e)("sharpness_leaf", e.detail) from None
        leaf = (sum(sizes[:i]), sizes[i])
    n = sum(sizes) if leaf is None else leaf[1]
    k = 0 if k is None else _checks.check_int("sharpness_k", k, 1, min(iters, n))
    return every, iters, tol, k, examples, leaf


SHARPNESS_OF = ("hessian", "preconditioned")


def check_sharpness_of(of, kind: tuple) -> str:
    """``"hessian"`` (the top eigenvalue of H) or ``"preconditioned"`` (of P⁻¹H, P the update's
    diagonal preconditioner: :func:`jaxgd.engine.preconditioner`), the latter for runs whose every
    optimizer (``kind``, or each member of a union) is a built-in with a known preconditioner —
    rmsprop, adam — or the identity — gd, momentum, nesterov. Where every preconditioner is the
    identity the two are one measurement, returned as ``"hessian"`` (one program)."""
    of = _checks.check_choice("sharpness_of", of, SHARPNESS_OF)
    if of == "hessian":
        return of
    known = engine.PRECONDITIONED + engine.UNPRECONDITIONED
    names = [k[0] for k in (kind[1] if kind[0] == optim.UNION else (kind,))]
    for name in names:
        if not (isinstance(name, str) and name in known):
            name = name if isinstance(name, str) else getattr(name, "__qualname__", type(name).__name__)
            raise ArgumentError("sharpness_of", f"'preconditioned' knows the preconditioners of "
                                                f"{', '.join(known)}; not of {name}")
    return of if set(names) & set(engine.PRECONDITIONED) else "hessian"


def check_run_args(problem, optimizer="gd", lr=None, epochs=20, batch_size=None, init=None, sampling="shuffle",
                   rng="jax", seed=0, hyper=None, order=None, sharpness_every=0, sharpness_iters=50,
                   sharpness_tol=1e-4, loss_every=1, sharpness_of="hessian", sharpness_k=None, sharpness_examples=None,
                   sharpness_leaf=None) -> RunConfig:
    """Validate :func:`run`'s arguments into a :class:`RunConfig`; raises
    :class:`~jaxgd._checks.ArgumentError` / ``ArgumentTypeError`` naming the argument."""
    problem = _check_problem(problem)
    lr = _check_lr(lr)
    epochs = _checks.check_int("epochs", epochs, 1)
    sampling = _checks.check_choice("sampling", sampling, SAMPLINGS)
    rng = _checks.check_choice("rng", rng, RNGS)
    seed = _checks.check_seed(seed)
    lr = _check_lr_in_dtype(lr, problem.dtype)
    init = problem.checked_init() if init is None else _checks.check_params("init", init, problem.init, problem.dtype)
    spec = optim.resolve(optimizer, lr, dict(hyper or {}))
    batch_size = check_batch_size(problem, batch_size)
    steps = epochs if batch_size is None else epochs * steps_per_epoch(problem.num_examples, batch_size)
    if order is not None:
        order = _check_order(order, problem.num_examples, batch_size)
        steps = int(order.idx.shape[0])
    sharp = check_sharpness(sharpness_every, sharpness_iters, sharpness_tol, sharpness_k, problem, sharpness_examples,
                            sharpness_leaf)
    check_steps("epochs" if order is None else "order", steps, problem.num_params)
    every = check_loss_every(loss_every, problem.num_examples, batch_size, steps)
    return RunConfig(problem, optimizer, spec, epochs, batch_size, steps, init, sampling, rng, seed, order, sharp,
                     every, check_sharpness_of(sharpness_of, spec.kind))


LOSS_BUDGET = 10**8  # example evaluations of the full-data losses of one run, past which the jaxgd command thins them


def check_loss_every(loss_every, num_examples: int | None = None, batch_size: int | None = None,
                     steps: int = 1) -> int:
    """``loss_every``: an integer in ``[1, 2**31 - 1]`` (1, the default: every step's full-data loss),
    or ``"auto"``: :func:`auto_loss_every` of the run's ``num_examples``, ``batch_size``, ``steps``."""
    if isinstance(loss_every, str) and loss_every == "auto":
        return auto_loss_every(num_examples, batch_size, steps)
    return _checks.check_int("loss_every", loss_every, 1, MAX_STEPS)


def auto_loss_every(num_examples: int | None, batch_size: int | None, steps: int) -> int:
    """``loss_every="auto"``, what the ``jaxgd`` command takes when not told one (the library never
    thins unasked): 1 for full batch (a step already costs a pass over the data), for a problem
    without data, and whenever the run's ``T + 1`` full-data losses (``T = steps``) cost at most
    :data:`LOSS_BUDGET` (10⁸) example evaluations; else the smallest ``k`` whose ``ceil(T/k) + 1``
    measured points (every ``k``-th and the last) stay within it, about ``LOSS_BUDGET / m`` of
    them: a run costs O(T·B + 10⁸), not O(T·m)."""
    if batch_size is None or num_examples is None:
        return 1
    points = max(2, LOSS_BUDGET // num_examples)  # the losses affordable, the first and the last included
    return -(-steps // (points - 1))


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


def _sharpness_fields(sharp: tuple, loss_every: int = 1, of: str = "hessian") -> dict:
    """The engine's sharpness and loss fields (``sharpness_of`` only where it is measured and not the Hessian's)."""
    more = {"sharpness_of": of} if sharp and of != "hessian" else {}
    names = ("sharpness_every", "sharpness_iters", "sharpness_tol", "sharpness_k", "sharpness_examples", "sharpness_leaf")
    return dict(zip(names, sharp), loss_every=loss_every, **more)


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
    more = _sharpness_fields(cfg.sharpness, cfg.loss_every, cfg.sharpness_of) | _key_fields(p)
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
_run_keys = jax.jit(jax.vmap(run_key))


def _key_fields(problem: Problem) -> dict:
    """The engine's :attr:`~jaxgd.engine.Static.takes_key`, given only for a problem whose loss
    takes a key (others keep the configuration, and the program, they always had)."""
    return {"takes_key": True} if problem.takes_key else {}


def _run_key_column(problem: Problem, seeds: np.ndarray):
    """The runs' keys for :attr:`~jaxgd.engine.Knobs.key` — :func:`~jaxgd.data.run_key` of each of
    the ``(R,)`` seeds — for a problem whose loss takes a key; else None."""
    if not problem.takes_key:
        return None
    return engine.compiled_call(_run_keys, "run_keys", (), np.asarray(seeds, np.uint32).reshape(-1))


def run_checked(cfg: RunConfig, *, chunk: int | None = None, callback=None, progress: bool = False) -> Trajectory:
    """Run a checked :class:`RunConfig` (see :func:`run` for ``chunk``, ``callback`` and ``progress``)."""
    if chunk is not None:
        chunk = _checks.check_int("chunk", chunk, 1)
    if callback is not None and not callable(callback):
        raise ArgumentTypeError("callback", f"must be a function (steps_done, steps_total), got {callback!r}")
    progress = _checks.check_bool("progress", progress)
    static, source = _plan(cfg)
    if not progress:
        return _run_planned(cfg, static, source, chunk, callback)
    shown = progress_bar.bar(cfg.steps, "run")
    if chunk is None:
        chunk = progress_bar.chunk_blocks(static.blocks) * static.block_steps

    def both(done, total):
        shown.update(done)
        if callback is not None:
            callback(done, total)

    try:
        return _run_planned(cfg, static, source, chunk, both)
    finally:
        shown.close()


def _run_planned(cfg: RunConfig, static: engine.Static, source, chunk: int | None, callback) -> Trajectory:
    key = _run_key_column(cfg.problem, np.asarray([cfg.seed]))
    knobs = engine.Knobs(_hyper_arrays(cfg.spec, cfg.problem.dtype), key=None if key is None else key[0])
    data = cfg.problem.data
    static, init = engine.flat(static, cfg.init)
    if chunk is not None and chunk < cfg.steps:
        blocks = max(1, -(-chunk // static.block_steps))
        return engine.unflat(static, engine.run_chunked(static, data, knobs, init, source, blocks, callback))
    out = engine.compiled_call(engine.run_compiled, "run", (static,), data, knobs, init, source)
    if callback is not None:
        callback(cfg.steps, cfg.steps)
    return engine.unflat(static, out)


def run(
    problem: Problem,
    optimizer: str | Callable | optax.GradientTransformation = "gd",
    lr: float | None = None,
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
    progress: bool = False,
    sharpness_every: int = 0,
    sharpness_iters: int = 50,
    sharpness_tol: float = 1e-4,
    loss_every: int | str = 1,
    sharpness_of: str = "hessian",
    sharpness_k: int | None = None,
    sharpness_examples=None,
    sharpness_leaf=None,
    go_on: bool = False,
    **hyper,
) -> Trajectory:
    """Run ``optimizer`` on ``problem`` and return its :class:`~jaxgd.Trajectory`.

    Args:
      problem: a :class:`~jaxgd.Problem`, e.g. ``jaxgd.notebook()`` or ``jaxgd.model_problem(...)``.
      optimizer: "gd", "momentum", "nesterov", "rmsprop", "adam", "newton", "lbfgs" (see
        :mod:`jaxgd.optim`), or "optax:NAME" for any optax optimizer with ``lr`` as its learning rate;
        or your own: a factory ``f(learning_rate, **hyperparameters) -> optax.GradientTransformation``
        (``optax.lion``, a function returning an ``optax.chain``; ``**hyper`` by its argument names),
        or a built ``optax.GradientTransformation`` (then no ``lr`` and no hyperparameters).
      lr: learning rate, a finite number > 0 (default 0.05) — or a schedule, a function of the step
        count (``optax.cosine_decay_schedule(...)`` and the like; step 0 first). A schedule is static:
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
        For a problem whose loss takes a key (``model_problem(..., takes_key=True)``), step ``t``'s
        loss gets ``jaxgd.data.step_key(seed, t)`` (whatever ``rng``, full batch included).
      order: an explicit :class:`~jaxgd.Order` (``idx``, ``mask`` of shape ``(T, batch_size)``)
        to use instead of drawing one; needs ``batch_size``, and sets ``T``.
      chunk: scan about this many steps per compiled call instead of all at once (rounded up to
        whole epochs for minibatch runs), calling ``callback(steps_done, steps_total)`` after
        each chunk (for a progress bar). The result is bit for bit that of one scan.
      progress: show a progress bar on stderr — "compiling", then the steps done — by scanning in
        chunks as ``chunk`` does (about 20 to 100 of them unless ``chunk`` is given; bit for bit the
        same result). tqdm's bar where tqdm is installed, else a line of text
        (:mod:`jaxgd.progress`). Off by default.
      sharpness_every: record the sharpness — the top eigenvalue of the full-data loss's Hessian —
        at every step divisible by this (0: never) in ``Trajectory.sharpness``, inside the same
        scan: Lanczos on Hessian-vector products (:func:`jaxgd.spectrum.top_eigenpairs`), at most
        ``sharpness_iters`` of them per measurement, to a residual ‖Hv − λv‖ of ``sharpness_tol``·λ
        (the eigenvalue's error is about residual²/gap: 1e-4 gives it to about 1e-8 relative),
        warm-started from the previous measurement's eigenvector.
      sharpness_of: ``"hessian"`` (default): the sharpness is λ₁(H); ``"preconditioned"``: λ₁(P⁻¹H),
        P the diagonal preconditioner of step t's update (:func:`jaxgd.engine.preconditioner`:
        rmsprop's √s + ε, adam's (1 − β₁ᵗ)(√v̂ + ε); the identity for gd, momentum and nesterov),
        found as λ₁ of P^(−1/2)·H·P^(−1/2) by the same warm-started Lanczos. Its stability limits:
        :func:`jaxgd.curvature.sharpness_limit` with ``preconditioned=True``.
      sharpness_k: None (default): the top eigenvalue alone; an integer k in [1, min(sharpness_iters,
        n)]: the top k eigenvalues too, at the same steps, in ``Trajectory.top_eigenvalues`` ``(T, k)``
        (descending; column 0 is ``sharpness``; NaN rows where not measured): one Lanczos with k Ritz
        pairs per measurement (not block Lanczos), warm-started from the sum of the previous
        measurement's k Ritz vectors, to the same ``sharpness_tol`` on each pair. Needs
        ``sharpness_every``.
      sharpness_examples: None (default): the sharpness (and the top k) of the loss on all the data;
        or the indices of a fixed subset of the examples (a 1-D integer array, each in [0, m)): of the
        loss on those alone, the run itself training on all of them as before.
      sharpness_leaf: None (default): of the whole Hessian; or one leaf of the parameters (its index in
        ``jax.tree.leaves(init)`` order, negative allowed, or its path such as ``"layer0/w"``, as
        :func:`jaxgd.spectrum.leaf_index` takes): of that leaf's diagonal block of the Hessian, the
        other leaves held fixed ("per layer"); with ``sharpness_of="preconditioned"`` the same block
        of P^(−1/2)·H·P^(−1/2). A measurement of a leaf or a subset is not the sharpness that
        :func:`jaxgd.curvature.sharpness_limit` bounds.
      loss_every: compute the full-data loss (``Trajectory.loss``) at every step (1, the default),
        or only at the steps divisible by this and at the last point: every other entry is NaN, a
        value not computed (not a divergence). Each costs a pass over all m examples, a batch step
        B: on big data a run of T steps costs O(T·m) unless thinned; ``"auto"`` (what the ``jaxgd``
        command takes) thins past 10⁸ example evaluations (:func:`auto_loss_every`). The
        divergence rule sees the loss only where it is measured: between, only the parameters (a
        non-finite one), so a loss that blows up with finite parameters is caught at the next
        measured step.
      go_on: run work estimated past an hour (:func:`jaxgd.budget.check`: ``T`` steps on batches of
        ``batch_size``, bounded from the flops, measured by a short probe only past a minute) instead
        of refusing it with an :class:`~jaxgd.ArgumentError` naming ``epochs`` and the estimate.
      **hyper: the optimizer's hyperparameters (beta; decay, eps; b1, b2, eps; or the factory's).

    Returns a Trajectory of ``T + 1`` points. A run that diverges is not an error: see
    ``Trajectory.diverged_at``. A tree of many leaves (16 or more, one dtype) with a built-in
    elementwise optimizer runs on one flat vector (:func:`jaxgd.engine.flat`: the same numbers, a
    program that does not grow with the leaves); its points and moments come back as NumPy arrays,
    in the tree.
    """
    cfg = check_run_args(problem, optimizer, lr, epochs, batch_size, init, sampling, rng, seed, hyper, order,
                         sharpness_every, sharpness_iters, sharpness_tol, loss_every, sharpness_of, sharpness_k,
                         sharpness_examples, sharpness_leaf)
    budget.check(cfg.problem, [(1, cfg.steps, cfg.batch_size)], "epochs", go_on=_checks.check_bool("go_on", go_on))
    return run_checked(cfg, chunk=chunk, callback=callback, progress=progress)


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
                      top_eigenvalues=cut(t.top_eigenvalues, steps),
                      reached_at=None if t.reached_at is None else
                      np.where(t.reached_at <= steps, t.reached_at, -1).astype(np.int32))


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
    _checks.check_same_tree("init", init, like)
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


class Batch(NamedTuple):
    """``R`` runs stacked into columns for one compiled call: built by :func:`stack`, run by
    :func:`_call` (:func:`split` cuts the result back into runs).

    static: the engine's configuration, one for all runs (a union of the runs' optimizers when
    they differ: :func:`jaxgd.optim.union_kind`). knobs: :class:`~jaxgd.engine.Knobs` of ``(R,)``
    columns — the hyperparameters (a dict, or a tuple of per-member dicts), the member each run
    uses, each run's own step count, each run's key (a loss that takes one). init: the starts, each leaf ``(R, *leaf shape)``
    (or one ``(R, n)`` vector: :func:`jaxgd.engine.flat`). source: the
    sample orders — None (full batch), ``(R,)`` keys, an :class:`Order` ``(R, blocks, block_steps,
    B)`` or a :class:`Draw` of ``(R,)`` columns. data: the problem's data. R: the number of runs
    (the columns may be padded to a multiple of the device count). workers: threads the runs are
    shared among (``sweep(workers=)``, or :func:`default_workers`), each calling the same compiled
    program on its share; above 1 only for a program :func:`jaxgd.pool.hazard` finds safe.
    """

    static: engine.Static
    knobs: engine.Knobs
    init: Any
    source: Any
    data: Any
    R: int
    workers: int = 1


def _column(name: str, v, **bounds) -> np.ndarray:
    """A per-run column: a number or an array of them (any shape: columns broadcast as NumPy's).
    A single integer is checked as :func:`run` checks it (the same message)."""
    if bounds.get("integer") and np.ndim(v) == 0 and not isinstance(v, np.ndarray):
        return np.asarray(_checks.check_int(name, v, bounds["low"], bounds.get("high")))
    a = np.asarray(v) if isinstance(v, (list, tuple)) else v
    flat = _checks.check_array(name, np.reshape(a, -1) if np.ndim(a) > 1 else a, **bounds)
    return flat.reshape(np.shape(a))


def _names(name: str, v, choices=None) -> np.ndarray:
    """A per-run column of names (a string, or an array of strings), each checked against ``choices``."""
    a = np.asarray(v, dtype=object)
    if a.size == 0:
        raise ArgumentError(name, "must name at least one, got none")
    for s in dict.fromkeys(a.reshape(-1).tolist()):  # each distinct name once
        if choices is not None:
            _checks.check_choice(name, s, choices)
        elif not isinstance(s, str):
            raise ArgumentTypeError(name, f"must be a name (a string) or a sequence of them, got {s!r}")
    return a


def _optimizers(v) -> np.ndarray:
    """The per-run column of optimizers: a name, a factory or a transformation (one for every run),
    or an array or sequence of names. A factory or a transformation is the only optimizer of its sweep."""
    if isinstance(v, str) or optim.is_custom(v):
        a = np.empty((), object)
        a[()] = v
        return a
    if isinstance(v, (list, tuple)) and any(map(optim.is_custom, v)):
        raise ArgumentError("optimizer", "a factory or a GradientTransformation is the only optimizer of its sweep "
                                         "(one for every run): sweep other optimizers in another call")
    return _names("optimizer", v)


def _members(names: np.ndarray, lr: np.ndarray | None, hyper: dict, R: int, dtype):
    """Each distinct optimizer's :class:`~jaxgd.optim.Spec` and ``(R,)`` hyperparameter columns.

    ``names``: an ``(R,)`` column of names, or of one factory or transformation (see :func:`_optimizers`);
    ``lr``: an ``(R,)`` column, or None for each optimizer's default.
    ``hyper`` maps a name to a column (already broadcast to ``(R,)``) or a static value (bool,
    string, None, a function). A name goes to the optimizers that take it; a member's columns hold its numbers
    on its own runs and its first run's numbers elsewhere (what a union's other members compute
    with, never used)."""
    if optim.is_custom(names[0]):  # a factory or a transformation: its sweep's only optimizer
        kinds, which = [names[0]], np.zeros(R, np.int32)
    else:
        u, first, inv = np.unique(names.astype(str), return_index=True, return_inverse=True)
        order = np.argsort(first)  # the optimizers in the order they first appear
        kinds, rank = u[order].tolist(), np.empty(len(u), np.int32)
        rank[order] = np.arange(len(u))
        which = rank[inv.reshape(-1)]
    static_h = {k: v for k, v in hyper.items() if not isinstance(v, np.ndarray)}
    numeric = {k: v for k, v in hyper.items() if isinstance(v, np.ndarray)}
    takes = {o: _takes(o) for o in kinds} if len(kinds) > 1 else {}
    for k in hyper:
        if len(kinds) > 1 and not any(k in t for t in takes.values()):
            raise ArgumentError(k, f"is a hyperparameter of none of the optimizers {', '.join(map(repr, kinds))}")
    specs, cols = [], []
    for i, o in enumerate(kinds):
        sel = which == i
        first = int(np.flatnonzero(sel)[0])
        mine = [k for k in hyper if len(kinds) == 1 or k in takes[o]]
        table = optim.BUILTIN[o][1] if isinstance(o, str) and o in optim.BUILTIN else {}
        for k in mine:  # every element of the member's runs in the built-in's range
            if k in numeric:
                lo, lo_open, hi, hi_open = table[k][1:] if k in table else (None, False, None, False)
                _checks.check_array(k, numeric[k][sel], low=lo, low_open=lo_open, high=hi, high_open=hi_open)
        rate = None if lr is None else float(lr[first])
        spec = optim.resolve(o, rate, {k: numeric[k][first].item() if k in numeric else static_h[k] for k in mine})
        given = {**({} if lr is None else {"lr": lr}), **{k: numeric[k] for k in mine if k in numeric}}
        col = {}
        for k, v in spec.hyper.items():
            c = np.full(R, given[k][first] if k in given else v, dtype)
            if k in given:
                c[sel] = given[k][sel]
            col[k] = c
        specs.append(spec)
        cols.append(col)
    return tuple(specs), tuple(cols), which


def _takes(optimizer: str) -> set:
    """The hyperparameter names an optimizer name takes (a built-in's table, an optax function's
    parameters; none for a name that :func:`jaxgd.optim.resolve` will refuse)."""
    if optimizer in optim.BUILTIN:
        return set(optim.BUILTIN[optimizer][1])
    fn = getattr(optax, optimizer[len(optim.OPTAX_PREFIX):], None) if optimizer.startswith(optim.OPTAX_PREFIX) else None
    return optim.factory_arguments(fn) or set()


def stack(problem: Problem, optimizer="gd", lr=None, epochs=20, batch_size=None, init=None, sampling="shuffle",
          rng: str = "jax", seed=0, hyper: dict | None = None, *, final_only: bool = False, sharpness: tuple = (),
          loss_every=1, targets=(), target_tol: float = 0.0, sharpness_of: str = "hessian", lanes=None,
          workers=None) -> Batch:
    """:func:`sweep`'s arguments checked, broadcast to ``R`` runs, cast to the problem's dtype,
    padded (orders to the largest batch and the most steps) and sharded: a :class:`Batch`."""
    problem = _check_problem(problem)
    _checks.check_bool("final_only", final_only)
    m, dtype = problem.num_examples, problem.dtype
    rng = _checks.check_choice("rng", rng, RNGS)
    names = _optimizers(optimizer)
    samplings = _names("sampling", sampling, SAMPLINGS)
    cols = {"optimizer": names}
    if lr is not None:  # None: each optimizer's default (see jaxgd.optim.resolve)
        cols["lr"] = _check_lr_in_dtype(_column("lr", lr, low=0, low_open=True), dtype)
    cols |= {"epochs": _column("epochs", epochs, low=1, integer=True),
            "seed": _column("seed", seed, low=0, high=2**32 - 1, integer=True), "sampling": samplings}
    if batch_size is not None:
        if m is None:
            check_batch_size(problem, batch_size)  # the error: no data
        if any(v is None for v in np.reshape(np.asarray(batch_size, dtype=object), -1)):
            raise ArgumentError("batch_size", "runs in one call must be all full batch (None) or all minibatch")
        if np.ndim(batch_size) == 0:
            batch_size = check_batch_size(problem, batch_size)
        cols["batch_size"] = _column("batch_size", batch_size, low=1, high=m, integer=True)
    static_h = {k: v for k, v in (hyper or {}).items() if isinstance(v, (bool, str)) or v is None or callable(v)}
    for k, v in (hyper or {}).items():  # numbers checked finite here, ranges per optimizer in _members
        if k not in static_h:
            cols[k] = _column(k, v)
    inits = _init_arrays(problem, init)
    shapes = {k: a.shape for k, a in cols.items()} | {k: a.shape[:1] for k, (a, b) in inits.items() if b}
    try:
        shape = np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items() if s)
        raise ArgumentError("sweep arrays", f"must have one common length (or be scalars), got {listed}") from None
    R = int(np.prod(shape))
    b = {k: np.broadcast_to(a, shape).reshape(R) for k, a in cols.items()}
    specs, hypers, which = _members(b["optimizer"], b.get("lr"), {**{k: b[k] for k in hyper or {} if k in b},
                                                              **static_h}, R, dtype)
    one = len(specs) == 1
    kind = specs[0].kind if one else optim.union_kind([s.kind for s in specs])
    leaves = [np.asarray(np.broadcast_to(a, (R, *a.shape[1:])) if batched else np.broadcast_to(a, (R, *a.shape)), dtype)
              for a, batched in inits.values()]
    p0 = jax.tree.unflatten(jax.tree.structure(problem.init), leaves)
    more = dict(final_only=final_only, targets=tuple(tuple(float(v) for v in p) for p in targets),
                target_tol=float(target_tol))
    bmin = None if batch_size is None else int(b["batch_size"].min())
    longest = 1 if bmin is None else int(b["epochs"].max()) * steps_per_epoch(m, bmin)  # for loss_every="auto"
    more.update(_sharpness_fields(sharpness, check_loss_every(loss_every, m, bmin, longest),
                                  check_sharpness_of(sharpness_of, kind)), **_key_fields(problem))
    static, steps, source = _orders(problem, kind, b, rng, more)
    given, chosen = workers is not None, lanes is None
    workers = 1 if workers is None else _checks.check_int("workers", workers, 1)
    if lanes is None:  # more than one worker given: the runs one after another in each thread
        lanes = 1 if workers > 1 else lane_layout(problem, R, static)
        if not given:
            workers = default_workers(problem, R, static._replace(lanes=lanes))
    static = static._replace(lanes=_checks.check_int("lanes", lanes, 0))
    knobs = engine.Knobs(hypers[0] if one else hypers, None if one else which, steps, _run_key_column(problem, b["seed"]))
    check_steps("epochs", static.blocks * static.block_steps, problem.num_params, R, per_step=not final_only)
    static, p0 = engine.flat(static, p0, runs=1)
    knobs, p0, source = _shard((knobs, p0, source), R)
    if R > 1 and _cpu_devices() > 1:
        static = _on_one_pool(static, problem.data, (knobs, p0, source), chosen)
    asked, workers = workers, min(workers, R) if len(jax.devices()) == 1 else 1
    if workers > 1 and _cpu_devices() == 1:  # the program of one thread's share, lowered (JAX keeps it for the call)
        why = pool.program_hazard(engine.sweep_compiled, static, problem.data, *_shares((knobs, p0, source), R, workers)[0])
        if why is not None and given:
            raise ArgumentError("workers", f"must be 1 for this sweep, got {asked}: its step calls {why}, which can "
                                           "deadlock XLA's CPU thread pool when called from several threads")
        workers = 1 if why is not None else workers
    return Batch(static, knobs, p0, source, problem.data, R, workers)


LANE_FLOPS = 10**6
"""On one CPU device, a sweep with sharpness whose lane-step passes this many flops (``6·n·batch``: a
gradient of ``n`` parameters on ``batch`` examples) runs its lanes one after another; otherwise all
vmapped in one call. See :func:`lane_layout`."""


def _cpu_devices() -> int:
    """How many CPU devices JAX has (0 on an accelerator)."""
    devices = jax.devices()
    return len(devices) if devices[0].platform == "cpu" else 0


def _big_cpu_lanes(problem: Problem, static: engine.Static) -> bool:
    if _cpu_devices() != 1:
        return False
    m = problem.num_examples
    return 6 * problem.num_params * (1 if m is None else static.batch_size or m) > LANE_FLOPS


def _on_one_pool(static: engine.Static, data, cols, chosen: bool) -> engine.Static:
    """``static`` for a sweep sharded over several CPU devices, whose programs run at once on XLA's one
    CPU thread pool as threads' do: where the step has a hazard (:func:`jaxgd.pool.hazard`), lanes one
    after another if the layout was ``chosen`` by default (a batched LAPACK call of the lanes becomes one
    matrix at a time), else refused; refused also where one after another has one. A default layout
    with a hazard is lowered twice, vmapped and one after another (JAX keeps both lowerings)."""
    why = pool.program_hazard(engine.sweep_compiled, static, data, *cols)
    if why is not None and chosen and static.lanes != 1:
        static = static._replace(lanes=1)
        why = pool.program_hazard(engine.sweep_compiled, static, data, *cols)
    if why is not None and static.lanes != 1:
        raise ArgumentError("lanes", f"must be 1 on several CPU devices for this sweep, got {static.lanes}: its step "
                                     f"calls {why}, which can deadlock the CPU thread pool the devices share")
    if why is not None:
        raise ArgumentError("loss", f"calls {why} at every step, which can deadlock the CPU thread pool that several "
                                    "CPU devices share: sweep it on one device (without "
                                    "--xla_force_host_platform_device_count)")
    return static


def lane_layout(problem: Problem, runs: int, static: engine.Static) -> int:
    """The layout (:attr:`jaxgd.engine.Static.lanes`) of a sweep of ``runs`` runs, measured on a 2-core
    CPU (BENCHMARKS.md, "sweeps of real models"):

    - one run: 1 — the run's own program in a loop of one, so it equals :func:`run` bit for bit;
    - on one CPU device, with sharpness and a lane-step past :data:`LANE_FLOPS`: 1, one after another.
      Vmapped, every lane's Lanczos loop runs until the slowest lane's has converged, and the
      lanes' matrix products become batched products no faster than one lane's (a 3,466-parameter
      MLP, 8 lrs of gd, 200 steps, sharpness every 10: 2.90 s vmapped, 2.34 s one after another;
      first call 22 s against 14 s);
    - else 0, all vmapped: without sharpness the lanes share the data's products (the same MLP, 32
      Adam lrs, 200 steps: 2.17 s vmapped, 3.01 s one after another), small lanes are where one
      program over many of them wins (the notebook's 100 lrs: 21 ms vmapped, 122 ms one after
      another), and on an accelerator or several devices (the runs are sharded over them).

    On several CPU devices (``--xla_force_host_platform_device_count``) :func:`stack` then lays a step
    with a batched LAPACK call (sharpness, newton, a loss of your own that calls ``jnp.linalg``) one
    after another, or refuses it (:func:`_on_one_pool`): the devices run at once on XLA's one CPU
    thread pool, and the vmapped sharpness sweep above hung on two of them (jaxlib 0.10.2); one after
    another it took 2.18 s.

    ``sweep(..., lanes=)`` overrides it: 0, or ``k ≥ 1`` lanes at a time. How many threads share
    the lanes is :func:`default_workers`'s."""
    sequential = runs == 1 or (static.sharpness_every > 0 and _big_cpu_lanes(problem, static))
    return 1 if sequential else 0


def default_workers(problem: Problem, runs: int, static: engine.Static) -> int:
    """The threads a sweep's runs are shared among when ``workers`` is not given: every core
    (:func:`jaxgd.pool.cores`, at most one a run) where :func:`lane_layout` runs sharpness lanes one
    after another on one CPU device, else 1. Each thread calls the same compiled program on its share
    of lanes one after another, so the numbers are bit for bit those of one thread; :func:`stack` keeps one thread where the
    program is not safe in several (:func:`jaxgd.pool.hazard`).

    Measured on the 2-core CPU (the 3,466-parameter MLP, 512 digits, 200 steps, medians of 4): 8 lrs of
    gd with sharpness every 10 took 1.27 s in two threads against 2.52 s in one: the Lanczos loops
    are chains of small products that leave the second core idle. 32 Adam lrs gained nothing safe to
    promise: vmapped in one thread 2.36–2.42 s; in two threads, vmapped or in blocks of 4–16 lanes,
    1.77–3.18 s from one try to the next (each program also spreads its products over XLA's pool, and
    two threads' programs contend for it)."""
    sharp = runs > 1 and static.lanes == 1 and static.sharpness_every > 0
    return min(pool.cores(), runs) if sharp and _big_cpu_lanes(problem, static) else 1


def _orders(problem: Problem, kind: tuple, b: dict, rng: str, more: dict):
    """``(Static, steps, source)`` for the ``(R,)`` columns ``b``: the engine's configuration, each
    run's own step count for :attr:`~jaxgd.engine.Knobs.steps` (None where no step needs it) and
    the sample orders. One shape of run (batch size, sampling, epochs): scanned epoch by epoch,
    keys or NumPy orders ``(R, E, S, B)``. Runs of several shapes: padded to the most steps and the
    largest batch — full batch with per-run step counts; ``rng="jax"`` a :class:`Draw` per run, each
    drawing its epochs in the scan; ``rng="numpy"`` :func:`~jaxgd.data.numpy_orders` in blocks of
    one step."""
    m, R = problem.num_examples, len(b["seed"])
    epochs, seeds, replace = b["epochs"].astype(np.int64), b["seed"], b["sampling"] == "replacement"
    if "batch_size" not in b:
        varied = bool(np.any(epochs != epochs[0]))
        static = engine.Static(problem.loss_fn, kind, None, 1, int(epochs.max()), stop=varied, **more)
        return static, epochs.astype(np.int32) if varied else None, None
    sizes = b["batch_size"].astype(np.int64)
    if len({*zip(sizes.tolist(), epochs.tolist(), replace.tolist())}) == 1:
        static = _epoch_static(problem, kind, int(sizes[0]), int(epochs[0]), str(b["sampling"][0]), **more)
        if rng == "jax":
            return static, None, engine.compiled_call(_order_keys, "order_keys", (), seeds.astype(np.uint32))
        o = numpy_orders(m, seeds, sizes, epochs, replace)
        return static, None, Order(*(a.reshape(R, static.blocks, static.block_steps, static.batch_size) for a in o))
    if rng == "jax":  # lanes and steps past a run's own are masked (its step index is not the scan's)
        B, S = int(sizes.max()), steps_per_epoch(m, int(sizes.min()))
        static = engine.Static(problem.loss_fn, kind, B, S, int(epochs.max()), stop=True, **more)
        return static, None, Draw(seeds.astype(np.uint32), sizes.astype(np.int32), epochs.astype(np.int32), replace)
    idx, mask = numpy_orders(m, seeds, sizes, epochs, replace)
    static = engine.Static(problem.loss_fn, kind, int(sizes.max()), 1, idx.shape[1], stop=True, **more)
    steps = (epochs * -(-m // sizes)).astype(np.int32)
    return static, steps, Order(idx[:, :, None], mask[:, :, None])


def _shares(tree, R: int, workers: int) -> list:
    """The runs' columns ``tree`` cut into ``workers`` equal shares (the last padded by repeating its last
    run), so that every share is one shape: one compiled program for all."""
    size = -(-R // workers)
    rows = np.minimum(np.arange(workers * size), R - 1).reshape(workers, size)
    return [jax.tree.map(lambda a, i=i: a[i], tree) for i in rows]


def _call(batch: Batch) -> Trajectory:
    """The compiled sweep on a :class:`Batch` — one call, or one per worker thread on its share of the
    runs (the first dispatched alone, so the program compiles once); host (NumPy) arrays back,
    trimmed to its ``R`` runs."""
    go = lambda cols: engine.compiled_call(engine.sweep_compiled, "sweep", (batch.static,), batch.data, *cols)  # noqa: E731
    if batch.workers > 1:
        shares = _shares((batch.knobs, batch.init, batch.source), batch.R, batch.workers)
        compiled = threading.Event()

        def one(cols, first=False):
            try:
                out = go(cols)
            finally:
                if first:
                    compiled.set()
            return jax.tree.map(np.asarray, out)

        with ThreadPoolExecutor(batch.workers) as pool:
            head = pool.submit(one, shares[0], True)
            compiled.wait()
            outs = [head] + [pool.submit(one, s) for s in shares[1:]]
            outs = [f.result() for f in outs]
        out = jax.tree.map(lambda *a: np.concatenate(a), *outs)
    else:
        out = go((batch.knobs, batch.init, batch.source))
    if jax.process_count() > 1:  # runs sharded over the processes of jax.distributed: every process gets them all
        out = multihost_utils.process_allgather(out, tiled=True)
    return engine.unflat(batch.static, jax.tree.map(lambda a: np.asarray(a)[:batch.R], out))


def split(t: Trajectory, optimizer, runs=None) -> list[Trajectory]:
    """Cut a :func:`sweep`'s result back into runs: the runs ``runs`` (indices; default all), each a
    :class:`~jaxgd.Trajectory` of host arrays cut to its own ``num_steps`` (a ``final_only`` sweep's
    stay as they are), with only the moments its optimizer keeps (where a sweep of several
    optimizers holds NaN). ``optimizer``: the sweep's ``optimizer`` argument (a name, or the
    column), read at each optimizer's default settings."""
    names = np.broadcast_to(_optimizers(optimizer), np.shape(t.num_steps)).reshape(-1)
    like = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[2:], np.asarray(a).dtype), t.params)
    keeps = {}
    for o in dict.fromkeys(names.tolist()):
        if optim.is_custom(o):  # the sweep's only optimizer: its moments are recorded as they are
            keeps[o] = t.first_moment, t.second_moment
            continue
        spec = optim.resolve(o, 1.0, {})
        keeps[o] = jax.eval_shape(lambda p, s=spec: optim.moments(optim.build(s.kind, s.hyper).init(p)), like)
    out = []
    for r in range(len(names)) if runs is None else runs:
        one = jax.tree.map(lambda a, r=r: np.asarray(a[r]), t)
        first, second = keeps[names[r]]
        one = one._replace(first_moment=one.first_moment if first is not None else None,
                           second_moment=one.second_moment if second is not None else None)
        out.append(truncate(one, int(one.num_steps)))
    return out


def sweep(
    problem: Problem,
    optimizer="gd",
    lr=None,
    epochs=20,
    batch_size=None,
    init=None,
    sampling="shuffle",
    rng: str = "jax",
    seed=0,
    final_only: bool = False,
    *,
    sharpness_every: int = 0,
    sharpness_iters: int = 50,
    sharpness_tol: float = 1e-4,
    loss_every: int | str = 1,
    sharpness_of: str = "hessian",
    sharpness_k: int | None = None,
    sharpness_examples=None,
    sharpness_leaf=None,
    targets=(),
    target_tol: float = 0.0,
    progress: bool = False,
    go_on: bool = False,
    lanes: int | None = None,
    workers: int | None = None,
    **hyper,
) -> Trajectory:
    """Run ``R`` configurations in one compiled call: :func:`run`'s arguments as per-run columns.

    Columns — each a scalar or an array, broadcast against each other as NumPy broadcasts (then
    flattened, C order, to ``R`` runs): ``optimizer`` (a name, or an array of names: runs of
    several optimizers share one program through :func:`jaxgd.optim.union`; or one factory or
    transformation of your own for every run, as in :func:`run`), ``lr`` (default 0.05), every numeric
    hyperparameter (``beta=...``: it applies to the runs whose optimizer takes it; its values on
    other runs are ignored; a factory's by its argument names: ``sweep(p, optax.lion, lr=lrs, b1=b1s)``),
    ``epochs``, ``batch_size`` (None: every run full batch),
    ``sampling``, ``seed``, and the leaves of ``init`` (a leading axis of runs, which broadcasts
    as a 1-D column; ``init=(w_array, b_array)`` for two parameters). ``rng`` is one for all.

    Run ``i`` equals ``run`` with run ``i``'s arguments, up to rounding. Runs of different
    lengths or batch sizes are padded to the most steps and the largest batch (skipped steps,
    masked lanes): with ``rng="jax"`` each run draws its epochs in the scan
    (:class:`~jaxgd.data.Draw`), with ``rng="numpy"`` the notebook's streams are drawn on the host
    (:func:`~jaxgd.data.numpy_orders`). ``num_steps`` is each run's own count.

    Returns a :class:`~jaxgd.Trajectory` of host (NumPy) arrays with a leading axis of ``R``
    (a run shorter than the longest keeps its final point over the padded steps; :func:`split`
    cuts it back into runs, each to its own steps). With ``final_only=True`` every step axis
    keeps only its last entry (length 1: the final point, its loss, the last step's records), with
    the per-run ``diverged_at`` and ``num_steps`` — so 10⁴ runs × 10⁴ steps fit in memory. On
    several JAX devices the runs are sharded over all of them. ``sharpness_every``, ``sharpness_of``,
    ``sharpness_k`` (``top_eigenvalues`` ``(R, T, k)``), ``sharpness_examples``, ``sharpness_leaf`` and
    ``loss_every`` are :func:`run`'s (default
    every step's loss; ``"auto"`` from the longest run);
    ``targets`` (K points, each a sequence of the flattened parameters) and ``target_tol``: each
    run's first visit within the tolerance of each point (``Trajectory.reached_at``, ``(R, K)``).

    ``progress=True`` shows a bar on stderr (off by default): "compiling", then done. A sweep is
    one compiled call (or one per worker thread) that the engine does not scan in chunks, so the bar
    cannot count its steps as :func:`run`'s does; the results are the same with or without it.

    ``lanes``: how the runs are laid over the device (:func:`lane_layout`, default by its rule): 0,
    all vmapped side by side; ``k ≥ 1``, ``k`` at a time in the same compiled program (1: one after
    another). ``workers``: the runs shared among this many threads (at most one a run, on one device;
    then ``lanes=1`` unless given), each calling the same compiled program on its share; with ``lanes=1``
    the numbers are one thread's bit for bit. Default (:func:`default_workers`): every core for a sweep with
    sharpness whose lanes run one after another on one CPU device (about twice as fast on two cores),
    else 1. Threads run only a program safe in several (:func:`jaxgd.pool.hazard`: no FFT, no custom
    call but LAPACK on one matrix; batched LAPACK calls deadlocked XLA's CPU pool here in two threads):
    by default such a sweep keeps one thread, and ``workers`` above 1 is refused for it. Every layout
    gives the same numbers (to rounding; runs one after another are bit for bit those of :func:`run`).

    Work estimated past an hour (:func:`jaxgd.budget.check`: ``R`` lanes of the longest run's
    steps) is refused with an :class:`~jaxgd.ArgumentError` naming ``epochs`` and the estimate,
    before compiling, unless ``go_on=True``.
    """
    _checks.check_bool("progress", progress)
    _checks.check_bool("go_on", go_on)
    problem = _check_problem(problem)
    batch = stack(problem, optimizer, lr, epochs, batch_size, init, sampling, rng, seed, hyper,
                  final_only=final_only, sharpness=check_sharpness(sharpness_every, sharpness_iters, sharpness_tol,
                                                                   sharpness_k, problem, sharpness_examples, sharpness_leaf),
                  loss_every=loss_every, targets=targets, target_tol=target_tol, sharpness_of=sharpness_of,
                  lanes=lanes, workers=workers)
    steps = batch.static.blocks * batch.static.block_steps
    budget.check(problem, [(batch.R, steps, batch.static.batch_size)], "epochs", go_on=go_on)
    if not progress:
        return _call(batch)
    shown = progress_bar.bar(steps, f"sweep of {batch.R} runs")
    try:
        out = _call(batch)
        shown.update(steps)
        return out
    finally:
        shown.close()


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
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    # several processes (jax.distributed), each holding every run: each places the slices of its own devices
    return jax.tree.map(lambda a: jax.make_array_from_callback(a.shape, sharding, lambda i: a[i]), tree)


class LRScan(NamedTuple):
    """Final loss against learning rate, one sweep per optimizer (:func:`lr_scan`).

    lrs: float64 ``(L,)``, the learning rates, shared by every optimizer. final_loss: ``{optimizer:
    float64 (L,)}``, each run's full-data loss after ``epochs`` epochs. diverged_at: ``{optimizer:
    int32 (L,)}``, each run's first divergent step (−1: none; see :class:`~jaxgd.Trajectory`).
    stability_limit, optimal_lr: full-batch gd's theory on a quadratic loss (None otherwise).
    epochs, batch_size: the runs' settings (None: full batch).
    """

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
            rng="jax", seed=0, loss_every: int = 1, go_on: bool = False) -> LRScan:
    """:func:`sweep` with ``final_only=True`` over ``lrs`` (1-D) for each of ``optimizers`` (a
    sequence of names, or one name as a string): one compiled call per optimizer. ``loss_every``:
    :func:`run`'s (the final loss is always measured; the divergence rule sees the loss where it is).
    ``go_on``: :func:`sweep`'s, for each optimizer's call."""
    if isinstance(optimizers, str) or optim.is_custom(optimizers):
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
                  final_only=True, loss_every=loss_every, go_on=go_on)
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
