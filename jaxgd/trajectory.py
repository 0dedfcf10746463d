"""Trajectories: one optimizer run as one jitted ``lax.scan``.

``run`` checks its arguments in Python, builds the sample order (indices + mask, see
:mod:`jaxgd.data`), then calls a compiled scan whose static configuration is the loss
function, the optimizer kind and the full-batch flag; the learning rate and the other
hyperparameters are traced, so changing them does not recompile.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgd import _checks, optim
from jaxgd.data import RNGS, SAMPLINGS, Order, sample_order, steps_per_epoch
from jaxgd.model import Params
from jaxgd.problems import Problem


DIVERGENCE_FACTOR = 1e6  # a run whose |loss| grows past this many times its start has diverged


def _blown_up(loss, loss0):
    """``|loss| > DIVERGENCE_FACTOR · max(|loss0|, 1)``: also right for losses that are negative
    or start near zero."""
    return jnp.abs(loss) > DIVERGENCE_FACTOR * jnp.maximum(jnp.abs(loss0), 1)


class Trajectory(NamedTuple):
    """A run of ``T`` steps.

    params: Params of ``(T+1,)`` arrays — the start first, the final point last.
    loss: ``(T+1,)`` full-data loss at each of those points.
    batch_loss: ``(T,)`` loss of the batch step t used, at ``params[t]``.
    grad_norm: ``(T,)`` Euclidean norm of the batch gradient of step t.
    update_norm: ``(T,)`` Euclidean norm of the parameter change of step t.
    first_moment, second_moment: Params of ``(T,)`` — the optimizer's moment estimates after step
      t (momentum's velocity / Adam's m; RMSProp's s / Adam's v), or None where it keeps none.
    diverged_at: int scalar — the first index t at which ``params[t]`` or ``loss[t]`` is not
      finite, or ``|loss[t]|`` exceeds ``DIVERGENCE_FACTOR`` (10⁶) times ``max(|loss[0]|, 1)``;
      −1 if neither happens. The values from there on are kept as computed (non-finite ones
      included).
    """

    params: Params
    loss: jax.Array
    batch_loss: jax.Array
    grad_norm: jax.Array
    update_norm: jax.Array
    diverged_at: jax.Array
    first_moment: Params | None = None
    second_moment: Params | None = None

    @property
    def steps(self) -> int:
        """``T``, the number of update steps."""
        return self.batch_loss.shape[-1]

    @property
    def diverged(self):
        """True where the run left the finite numbers."""
        return self.diverged_at >= 0

    @property
    def final(self) -> Params:
        """The last point, ``params[..., -1]``."""
        return jax.tree.map(lambda a: a[..., -1], self.params)


class _Record(NamedTuple):
    params: Params
    loss: jax.Array
    batch_loss: jax.Array
    grad_norm: jax.Array
    update_norm: jax.Array
    first_moment: Params | None
    second_moment: Params | None


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree.leaves(tree)))


def _step(loss_fn, tx, data, carry, xs):
    """One update. ``xs`` is ``(idx, mask)`` of shape ``(B,)``, or None for the full batch."""
    params, state = carry
    if xs is None:
        batch, mask = data, None
    else:
        idx, mask = xs
        batch = tuple(a[idx] for a in data)
    full = loss_fn(params, data, None)
    batch_loss, g = jax.value_and_grad(loss_fn)(params, batch, mask)
    if isinstance(tx, optax.GradientTransformationExtraArgs):
        value_fn = lambda p: loss_fn(p, batch, mask)
        updates, state = tx.update(g, state, params, value=batch_loss, grad=g, value_fn=value_fn)
    else:
        updates, state = tx.update(g, state, params)
    new = optax.apply_updates(params, updates)
    first, second = optim.moments(state)
    return (new, state), _Record(params, full, batch_loss, _norm(g), _norm(updates), first, second)


def _init(kind, hyper, init):
    return init, optim.build(kind, hyper).init(init)


def _scan(loss_fn, kind, length, data, hyper, carry, xs):
    """Steps over ``xs`` (or ``length`` full-batch steps when ``xs`` is None).

    Not unrolled: unrolling (``unroll=4``) runs about 1.4× faster here, but XLA then fuses
    across steps differently in programs of different lengths, and a run scanned in chunks
    would no longer equal one scan bit for bit.
    """
    tx = optim.build(kind, hyper)
    return jax.lax.scan(partial(_step, loss_fn, tx, data), carry, xs, length=length)


def _finish(loss_fn, data, carry, rec: _Record) -> Trajectory:
    """Append the final point and its loss to the per-step records; find divergence."""
    last = carry[0]
    params = jax.tree.map(lambda r, p: jnp.concatenate([r, p[None]]), rec.params, last)
    loss = jnp.concatenate([rec.loss, loss_fn(last, data, None)[None]])
    ok = jnp.isfinite(loss) & jnp.isfinite(params.w) & jnp.isfinite(params.b)
    ok &= ~_blown_up(loss, loss[0])
    diverged_at = jnp.where(jnp.all(ok), -1, jnp.argmin(ok)).astype(jnp.int32)
    return Trajectory(params, loss, rec.batch_loss, rec.grad_norm, rec.update_norm, diverged_at,
                      rec.first_moment, rec.second_moment)


@partial(jax.jit, static_argnames=("loss_fn", "kind", "length"))
def _run_compiled(loss_fn, kind, length, data, hyper, init, xs) -> Trajectory:
    carry, rec = _scan(loss_fn, kind, length, data, hyper, _init(kind, hyper, init), xs)
    return _finish(loss_fn, data, carry, rec)


# The same three stages compiled apart, for runs scanned in chunks (progress reporting).
_init_jit = jax.jit(_init, static_argnames=("kind",))
_scan_jit = jax.jit(_scan, static_argnames=("loss_fn", "kind", "length"))
_finish_jit = jax.jit(_finish, static_argnames=("loss_fn",))


def _run_chunked(loss_fn, kind, steps, data, hyper, init, xs, chunk, callback) -> Trajectory:
    carry = _init_jit(kind, hyper, init)
    recs = []
    for start in range(0, steps, chunk):
        n = min(chunk, steps - start)
        part = None if xs is None else jax.tree.map(lambda a: a[start:start + n], xs)
        carry, rec = _scan_jit(loss_fn, kind, n if xs is None else None, data, hyper, carry, part)
        recs.append(rec)
        if callback is not None:
            callback(start + n, steps)
    rec = jax.tree.map(lambda *a: jnp.concatenate(a), *recs)
    return _finish_jit(loss_fn, data, carry, rec)


class RunConfig(NamedTuple):
    """A checked run: everything :func:`run` needs, in canonical form."""

    optimizer: str
    spec: optim.Spec
    epochs: int
    batch_size: int | None
    steps: int
    init: tuple[float, float]
    sampling: str
    rng: str
    seed: int


def _check_lr(lr):
    """A finite number > 0, or a schedule: a function of the step whose value at step 0 is a finite number >= 0."""
    if not callable(lr):
        return _checks.check_positive_number("lr", lr)
    try:
        v = float(jnp.asarray(lr(0)))
    except Exception as e:  # a schedule that cannot be called on a step count
        raise TypeError(f"lr is callable but not a schedule of the step count: calling lr(0) raised {e!r}") from None
    if not (v >= 0 and v < float("inf")):
        raise ValueError(f"lr schedule must give a finite learning rate >= 0, got lr(0) = {v!r}")
    return lr


def check_run_args(problem, optimizer, lr, epochs, batch_size, init, sampling, rng, seed, hyper) -> RunConfig:
    """Validate :func:`run`'s arguments; raises TypeError / ValueError naming the argument."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a jaxgd.Problem (e.g. jaxgd.notebook()), got {type(problem).__name__}")
    lr = _check_lr(lr)
    epochs = _checks.check_int("epochs", epochs, 1)
    sampling = _checks.check_choice("sampling", sampling, SAMPLINGS)
    rng = _checks.check_choice("rng", rng, RNGS)
    seed = _checks.check_seed(seed)
    init = _checks.check_pair("init", problem.init if init is None else init)
    spec = optim.resolve(optimizer, lr, hyper)
    m = problem.num_examples
    if batch_size is not None:
        if m is None:
            raise ValueError(f"batch_size does not apply to problem {problem.name!r}, which has no data; leave it None")
        batch_size = _checks.check_int("batch_size", batch_size, 1, m)
    steps = epochs if batch_size is None else epochs * steps_per_epoch(m, batch_size)
    return RunConfig(optimizer, spec, epochs, batch_size, steps, init, sampling, rng, seed)


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
    **hyper,
) -> Trajectory:
    """Run ``optimizer`` on ``problem`` and return its :class:`Trajectory`.

    Args:
      problem: a :class:`Problem`, e.g. ``jaxgd.notebook()``.
      optimizer: "gd", "momentum", "nesterov", "rmsprop", "adam" (see :mod:`jaxgd.optim`), or
        "optax:NAME" for any optax optimizer with ``lr`` as its learning rate.
      lr: learning rate, a finite number > 0 — or a schedule, a function of the step count
        (``optax.cosine_decay_schedule(...)`` and the like; step 0 first). A schedule is static:
        a new schedule object compiles anew.
      epochs: passes over the data (an integer ≥ 1); without minibatches, one step each.
      batch_size: None for full batch; 1 for SGD; k for minibatches of k. An epoch is
        ``ceil(m / batch_size)`` steps.
      init: starting point ``(w, b)``; default ``problem.init`` (the notebook's (-4, -7)).
      sampling: "shuffle" — a permutation per epoch cut into consecutive batches, the ragged
        last one masked; "replacement" — each step draws ``batch_size`` indices uniformly.
      rng: "jax" (``jax.random`` from ``seed``) or "numpy" (the notebook's ``np.random``
        stream after ``np.random.seed(seed)``).
      seed: an integer in ``[0, 2**32)``. Every optimizer with the same seed sees the same order.
      order: an explicit :class:`Order` (``idx``, ``mask`` of shape ``(T, batch_size)``) to use
        instead of drawing one; needs ``batch_size``, and sets ``T``.
      chunk: scan this many steps per compiled call instead of all at once, calling
        ``callback(steps_done, steps_total)`` after each chunk (for a progress bar). The result
        is bit-for-bit that of one scan.
      **hyper: the optimizer's hyperparameters (beta; decay, eps; b1, b2, eps; or optax's).

    Returns a Trajectory of ``T + 1`` points. A run that diverges is not an error: see
    ``Trajectory.diverged_at``.
    """
    cfg = check_run_args(problem, optimizer, lr, epochs, batch_size, init, sampling, rng, seed, hyper)
    dtype = problem.dtype
    if order is None and cfg.batch_size is not None:
        order = sample_order(problem.num_examples, cfg.batch_size, cfg.epochs, cfg.sampling, cfg.rng, cfg.seed)
    elif order is not None:
        order = _check_order(order, problem.num_examples, cfg.batch_size)
    hyper_arr = {k: jnp.asarray(v, dtype) for k, v in cfg.spec.hyper.items()}
    p0 = Params(*(jnp.asarray(v, dtype) for v in cfg.init))
    if chunk is not None:
        chunk = _checks.check_int("chunk", chunk, 1)
    steps = cfg.steps if order is None else int(order.idx.shape[0])
    if chunk is not None and chunk < steps:
        return _run_chunked(problem.loss_fn, cfg.spec.kind, steps, problem.data, hyper_arr, p0, order, chunk, callback)
    out = _run_compiled(problem.loss_fn, cfg.spec.kind, None if order is not None else steps,
                        problem.data, hyper_arr, p0, order)
    if callback is not None:
        callback(steps, steps)
    return out


def _check_order(order, m, batch_size) -> Order:
    if batch_size is None:
        raise ValueError("order needs batch_size: a full-batch run has no sample order")
    idx, mask = jnp.asarray(order[0]), jnp.asarray(order[1], bool)
    if idx.ndim != 2 or idx.shape[1] != batch_size or mask.shape != idx.shape:
        raise ValueError(f"order must hold idx and mask of shape (T, {batch_size}), got {idx.shape} and {mask.shape}")
    if idx.shape[0] == 0 or not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError("order.idx must be a non-empty integer array")
    if bool(jnp.any((idx < 0) | (idx >= m))) or not bool(jnp.all(jnp.any(mask, axis=1))):
        raise ValueError(f"order.idx must lie in [0, {m}) and every step must have an unmasked point")
    return Order(idx.astype(jnp.int32), mask)
